import { isJobType } from '../../models/documents.js'
import type { Scheduler } from '../../schedulers/scheduler.js'
import type { CouchDatabase } from '../db/couch.js'
import { DESIGN } from '../db/design.js'
import { ConflictError, NotFoundError } from '../lib/errors.js'
import type { Logger } from '../lib/logger.js'
import type { JobStore } from '../jobs/job-store.js'
import { ChangesFeed } from './changes-feed.js'
import type { Change } from './changes-feed.js'

export interface JobDispatcherOptions {
  couch: CouchDatabase
  store: JobStore
  scheduler: Scheduler
  logger: Logger
  /** Names this dispatcher's checkpoint (`_local/…`), so servers sharing a database keep their own. */
  name?: string
  maxAttempts: number
  /** How often to look for expired leases (default: every 10 s). */
  reapIntervalMs?: number
  /** Also told about every change (the read cache, the auth cache). */
  onChange?: (change: Change) => void
  onLive?: (live: boolean) => void
  /** How long stop() waits for the change being handled and the last checkpoint (default 5 s). */
  stopGraceMs?: number
}

/**
 * Turns pending job documents into scheduler messages. It follows `_changes` from a checkpoint
 * kept in a `_local` document (so a restart neither misses changes nor replays the database
 * from the start), sweeps for jobs still pending on start (their messages may have died with a
 * previous process), wakes jobs waiting for one that just ended, and returns jobs whose worker
 * stopped renewing its lease. Scheduling never waits for job work; duplicates are harmless
 * because workers claim before they run.
 */
export class JobDispatcher {
  private readonly options: JobDispatcherOptions
  private readonly checkpointId: string
  private feed: ChangesFeed | undefined
  private chain: Promise<void> = Promise.resolve()
  private lastDone: unknown
  private lastSaved: unknown
  private checkpointRev: string | undefined
  private timers: NodeJS.Timeout[] = []
  private stopped = false
  /** A job may be pending without a message (a schedule or sweep failed): sweep at the next tick. */
  private sweepNeeded = false
  private sweeping = false

  constructor (options: JobDispatcherOptions) {
    this.options = options
    this.checkpointId = `_local/elastic-thought-dispatcher-${options.name ?? 'default'}`
  }

  get isLive (): boolean {
    return this.feed?.isLive ?? false
  }

  async start (): Promise<void> {
    const since = await this.loadCheckpoint()
    this.lastDone = since
    this.lastSaved = since
    this.feed = new ChangesFeed(this.options.couch, {
      since,
      includeDocs: true,
      logger: this.options.logger,
      ...(this.options.onLive === undefined ? {} : { onLive: this.options.onLive }),
      onChange: (change) => {
        this.options.onChange?.(change)
        // One change at a time, in feed order, so the checkpoint only ever moves past changes
        // whose jobs were handed to the scheduler.
        this.chain = this.chain.then(async () => { await this.handle(change) }).catch((err: unknown) => {
          // The change is behind us in the feed; only a sweep will find the job again.
          this.sweepNeeded = true
          this.options.logger.error({ err, docId: change.id }, 'scheduling a changed job failed; will sweep again')
        })
      }
    })
    this.feed.start()
    // A broker or database that is down now must not stop the start (nor leave the feed
    // running unowned): the sweep is retried every second until it succeeds.
    await this.retryableSweep()
    this.timers.push(setInterval(() => {
      this.saveCheckpoint().catch(() => {})
      if (this.sweepNeeded) this.retryableSweep().catch(() => {})
    }, 1000))
    this.timers.push(setInterval(() => { this.reap().catch(() => {}) }, this.options.reapIntervalMs ?? 10_000))
    for (const timer of this.timers) timer.unref()
  }

  /**
   * Stops following changes. The change in hand gets up to `stopGraceMs` to be scheduled; one
   * stuck on an unresponsive database or broker is abandoned rather than holding up shutdown,
   * which loses nothing: the checkpoint never moves past it, so the next start handles it again.
   */
  async stop (): Promise<void> {
    this.stopped = true
    for (const timer of this.timers) clearInterval(timer)
    await this.feed?.stop()
    const grace = this.options.stopGraceMs ?? 5000
    if (!await settlesWithin(this.chain, grace)) {
      this.options.logger.warn({ graceMs: grace }, 'stopping with a change still being handled; it will be handled again at the next start')
    }
    await settlesWithin(this.saveCheckpoint().catch(() => {}), grace)
  }

  /** Schedules every job still pending: run on start, cheap (one view query per job type). */
  async sweep (): Promise<number> {
    const pending = await this.options.store.idsInState('pending')
    for (const { id } of pending) await this.schedule(id)
    if (pending.length > 0) this.options.logger.info({ count: pending.length }, 'pending jobs scheduled at start')
    return pending.length
  }

  private async retryableSweep (): Promise<void> {
    if (this.sweeping || this.stopped) return
    this.sweeping = true
    this.sweepNeeded = false
    try {
      await this.sweep()
    } catch (err) {
      this.sweepNeeded = true
      this.options.logger.warn({ err }, 'sweep for pending jobs failed; will try again')
    } finally {
      this.sweeping = false
    }
  }

  /** Returns jobs with expired leases to the queue; their change then schedules them. */
  async reap (): Promise<void> {
    if (this.stopped) return
    const reaped = await this.options.store.reapExpired(this.options.maxAttempts)
    for (const job of reaped) this.options.logger.warn({ jobId: job.id, state: job.state }, 'expired lease reaped')
  }

  private async handle (change: Change): Promise<void> {
    const doc = change.doc
    if (change.deleted !== true && typeof doc === 'object' && doc !== null) {
      const type: unknown = Reflect.get(doc, 'type')
      const state: unknown = Reflect.get(doc, 'processing-state')
      if (typeof type === 'string' && isJobType(type)) {
        if (state === 'pending') await this.schedule(change.id)
        else if (state === 'finished_successfully' || state === 'failed' || state === 'cancelled') await this.wakeDependents(change.id)
      }
    }
    this.lastDone = change.seq
  }

  // A dataset waiting for its datafile (or a classify job for its training job) polls with a
  // backoff; when the input ends, schedule the waiters now instead of at their next poll.
  // Waiting can go through a document that is not a job: a training job waits for the dataset
  // of its solver, a classify job for the training job of its classifier. So the walk passes
  // through such documents (solvers, classifiers) and stops at jobs.
  private async wakeDependents (id: string, depth = 0): Promise<void> {
    const res = await this.options.couch.view(DESIGN, 'by-reference', { key: id, include_docs: true, limit: 1000 })
    for (const row of res.rows) {
      const doc = row.doc
      if (typeof doc !== 'object' || doc === null) continue
      const type: unknown = Reflect.get(doc, 'type')
      if (typeof type === 'string' && isJobType(type)) {
        if (Reflect.get(doc, 'processing-state') === 'pending') await this.schedule(row.id)
      } else if (depth < 2) {
        await this.wakeDependents(row.id, depth + 1)
      }
    }
  }

  private async schedule (id: string): Promise<void> {
    await this.options.scheduler.schedule({ 'doc-id-to-process': id })
  }

  private async loadCheckpoint (): Promise<unknown> {
    try {
      const doc = await this.options.couch.get(this.checkpointId)
      const rev: unknown = typeof doc === 'object' && doc !== null ? Reflect.get(doc, '_rev') : undefined
      this.checkpointRev = typeof rev === 'string' ? rev : undefined
      const since: unknown = typeof doc === 'object' && doc !== null ? Reflect.get(doc, 'since') : undefined
      if (since !== undefined) return since
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err
    }
    // First start against this database: nothing before now needs replaying, because the
    // sweep schedules whatever is still pending. A concrete sequence read before the sweep,
    // not 'now' (resolved whenever the feed's request lands), so a job created between the
    // sweep's query and the feed's start is not missed by both.
    return await this.options.couch.updateSeq()
  }

  private async saveCheckpoint (): Promise<void> {
    const since = this.lastDone
    if (since === this.lastSaved || since === 'now') return
    try {
      this.checkpointRev = await this.options.couch.put({ _id: this.checkpointId, ...(this.checkpointRev === undefined ? {} : { _rev: this.checkpointRev }), since, 'saved-at': new Date().toISOString() })
      this.lastSaved = since
    } catch (err) {
      // Another process with the same dispatcher name wrote it: adopt its revision next time.
      if (err instanceof ConflictError) this.checkpointRev = await this.currentCheckpointRev()
      else throw err
    }
  }

  private async currentCheckpointRev (): Promise<string | undefined> {
    try {
      const doc = await this.options.couch.get(this.checkpointId)
      const rev: unknown = typeof doc === 'object' && doc !== null ? Reflect.get(doc, '_rev') : undefined
      return typeof rev === 'string' ? rev : undefined
    } catch {
      return undefined
    }
  }
}

/** Whether `work` settles within `ms`; it is left running either way. */
async function settlesWithin (work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, ms) })
  try {
    return await Promise.race([work.then(() => true, () => true), expired])
  } finally {
    clearTimeout(timer)
  }
}
