import type { JobHandler } from '../../schedulers/scheduler.js'

/**
 * What this process's job handler is doing: how many messages it is handling, since when each
 * job's current handling began, and when it last started or finished one. The worker's
 * --exit-when-idle reads it, and job metrics use it to tell a run of this process from an
 * older one. Counts every delivery, including those that only find a job waiting or done.
 */
export class JobActivity {
  #running = 0
  #lastActivityAt: number
  // Duplicate deliveries of one job may overlap: keep the earliest start until the last ends.
  readonly #starts = new Map<string, { at: number, count: number }>()
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
    this.#lastActivityAt = now()
  }

  /** Messages being handled now. */
  get running (): number {
    return this.#running
  }

  /** When a message was last taken or settled (or when this tracker was made). */
  get lastActivityAt (): number {
    return this.#lastActivityAt
  }

  /** Milliseconds with nothing running and nothing started; 0 while something runs. */
  idleMs (): number {
    return this.#running > 0 ? 0 : Math.max(0, this.#now() - this.#lastActivityAt)
  }

  /** When handling of `jobId` began in this process, if it is being handled now. */
  handlingSince (jobId: string): number | undefined {
    return this.#starts.get(jobId)?.at
  }

  wrap (handler: JobHandler): JobHandler {
    return async (msg, delivery) => {
      const id = msg['doc-id-to-process']
      // Counted before the first await: the consumer calls handlers synchronously on intake, so
      // an idle check in any later tick sees the message as running.
      this.#running++
      this.#lastActivityAt = this.#now()
      const start = this.#starts.get(id)
      if (start === undefined) this.#starts.set(id, { at: this.#lastActivityAt, count: 1 })
      else start.count++
      try {
        return await handler(msg, delivery)
      } finally {
        this.#running--
        this.#lastActivityAt = this.#now()
        const entry = this.#starts.get(id)
        if (entry !== undefined && --entry.count === 0) this.#starts.delete(id)
      }
    }
  }
}
