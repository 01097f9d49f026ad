import type { JobMessage } from '../models/job-message.js'
import { AppError } from '../src/lib/errors.js'

/**
 * What a handler tells the consumer to do with the message it was given. `done` acknowledges
 * (NSQ FIN) and must only be returned once the job's final state is saved; `retry` redelivers
 * after `delayMs` (NSQ REQ); `drop` acknowledges a message that can never succeed, with a log line.
 */
export type JobOutcome =
  | { kind: 'done' }
  | { kind: 'retry', delayMs: number, reason: string }
  | { kind: 'drop', reason: string }

/**
 * One delivery of a message. Delivery is at-least-once: the same message may arrive again (after
 * a crash, a timeout or a duplicate schedule), so handlers must claim before they work.
 */
export interface Delivery {
  /** Broker message id (NSQ's 16-character id; a sequence number in process). */
  readonly messageId: string
  /** 1-based count of deliveries of this message, including this one. */
  readonly attempts: number
  /** Configured attempt limit, or undefined for none. Never enforced here: past it the handler decides. */
  readonly maxAttempts: number | undefined
  /** Aborts when the consumer is shutting down and its grace period has run out. */
  readonly signal: AbortSignal
  /** Extends the broker's message timeout (NSQ TOUCH); a no-op in process. Safe to call at any time. */
  touch: () => void
}

/** Handles one job message. Throwing counts as a retry with exponential backoff. */
export type JobHandler = (msg: JobMessage, delivery: Delivery) => Promise<JobOutcome>

export interface ConsumerOptions {
  /** Handlers running at once; defaults to the scheduler config's `concurrency`. */
  concurrency?: number
  /** Aborting it closes the consumer with `graceMs`. */
  signal?: AbortSignal
  /** Grace period used when `signal` aborts (default 10 s). */
  graceMs?: number
}

export interface CloseOptions {
  /** How long running handlers may keep going before their signal aborts (default 0). */
  graceMs?: number
}

/**
 * A running consumer. `close()` stops intake at once, waits up to `graceMs` for running
 * handlers, then aborts their signal and puts their messages back on the queue; it resolves
 * when every handler has settled and is memoised (a second call returns the same promise).
 */
export interface Consumer {
  /** Resolves once the consumer can receive messages (NSQ: first subscription acknowledged). */
  readonly ready: Promise<void>
  /** Handlers currently running. */
  readonly running: number
  close: (options?: CloseOptions) => Promise<void>
}

export type SchedulerKind = 'in-process' | 'nsq'

/**
 * Carries job wake-up calls from the changes listener to workers. `schedule()` resolves once
 * the message is durably handed over (NSQ: after nsqd's OK) and rejects with `UnavailableError`
 * when the broker cannot be reached, `SchedulerClosedError` after `close()`. It never waits for
 * running work. `close()` closes producer connections and any consumer still open (grace 0).
 */
export interface Scheduler {
  readonly kind: SchedulerKind
  schedule: (msg: JobMessage) => Promise<void>
  startConsumer: (handler: JobHandler, options?: ConsumerOptions) => Consumer
  close: () => Promise<void>
}

type LogFn = (obj: object, msg?: string) => void

/** The slice of pino's Logger the schedulers use; a pino logger fits as is. */
export interface SchedulerLogger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
  child: (bindings: Record<string, unknown>) => SchedulerLogger
}

/** `schedule()` or `startConsumer()` was called after the scheduler was closed. */
export class SchedulerClosedError extends AppError {
  constructor (kind: SchedulerKind) {
    super(503, 'ET_SCHEDULER_CLOSED', `the ${kind} scheduler is closed`)
  }
}
