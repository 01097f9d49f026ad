import type { ToolIo } from '../../../src/engine/tools/tool-runtime.js'

/** A ToolIo that keeps glog lines as `I where] message` (F lines included) and both text streams. */
export function testIo (): ToolIo & { lines: string[], out: string[], err: string[] } {
  const lines: string[] = []
  const out: string[] = []
  const err: string[] = []
  return {
    lines,
    out,
    err,
    log: {
      info: (where, message) => { lines.push(`I ${where}] ${message}`) },
      warning: (where, message) => { lines.push(`W ${where}] ${message}`) },
      error: (where, message) => { lines.push(`E ${where}] ${message}`) },
      fatal: (where, message) => { lines.push(`F ${where}] ${message}`) }
    },
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) }
  }
}
