import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { repoRoot } from '../helpers/processes.js'

export interface EtResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface EtProcess {
  child: ChildProcessWithoutNullStreams
  stdout: () => string
  stderr: () => string
  /** Resolves once stderr matches `pattern`. */
  waitForStderr: (pattern: RegExp, ms?: number) => Promise<void>
  done: Promise<EtResult>
}

/**
 * Starts `et` from source as its own process, with only the given environment (plus PATH and
 * what Node needs): no ET_* variables leak in from the test runner.
 */
export function startEt (args: string[], env: Record<string, string>): EtProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  const done = new Promise<EtResult>((resolve) => child.once('close', (code) => { resolve({ code, stdout: out, stderr: err }) }))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    done,
    waitForStderr: async (pattern, ms = 60_000) => {
      const deadline = Date.now() + ms
      while (!pattern.test(err)) {
        if (Date.now() > deadline) throw new Error(`et stderr never matched ${String(pattern)}; stderr: ${err.slice(-2000)}`)
        if (child.exitCode !== null) throw new Error(`et exited (${child.exitCode}) before stderr matched ${String(pattern)}; stderr: ${err.slice(-2000)}`)
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
    }
  }
}

/** Runs `et` to completion; `input` is written to its stdin, which is then closed. */
export async function runEt (args: string[], env: Record<string, string>, input = ''): Promise<EtResult> {
  const et = startEt(args, env)
  et.child.stdin.end(input)
  return await et.done
}
