import type { GlogSeverity } from './glog.js'

/** The glog prefix of a line: `I1103 09:40:41.704751 28430 solver.cpp:44] `. */
export interface GlogHeader {
  readonly severity: GlogSeverity
  readonly month: number
  readonly day: number
  /** `hh:mm:ss.uuuuuu` as printed (local time of the machine that ran Caffe). */
  readonly time: string
  readonly threadId: number
  readonly file: string
  readonly sourceLine: number
}

interface EventBase {
  /** 1-based line number in the whole input. */
  readonly lineNo: number
  readonly glog?: GlogHeader | undefined
}

/** An output blob value as Caffe prints it; loss outputs also carry `(* weight = weighted loss)`. */
export interface NetOutput {
  readonly index: number
  readonly name: string
  readonly value: number
  readonly lossWeight?: number | undefined
  readonly weightedLoss?: number | undefined
}

/** What the parser recognises in a Caffe log. Anything else is skipped. */
export type CaffeLogEvent = EventBase & (
  /** `Iteration N, loss = X` (pre-1.0) or `Iteration N (x iter/s, ys/100 iters), loss = X` (1.0). */
  | { readonly kind: 'train-loss', readonly iter: number, readonly loss: number, readonly itersPerSecond?: number | undefined, readonly secondsPerInterval?: number | undefined, readonly interval?: number | undefined }
  | { readonly kind: 'lr', readonly iter: number, readonly lr: number }
  /** `Train net output #k: …`; `iter` is that of the loss line it follows. */
  | ({ readonly kind: 'train-output', readonly iter: number | undefined } & NetOutput)
  | { readonly kind: 'test-start', readonly iter: number, readonly net: number }
  /** `Test net output #k: …`; `iter`/`net` are those of the `Testing net` line it follows. */
  | ({ readonly kind: 'test-output', readonly iter: number | undefined, readonly net: number | undefined } & NetOutput)
  | { readonly kind: 'snapshot', readonly what: 'model' | 'solverstate', readonly path: string, readonly format: 'binaryproto' | 'hdf5' | undefined }
  /** `Resuming from X` (the command line) or `Restoring previous solver status from X` (the solver). */
  | { readonly kind: 'resume', readonly path: string, readonly by: 'caffe' | 'solver' }
  | { readonly kind: 'solving', readonly net: string }
  | { readonly kind: 'max-iter', readonly maxIter: number }
  /** The text Caffe printed after `Initializing solver from parameters:` (a SolverParameter in text format). */
  | { readonly kind: 'solver-parameters', readonly text: string }
  | { readonly kind: 'done' }
  /** An `F` line; `checkFailed` when it is a CHECK failure (`Check failed: …`). */
  | { readonly kind: 'fatal', readonly message: string, readonly checkFailed: boolean }
)

/** Running totals of what a log has shown so far, for progress reports. */
export interface CaffeLogSummary {
  maxIter: number | undefined
  /** Highest iteration seen in loss, lr or test lines. */
  iteration: number | undefined
  lastLoss: { iter: number, loss: number } | undefined
  lastLr: { iter: number, lr: number } | undefined
  trainLossCount: number
  testPasses: number
  /** Outputs of the latest complete-or-ongoing test pass, by name. */
  lastTest: { iter: number, net: number, outputs: Record<string, number> } | undefined
  lastModelSnapshot: string | undefined
  lastSolverStateSnapshot: string | undefined
  resumedFrom: string | undefined
  done: boolean
  /** Message of the first fatal line. */
  fatal: string | undefined
}

const GLOG = /^([IWEF])(\d\d)(\d\d) (\d\d:\d\d:\d\d\.\d{6}) +(\d+) ([^\s:\]]+):(\d+)\] ?(.*)$/
// A number as C++ streams print it, including Windows' 3-digit exponents and its NaN/Inf spellings.
const NUM = String.raw`[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:#(?:QNAN|SNAN|IND|INF)\d*)?|nan|inf|infinity)`
const LOSS_OLD = new RegExp(String.raw`^Iteration (\d+), loss = (${NUM})\s*$`, 'i')
const LOSS_NEW = new RegExp(String.raw`^Iteration (\d+) \((${NUM}) iter/s, (${NUM})s/(\d+) iters\), loss = (${NUM})\s*$`, 'i')
const LR = new RegExp(String.raw`^Iteration (\d+), lr = (${NUM})\s*$`, 'i')
const TESTING = /^Iteration (\d+), Testing net \(#(\d+)\)\s*$/
const OUTPUT = new RegExp(String.raw`^\s*(Train|Test) net output #(\d+): (.+?) = (${NUM})(?: \(\* (${NUM}) = (${NUM}) loss\))?\s*$`, 'i')
const SNAPSHOT = /^Snapshotting (solver state )?to (?:(binary proto|HDF5) file )?(.+?)\s*$/
const MAX_ITER = /^max_iter:\s*(\d+)\s*$/

/** Reads a number as a C++ stream printed it (`3.7346e-007`, `nan`, `-inf`, MSVC's `1.#QNAN`). */
export function parseCxxNumber (text: string): number {
  const t = text.toLowerCase()
  if (t.includes('#')) {
    if (t.includes('#inf')) return t.startsWith('-') ? -Infinity : Infinity
    return NaN
  }
  if (/^[-+]?nan$/.test(t)) return NaN
  if (/^[-+]?inf(inity)?$/.test(t)) return t.startsWith('-') ? -Infinity : Infinity
  return Number(t)
}

/**
 * Incremental parser of Caffe's glog output (stderr or a glog log file). Feed it chunks of any
 * size — split lines, split CRLF pairs and split UTF-8 sequences are all fine — and it returns
 * the events of every line completed so far. Lines from other threads (prefetch debug output),
 * glog file headers and shell output are skipped.
 */
export class CaffeLogParser {
  readonly summary: CaffeLogSummary = {
    maxIter: undefined,
    iteration: undefined,
    lastLoss: undefined,
    lastLr: undefined,
    trainLossCount: 0,
    testPasses: 0,
    lastTest: undefined,
    lastModelSnapshot: undefined,
    lastSolverStateSnapshot: undefined,
    resumedFrom: undefined,
    done: false,
    fatal: undefined
  }

  private readonly decoder = new TextDecoder()
  private partial = ''
  private lineNo = 0
  private lastTrainIter: number | undefined
  private testIter: number | undefined
  private testNet: number | undefined
  /** Lines of an ongoing "Initializing solver from parameters:" block; undefined outside one. */
  private solverBlock: string[] | undefined
  private solverBlockStart = 0

  /** Parses the lines a chunk completes. */
  push (chunk: string | Uint8Array): CaffeLogEvent[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true })
    const events: CaffeLogEvent[] = []
    let data = this.partial + text
    let nl = data.indexOf('\n')
    let start = 0
    while (nl >= 0) {
      this.line(data.slice(start, nl), events)
      start = nl + 1
      nl = data.indexOf('\n', start)
    }
    data = data.slice(start)
    this.partial = data
    return events
  }

  /** Parses whatever is left (a last line without a newline) and closes open blocks. */
  end (): CaffeLogEvent[] {
    const events: CaffeLogEvent[] = []
    const rest = this.partial + this.decoder.decode()
    this.partial = ''
    if (rest !== '') this.line(rest, events)
    this.closeSolverBlock(events)
    return events
  }

  private line (raw: string, events: CaffeLogEvent[]): void {
    this.lineNo++
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    const m = GLOG.exec(text)
    if (m === null) {
      // Continuation lines of a multi-line glog message (the solver/net dumps, stack traces).
      if (this.solverBlock !== undefined) this.solverLine(text, events)
      return
    }
    this.closeSolverBlock(events)
    const glog: GlogHeader = {
      severity: m[1] as GlogSeverity,
      month: Number(m[2]),
      day: Number(m[3]),
      time: m[4] ?? '',
      threadId: Number(m[5]),
      file: m[6] ?? '',
      sourceLine: Number(m[7])
    }
    const message = m[8] ?? ''
    const base = { lineNo: this.lineNo, glog }
    if (glog.severity === 'F') {
      events.push(this.record({ ...base, kind: 'fatal', message: message.trimEnd(), checkFailed: message.startsWith('Check failed') }))
      return
    }
    this.message(message, base, events)
  }

  private message (message: string, base: EventBase, events: CaffeLogEvent[]): void {
    const c = message.charCodeAt(0)
    // Most lines in a long log are net set-up and debug output; cheap prefix checks come first.
    if (message.startsWith('Iteration ')) {
      let m = LOSS_OLD.exec(message)
      if (m !== null) {
        this.lastTrainIter = Number(m[1])
        events.push(this.record({ ...base, kind: 'train-loss', iter: Number(m[1]), loss: parseCxxNumber(m[2] ?? '') }))
        return
      }
      m = LOSS_NEW.exec(message)
      if (m !== null) {
        this.lastTrainIter = Number(m[1])
        events.push(this.record({
          ...base,
          kind: 'train-loss',
          iter: Number(m[1]),
          loss: parseCxxNumber(m[5] ?? ''),
          itersPerSecond: parseCxxNumber(m[2] ?? ''),
          secondsPerInterval: parseCxxNumber(m[3] ?? ''),
          interval: Number(m[4])
        }))
        return
      }
      m = LR.exec(message)
      if (m !== null) {
        events.push(this.record({ ...base, kind: 'lr', iter: Number(m[1]), lr: parseCxxNumber(m[2] ?? '') }))
        return
      }
      m = TESTING.exec(message)
      if (m !== null) {
        this.testIter = Number(m[1])
        this.testNet = Number(m[2])
        events.push(this.record({ ...base, kind: 'test-start', iter: Number(m[1]), net: Number(m[2]) }))
      }
      return
    }
    if (c === 32 /* indented net outputs */ || c === 84 /* T */) {
      const m = OUTPUT.exec(message)
      if (m === null) return
      const output: NetOutput = {
        index: Number(m[2]),
        name: m[3] ?? '',
        value: parseCxxNumber(m[4] ?? ''),
        lossWeight: m[5] === undefined ? undefined : parseCxxNumber(m[5]),
        weightedLoss: m[6] === undefined ? undefined : parseCxxNumber(m[6])
      }
      if (m[1]?.toLowerCase() === 'train') events.push(this.record({ ...base, kind: 'train-output', iter: this.lastTrainIter, ...output }))
      else events.push(this.record({ ...base, kind: 'test-output', iter: this.testIter, net: this.testNet, ...output }))
      return
    }
    if (message.startsWith('Snapshotting ')) {
      const m = SNAPSHOT.exec(message)
      if (m === null) return
      const format = m[2] === undefined ? undefined : m[2] === 'HDF5' ? 'hdf5' : 'binaryproto'
      events.push(this.record({ ...base, kind: 'snapshot', what: m[1] === undefined ? 'model' : 'solverstate', path: m[3] ?? '', format }))
      return
    }
    if (message.startsWith('Resuming from ')) {
      events.push(this.record({ ...base, kind: 'resume', path: message.slice(14).trim(), by: 'caffe' }))
      return
    }
    if (message.startsWith('Restoring previous solver status from ')) {
      events.push(this.record({ ...base, kind: 'resume', path: message.slice(38).trim(), by: 'solver' }))
      return
    }
    if (message.startsWith('Optimization Done.')) {
      events.push(this.record({ ...base, kind: 'done' }))
      return
    }
    if (message.startsWith('Solving ')) {
      events.push(this.record({ ...base, kind: 'solving', net: message.slice(8).trim() }))
      return
    }
    if (message.startsWith('Initializing solver from parameters:')) {
      this.solverBlock = []
      this.solverBlockStart = this.lineNo
      const rest = message.slice('Initializing solver from parameters:'.length).trim()
      if (rest !== '') this.solverLine(rest, events)
    }
  }

  private solverLine (text: string, events: CaffeLogEvent[]): void {
    this.solverBlock?.push(text)
    const m = MAX_ITER.exec(text)
    if (m !== null) events.push(this.record({ lineNo: this.lineNo, kind: 'max-iter', maxIter: Number(m[1]) }))
  }

  private closeSolverBlock (events: CaffeLogEvent[]): void {
    if (this.solverBlock === undefined) return
    const text = this.solverBlock.length === 0 ? '' : `${this.solverBlock.join('\n')}\n`
    this.solverBlock = undefined
    events.push(this.record({ lineNo: this.solverBlockStart, kind: 'solver-parameters', text }))
  }

  /** Folds an event into the summary and passes it through. */
  private record (e: CaffeLogEvent): CaffeLogEvent {
    const s = this.summary
    const seen = (iter: number): void => { s.iteration = Math.max(s.iteration ?? iter, iter) }
    switch (e.kind) {
      case 'train-loss': s.lastLoss = { iter: e.iter, loss: e.loss }; s.trainLossCount++; seen(e.iter); break
      case 'lr': s.lastLr = { iter: e.iter, lr: e.lr }; seen(e.iter); break
      case 'test-start': s.testPasses++; s.lastTest = { iter: e.iter, net: e.net, outputs: {} }; seen(e.iter); break
      case 'test-output': if (s.lastTest !== undefined) s.lastTest.outputs[e.name] = e.value; break
      case 'snapshot':
        if (e.what === 'model') s.lastModelSnapshot = e.path
        else s.lastSolverStateSnapshot = e.path
        break
      case 'resume': s.resumedFrom = e.path; break
      case 'max-iter': s.maxIter = e.maxIter; break
      case 'done': s.done = true; break
      case 'fatal': s.fatal ??= e.message; break
      default: break
    }
    return e
  }
}

/** A parser for one log stream. */
export function createCaffeLogParser (): CaffeLogParser {
  return new CaffeLogParser()
}

/** Parses a whole log at once. */
export function parseCaffeLog (text: string): { events: CaffeLogEvent[], summary: CaffeLogSummary } {
  const p = new CaffeLogParser()
  const events = [...p.push(text), ...p.end()]
  return { events, summary: p.summary }
}
