import { JobMessage } from '../models/job-message.js'
import { ValidationError } from '../src/lib/errors.js'
import { ConsumerRuntime } from './consumer-runtime.js'
import type { InboundMessage } from './consumer-runtime.js'
import type { InProcessSchedulerConfig } from './scheduler-config.js'
import { SchedulerClosedError } from './scheduler.js'
import type { Consumer, ConsumerOptions, JobHandler, Scheduler, SchedulerLogger } from './scheduler.js'
import { silentLogger } from './silent-logger.js'

interface QueuedJob {
  readonly id: string
  readonly body: string
  /** Deliveries so far; the next delivery reports attempts + 1. */
  attempts: number
  state: 'queued' | 'delayed' | 'running'
  timer: NodeJS.Timeout | undefined
}

/** Counters of an InProcessScheduler since it started; `queued`/`delayed` are current sizes. */
export interface InProcessSchedulerStats {
  scheduled: number
  coalesced: number
  delivered: number
  finished: number
  requeued: number
  queued: number
  delayed: number
}

/**
 * Scheduler that keeps its queue in this process: FIFO, bounded concurrency, delayed retries.
 * Messages live only as long as the process; after a restart the changes listener's sweep of
 * pending documents schedules them again.
 */
export class InProcessScheduler implements Scheduler {
  readonly kind = 'in-process'
  readonly #config: InProcessSchedulerConfig
  readonly #log: SchedulerLogger
  // A plain array with a moving head: O(1) dequeue without a linked list.
  #queue: QueuedJob[] = []
  #head = 0
  /** Body → the job still waiting for delivery (queued or delayed), for coalescing duplicates. */
  readonly #pending = new Map<string, QueuedJob>()
  readonly #delayed = new Set<QueuedJob>()
  readonly #consumers: ConsumerRuntime[] = []
  #nextConsumer = 0
  #nextId = 1
  #dispatchQueued = false
  #closing: Promise<void> | undefined
  readonly #stats: Omit<InProcessSchedulerStats, 'queued' | 'delayed'> = { scheduled: 0, coalesced: 0, delivered: 0, finished: 0, requeued: 0 }

  constructor (config: InProcessSchedulerConfig, logger: SchedulerLogger = silentLogger) {
    this.#config = config
    this.#log = logger.child({ scheduler: 'in-process' })
  }

  stats (): InProcessSchedulerStats {
    return { ...this.#stats, queued: this.#queue.length - this.#head, delayed: this.#delayed.size }
  }

  async schedule (msg: JobMessage): Promise<void> {
    const parsed = JobMessage.safeParse(msg)
    if (!parsed.success) throw new ValidationError('not a job message', { issues: parsed.error.issues })
    this.publishRaw(JSON.stringify(parsed.data))
  }

  /**
   * Enqueues a body without validating it, as a broker would accept any bytes; consumers drop
   * bodies that are not job messages. Used by tests and by bridges from other queues.
   */
  publishRaw (body: string): void {
    if (this.#closing !== undefined) throw new SchedulerClosedError(this.kind)
    this.#stats.scheduled++
    // A job already waiting will read the newest document when it runs, so a second copy adds
    // nothing. A job already running is not coalesced: it may have read the document too early.
    const waiting = this.#pending.get(body)
    if (waiting !== undefined) {
      this.#stats.coalesced++
      // A copy waiting out a retry delay is woken instead: a fresh schedule means something
      // changed (the input it waited for is ready), and the handler re-checks any backoff itself.
      if (waiting.state === 'delayed') {
        clearTimeout(waiting.timer)
        waiting.timer = undefined
        this.#delayed.delete(waiting)
        this.#enqueue(waiting)
      }
      return
    }
    const job: QueuedJob = { id: String(this.#nextId++), body, attempts: 0, state: 'queued', timer: undefined }
    this.#pending.set(body, job)
    this.#enqueue(job)
  }

  startConsumer (handler: JobHandler, options: ConsumerOptions = {}): Consumer {
    if (this.#closing !== undefined) throw new SchedulerClosedError(this.kind)
    const runtime: ConsumerRuntime = new ConsumerRuntime(handler, {
      concurrency: options.concurrency ?? this.#config.concurrency,
      maxAttempts: this.#config.maxAttempts > 0 ? this.#config.maxAttempts : undefined,
      retryBaseMs: this.#config.retryBaseMs,
      retryMaxMs: this.#config.retryMaxMs,
      logger: this.#log,
      ready: Promise.resolve(),
      stopIntake: () => {
        const index = this.#consumers.indexOf(runtime)
        if (index !== -1) this.#consumers.splice(index, 1)
      },
      shutdown: async () => {},
      onSettled: () => this.#scheduleDispatch(),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.graceMs === undefined ? {} : { signalGraceMs: options.graceMs })
    })
    this.#consumers.push(runtime)
    this.#scheduleDispatch()
    return runtime
  }

  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    await Promise.all([...this.#consumers].map(async (c) => await c.close({ graceMs: 0 })))
    for (const job of this.#delayed) clearTimeout(job.timer)
    this.#delayed.clear()
    this.#pending.clear()
    this.#queue = []
    this.#head = 0
  }

  #enqueue (job: QueuedJob): void {
    job.state = 'queued'
    this.#queue.push(job)
    this.#scheduleDispatch()
  }

  #requeue (job: QueuedJob, delayMs: number): void {
    this.#stats.requeued++
    if (this.#closing !== undefined) return
    const waiting = this.#pending.get(job.body)
    if (waiting !== undefined) {
      // A fresh copy arrived while this one ran; keep one, remembering the higher attempt count.
      waiting.attempts = Math.max(waiting.attempts, job.attempts)
      return
    }
    this.#pending.set(job.body, job)
    if (delayMs <= 0) {
      this.#enqueue(job)
      return
    }
    job.state = 'delayed'
    this.#delayed.add(job)
    job.timer = setTimeout(() => {
      this.#delayed.delete(job)
      job.timer = undefined
      this.#enqueue(job)
    }, delayMs)
  }

  // Dispatch runs on a microtask so schedule() returns before any handler code runs: the
  // original blocked its changes feed inside ScheduleJob while a job ran.
  #scheduleDispatch (): void {
    if (this.#dispatchQueued) return
    this.#dispatchQueued = true
    queueMicrotask(() => {
      this.#dispatchQueued = false
      this.#dispatch()
    })
  }

  #dispatch (): void {
    while (this.#head < this.#queue.length) {
      const consumer = this.#pickConsumer()
      if (consumer === undefined) break
      const job = this.#queue[this.#head]
      this.#head++
      if (job === undefined) continue
      if (this.#pending.get(job.body) === job) this.#pending.delete(job.body)
      job.state = 'running'
      job.attempts++
      this.#stats.delivered++
      consumer.accept(this.#inbound(job))
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
  }

  #pickConsumer (): ConsumerRuntime | undefined {
    const n = this.#consumers.length
    for (let i = 0; i < n; i++) {
      const candidate = this.#consumers[(this.#nextConsumer + i) % n]
      if (candidate?.hasCapacity === true) {
        this.#nextConsumer = (this.#nextConsumer + i + 1) % n
        return candidate
      }
    }
    return undefined
  }

  #inbound (job: QueuedJob): InboundMessage {
    return {
      id: job.id,
      body: job.body,
      attempts: job.attempts,
      finish: () => { this.#stats.finished++ },
      requeue: (delayMs) => this.#requeue(job, delayMs),
      touch: () => {},
      autoTouchMs: undefined
    }
  }
}
