import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

export interface Spawned {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** Resolves with the first stdout line matching `pattern`. */
  waitForLine: (pattern: RegExp, ms?: number) => Promise<string>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** Runs a TypeScript entry of this repo as its own Node process (through tsx), capturing output. */
export function spawnTs (entry: string, args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  const waiters: Array<{ pattern: RegExp, resolve: (line: string) => void }> = []
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    for (const line of chunk.split('\n')) {
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(line)
        }
      }
    }
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLine: async (pattern, ms = 30_000) => {
      const existing = out.split('\n').find((l) => pattern.test(l))
      if (existing !== undefined) return existing
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${String(pattern)} within ${ms} ms; stdout: ${out.slice(-2000)} stderr: ${err.slice(-2000)}`)), ms)
        waiters.push({ pattern, resolve: (line) => { clearTimeout(timer); resolve(line) } })
        exited.then(() => { clearTimeout(timer); reject(new Error(`process exited; stdout: ${out.slice(-2000)} stderr: ${err.slice(-2000)}`)) }, () => {})
      })
    }
  }
}
