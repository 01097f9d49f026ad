import { JobMessage } from '../models/job-message.js'
import { assertNever } from '../src/lib/assert-never.js'
import { coerceError } from '../src/lib/errors.js'
import type { CloseOptions, Consumer, Delivery, JobHandler, JobOutcome, SchedulerLogger } from './scheduler.js'

/** nsqd's default max-req-timeout; longer REQ delays are clamped by nsqd anyway. */
export const MAX_REQUEUE_DELAY_MS = 3_600_000

/** A message as a transport hands it over; each transport maps its acknowledgements onto these. */
export interface InboundMessage {
  readonly id: string
  readonly body: Buffer | string
  readonly attempts: number
  finish: () => void
  requeue: (delayMs: number) => void
  touch: () => void
  /** Interval of automatic TOUCHes while the handler runs; undefined turns them off. */
  readonly autoTouchMs: number | undefined
}

/** What a transport supplies to a ConsumerRuntime: limits, retry policy and its intake/shutdown hooks. */
export interface ConsumerRuntimeOptions {
  concurrency: number
  maxAttempts: number | undefined
  retryBaseMs: number
  retryMaxMs: number
  logger: SchedulerLogger
  ready: Promise<void>
  /** Called once when closing starts: the transport must stop handing over messages. */
  stopIntake: () => void
  /** Called once after every handler has settled: the transport releases its connections. */
  shutdown: () => Promise<void>
  /** Called after each handler settles, so a pulling transport can hand over more. */
  onSettled?: () => void
  signal?: AbortSignal
  signalGraceMs?: number
}

interface Running {
  readonly msg: InboundMessage
  /** Set once the message has been answered (FIN/REQ); later answers would be protocol errors. */
  answered: boolean
  touchTimer: NodeJS.Timeout | undefined
  settled: Promise<void>
}

type Parsed = { ok: true, msg: JobMessage } | { ok: false, reason: string }

/** Parses a wire body into a JobMessage without throwing. */
export function parseJobBody (body: Buffer | string): Parsed {
  let json: unknown
  try {
    json = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'))
  } catch {
    return { ok: false, reason: 'body is not JSON' }
  }
  const parsed = JobMessage.safeParse(json)
  if (!parsed.success) {
    return { ok: false, reason: `body is not a job message: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}` }
  }
  return { ok: true, msg: parsed.data }
}

/** Exponential backoff for a thrown handler: base, 2×base, 4×base, … capped at max. */
export function backoffDelayMs (attempts: number, baseMs: number, maxMs: number): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 30)
  return Math.min(maxMs, baseMs * 2 ** exponent)
}

function clampDelay (ms: number): number {
  // nsqd parses the REQ timeout as a base-10 integer and closes the connection on anything else.
  if (!Number.isFinite(ms) || ms <= 0) return 0
  return Math.min(Math.round(ms), MAX_REQUEUE_DELAY_MS)
}

function isOutcome (value: unknown): value is JobOutcome {
  if (typeof value !== 'object' || value === null) return false
  const kind: unknown = Reflect.get(value, 'kind')
  return kind === 'done' || kind === 'drop' || (kind === 'retry' && typeof Reflect.get(value, 'delayMs') === 'number')
}

/**
 * The transport-independent half of a consumer: bounded concurrency, body validation, outcome →
 * FIN/REQ mapping, automatic TOUCH and the two-stage close. Both schedulers wrap one of these.
 */
export class ConsumerRuntime implements Consumer {
  readonly ready: Promise<void>
  readonly #handler: JobHandler
  readonly #options: ConsumerRuntimeOptions
  readonly #log: SchedulerLogger
  readonly #running = new Set<Running>()
  readonly #abort = new AbortController()
  #closing: Promise<void> | undefined
  #onExternalAbort: (() => void) | undefined

  constructor (handler: JobHandler, options: ConsumerRuntimeOptions) {
    this.#handler = handler
    this.#options = options
    this.#log = options.logger
    this.ready = options.ready
    // Nobody may be listening to `ready`; a rejection must not become an unhandled one.
    this.ready.catch(() => {})
    const external = options.signal
    if (external !== undefined) {
      this.#onExternalAbort = () => { this.close({ graceMs: options.signalGraceMs ?? 10_000 }).catch(() => {}) }
      if (external.aborted) queueMicrotask(this.#onExternalAbort)
      else external.addEventListener('abort', this.#onExternalAbort, { once: true })
    }
  }

  get running (): number {
    return this.#running.size
  }

  get closing (): boolean {
    return this.#closing !== undefined
  }

  get hasCapacity (): boolean {
    return this.#closing === undefined && this.#running.size < this.#options.concurrency
  }

  /** Takes one message from the transport. Never throws: every path answers the message. */
  accept (msg: InboundMessage): void {
    if (this.#closing !== undefined) {
      // Sent before our RDY 0 reached the broker: hand it straight back for another consumer.
      this.#log.debug({ messageId: msg.id }, 'message released while closing')
      msg.requeue(0)
      return
    }
    const parsed = parseJobBody(msg.body)
    if (!parsed.ok) {
      this.#log.warn({ messageId: msg.id, attempts: msg.attempts, reason: parsed.reason }, 'invalid job message dropped')
      msg.finish()
      return
    }
    if (this.#running.size >= this.#options.concurrency) {
      // The broker should never exceed RDY; if it does (e.g. RDY redistributed across reconnects)
      // we refuse rather than break the concurrency bound.
      this.#log.warn({ messageId: msg.id, running: this.#running.size }, 'message over concurrency limit requeued')
      msg.requeue(1_000)
      return
    }
    const entry: Running = { msg, answered: false, touchTimer: undefined, settled: Promise.resolve() }
    const delivery: Delivery = {
      messageId: msg.id,
      attempts: msg.attempts,
      maxAttempts: this.#options.maxAttempts,
      signal: this.#abort.signal,
      touch: () => { if (!entry.answered) msg.touch() }
    }
    if (msg.autoTouchMs !== undefined) {
      entry.touchTimer = setInterval(() => { if (!entry.answered) msg.touch() }, msg.autoTouchMs)
    }
    this.#running.add(entry)
    entry.settled = this.#run(entry, parsed.msg, delivery)
  }

  async #run (entry: Running, job: JobMessage, delivery: Delivery): Promise<void> {
    const log = this.#log.child({ messageId: entry.msg.id, docId: job['doc-id-to-process'], attempts: entry.msg.attempts })
    let outcome: JobOutcome | undefined
    let failure: Error | undefined
    try {
      const value: unknown = await this.#handler(job, delivery)
      if (isOutcome(value)) outcome = value
      else failure = new Error(`handler returned an invalid outcome: ${JSON.stringify(value) ?? String(value)}`)
    } catch (err) {
      failure = coerceError(err)
    }
    clearInterval(entry.touchTimer)
    this.#running.delete(entry)
    try {
      if (entry.answered) {
        log.info({ outcome: outcome?.kind ?? 'error' }, 'handler settled after its message was released')
        return
      }
      entry.answered = true
      if (outcome === undefined) {
        const delayMs = backoffDelayMs(entry.msg.attempts, this.#options.retryBaseMs, this.#options.retryMaxMs)
        const max = this.#options.maxAttempts
        const exhausted = max !== undefined && entry.msg.attempts >= max
        // Past the limit the message is still requeued, loudly: only the job code may give up on a job.
        log[exhausted ? 'error' : 'warn']({ err: failure, delayMs, maxAttempts: max }, 'job handler failed, message requeued')
        entry.msg.requeue(delayMs)
        return
      }
      switch (outcome.kind) {
        case 'done':
          entry.msg.finish()
          log.debug({}, 'job message finished')
          break
        case 'retry': {
          const delayMs = clampDelay(outcome.delayMs)
          log.info({ delayMs, reason: outcome.reason }, 'job message requeued')
          entry.msg.requeue(delayMs)
          break
        }
        case 'drop':
          log.warn({ reason: outcome.reason }, 'job message dropped')
          entry.msg.finish()
          break
        default:
          assertNever(outcome)
      }
    } finally {
      this.#options.onSettled?.()
    }
  }

  close (options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(Math.max(0, options.graceMs ?? 0))
    return this.#closing
  }

  async #close (graceMs: number): Promise<void> {
    if (this.#onExternalAbort !== undefined) this.#options.signal?.removeEventListener('abort', this.#onExternalAbort)
    this.#options.stopIntake()
    const entries = [...this.#running]
    if (entries.length > 0) {
      this.#log.info({ running: entries.length, graceMs }, 'consumer draining')
      const all = Promise.all(entries.map(async (e) => await e.settled))
      let timer: NodeJS.Timeout | undefined
      const expired = await Promise.race([
        all.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), graceMs) })
      ])
      clearTimeout(timer)
      if (expired) {
        this.#abort.abort(new DOMException('consumer closed past its grace period', 'AbortError'))
        for (const entry of entries) {
          if (entry.answered) continue
          entry.answered = true
          clearInterval(entry.touchTimer)
          this.#log.warn({ messageId: entry.msg.id }, 'running job released past grace period')
          entry.msg.requeue(0)
        }
      }
      await all
    }
    await this.#options.shutdown()
  }
}
