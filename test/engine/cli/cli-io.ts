import { EventEmitter } from 'node:events'
import type { CliIo } from '../../../src/engine/cli/runtime.js'
import { createGlogWriter } from '../../../src/engine/log/glog.js'

/** A CliIo that keeps stderr (glog lines) and stdout in memory; `signals` can be emitted on. */
export interface CapturedIo extends CliIo {
  readonly err: () => string
  readonly out: () => string
  readonly emitter: EventEmitter
}

export function captureIo (): CapturedIo {
  let err = ''
  let out = ''
  const emitter = new EventEmitter()
  return {
    log: createGlogWriter((t) => { err += t }, { threadId: 4242 }),
    stdout: { write: (t: string) => { out += t } },
    stderr: { write: (t: string) => { err += t } },
    signals: emitter,
    emitter,
    err: () => err,
    out: () => out
  }
}

/** The F lines of a captured log, without the glog time prefix: `solver.cpp:431] Cannot write…`. */
export function fatalLines (log: string): string[] {
  return log.split('\n').filter((l) => l.startsWith('F')).map((l) => l.replace(/^F\d{4} [\d:.]+ +\d+ /, ''))
}
