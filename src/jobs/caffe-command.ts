import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { CaffeLogParser } from '../engine/log/caffe-log-parser.js'
import { nodeEntry } from '../lib/node-entry.js'

/** How this worker runs Caffe; built once from the config (`--caffe-bin`, `--gpu`). */
export interface CaffeConfig {
  /** A real `caffe` executable for `train`; null runs the builtin engine. */
  caffeBin: string | null
  /** Passed to a real Caffe as `--gpu=<value>`; the builtin engine runs on the CPU. */
  gpu: string | null
  /** Builtin engine kernels (`--kernels`); the engine's default (auto) when absent. */
  kernels?: 'auto' | 'ts' | 'blas'
  /** Builtin engine threads (`--threads`); every core when absent. */
  threads?: number
  /** Time between SIGTERM and SIGKILL when a run is aborted (default 5 s). */
  killGraceMs?: number
}

/** Builtin engine commands other than train; they never run in a real Caffe. */
export type EngineTool = 'classify' | 'convert_imageset' | 'compute_image_mean' | 'test'

export interface CaffeRunOptions {
  /** Working directory; relative paths in the prototxt files resolve against it. */
  cwd: string
  /** Aborting kills the process group (SIGTERM, then SIGKILL after the grace). */
  signal: AbortSignal
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
}

/** How a run ended when it was not aborted. */
export interface CaffeExit {
  /** Exit code, or null when a signal ended the process. */
  code: number | null
  signal: NodeJS.Signals | null
  /** The message of the last glog `F` line (Caffe's fatal error), without its prefix. */
  fatal: string | undefined
  /** The last non-empty stderr lines, for failures that print no `F` line (bad flags, crashes). */
  tail: string[]
}

/** A started process. */
export interface CaffeRun {
  readonly pid: number | undefined
  /** The program as shown in logs: the path of a real Caffe or "builtin engine". */
  readonly program: string
  readonly argv: readonly string[]
  /**
   * Resolves once the process has exited and its output has been delivered. If the signal
   * aborted, rejects with the signal's reason, but only after the process is gone. Rejects
   * with CaffeStartError when the program cannot be started.
   */
  readonly exited: Promise<CaffeExit>
}

/** Starts Caffe processes: `train` in a real Caffe or the builtin engine; tools always in the engine. */
export interface CaffeCommand {
  /** "builtin engine" or the path of the real Caffe used for training. */
  readonly trainer: string
  readonly usesBuiltinTrainer: boolean
  train: (args: { solver: string, snapshot?: string | undefined }, options: CaffeRunOptions) => CaffeRun
  engine: (tool: EngineTool, argv: readonly string[], options: CaffeRunOptions) => CaffeRun
}

/** The program could not be started (missing binary, not executable); worth a retry elsewhere. */
export class CaffeStartError extends Error {
  readonly code = 'ET_CAFFE_START'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CaffeStartError'
  }
}

const TAIL_LINES = 20
const BUILTIN = 'builtin engine'

/**
 * The builtin engine as a separate Node process: the built `.js` CLI next to this file in
 * dist/, or the `.ts` source through tsx's loader (tests, `npm run dev`). The loader is named
 * by absolute URL because `--import tsx` would be resolved from the child's working directory,
 * which is a job's work dir outside the project.
 */
function engineEntry (): { command: string, prefix: string[] } {
  const entry = nodeEntry(import.meta.url, '../engine/cli')
  const execArgv = entry.execArgv.map((arg) => arg === 'tsx' ? pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href : arg)
  return { command: process.execPath, prefix: [...execArgv, entry.script] }
}

export function createCaffeCommand (config: CaffeConfig): CaffeCommand {
  const grace = config.killGraceMs ?? 5000
  const engine = engineEntry()
  const engineFlags = (): string[] => [
    ...(config.kernels === undefined ? [] : [`--kernels=${config.kernels}`]),
    ...(config.threads === undefined ? [] : [`--threads=${config.threads}`])
  ]
  return {
    trainer: config.caffeBin ?? BUILTIN,
    usesBuiltinTrainer: config.caffeBin === null,
    train: (args, options) => {
      const argv = ['train', `--solver=${args.solver}`, ...(args.snapshot === undefined ? [] : [`--snapshot=${args.snapshot}`])]
      if (config.caffeBin !== null) {
        return runProcess(config.caffeBin, config.caffeBin, [...argv, ...(config.gpu === null ? [] : [`--gpu=${config.gpu}`])], options, grace)
      }
      return runProcess(BUILTIN, engine.command, [...engine.prefix, ...argv, ...engineFlags()], options, grace)
    },
    engine: (tool, argv, options) => {
      const flags = tool === 'classify' || tool === 'test' ? engineFlags() : []
      return runProcess(BUILTIN, engine.command, [...engine.prefix, tool, ...argv, ...flags], options, grace)
    }
  }
}

function runProcess (program: string, command: string, argv: string[], options: CaffeRunOptions, graceMs: number): CaffeRun {
  const { signal } = options
  if (signal.aborted) return { pid: undefined, program, argv, exited: Promise.reject(signal.reason) }
  // Its own process group, so an abort takes down anything the program started too. glog
  // would otherwise also write log files to /tmp: everything goes to stderr instead.
  const child = spawn(command, argv, {
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    // ET_PARENT_PID: the builtin engine exits if this process dies and leaves it orphaned.
    env: { ...process.env, GLOG_logtostderr: '1', ET_PARENT_PID: String(process.pid) }
  })
  const parser = new CaffeLogParser()
  let fatal: string | undefined
  const tail: string[] = []
  let partial = ''
  const noteStderr = (text: string): void => {
    const lines = (partial + text).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (line.trim() === '') continue
      tail.push(line.trimEnd())
      if (tail.length > TAIL_LINES) tail.shift()
    }
  }
  child.stdout.on('data', (chunk: Buffer) => { options.onStdout?.(chunk) })
  child.stderr.on('data', (chunk: Buffer) => {
    for (const e of parser.push(chunk)) if (e.kind === 'fatal') fatal = e.message
    noteStderr(chunk.toString('utf8'))
    options.onStderr?.(chunk)
  })

  let killTimer: NodeJS.Timeout | undefined
  const killGroup = (sig: NodeJS.Signals): void => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(-child.pid, sig)
    } catch {
      child.kill(sig)
    }
  }
  const onAbort = (): void => {
    killGroup('SIGTERM')
    killTimer = setTimeout(() => { killGroup('SIGKILL') }, graceMs)
  }
  signal.addEventListener('abort', onAbort, { once: true })

  const exited = new Promise<CaffeExit>((resolve, reject) => {
    let settled = false
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Only start-up failures reject here; errors after a successful spawn end in 'close'.
      if (child.pid !== undefined || settled) return
      settled = true
      signal.removeEventListener('abort', onAbort)
      const why = err.code === 'ENOENT' ? 'not found' : err.code === 'EACCES' ? 'not executable' : err.message
      reject(new CaffeStartError(`cannot start ${program === BUILTIN ? `the builtin engine (${command})` : `Caffe at ${program}`}: ${why}`, { cause: err }))
    })
    child.once('close', (code, sig) => {
      if (settled) return
      settled = true
      clearTimeout(killTimer)
      signal.removeEventListener('abort', onAbort)
      for (const e of parser.end()) if (e.kind === 'fatal') fatal = e.message
      if (partial.trim() !== '') tail.push(partial.trimEnd())
      if (signal.aborted) reject(signal.reason)
      else resolve({ code, signal: sig, fatal, tail: tail.slice(-TAIL_LINES) })
    })
  })
  return { pid: child.pid, program, argv, exited }
}
