import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { BlobStore } from '../../blobstore/blob-store.js'
import type { JobType } from '../../models/common.js'
import type { DocumentOf, JobDocument } from '../../models/documents.js'
import type { JobHandler, JobOutcome } from '../../schedulers/scheduler.js'
import { NotFoundError, PermanentJobError } from '../lib/errors.js'
import type { Logger } from '../lib/logger.js'
import type { JobRunner, JobRunners } from './job-runner.js'
import { LeaseLostError } from './job-store.js'
import type { JobStore } from './job-store.js'

export interface JobHandlerDeps {
  store: JobStore
  blobs: BlobStore
  runners: JobRunners
  workerId: string
  leaseMs: number
  maxAttempts: number
  /** Parent of the per-attempt work dirs. */
  workRoot: string
  logger: Logger
  /** Called after a job reaches an end state (metrics, webhooks); never blocks the job. */
  onEnded?: (job: JobDocument) => void
}

/** Backoff before retry n (1-based): 5 s, 20 s, 80 s, … capped at 10 minutes. */
export function retryDelayMs (attempt: number): number {
  return Math.min(5000 * 4 ** Math.max(0, attempt - 1), 600_000)
}

/**
 * The consumer side of the job life cycle, shared by the in-process scheduler and the NSQ
 * worker: read the document, wait for its inputs, claim it (pending → processing, rev-checked),
 * run it while renewing the lease, and save the outcome before acknowledging the message.
 * Duplicate or stale messages find the job not pending and are acknowledged without work.
 */
export function createJobHandler (deps: JobHandlerDeps): JobHandler {
  return async (msg, delivery) => {
    const id = msg['doc-id-to-process']
    let job: JobDocument
    try {
      job = await deps.store.readJob(id)
    } catch (err) {
      if (err instanceof NotFoundError) return { kind: 'drop', reason: `document ${id} does not exist or is not a job` }
      throw err
    }
    if (job['processing-state'] !== 'pending') return { kind: 'done' }
    const retryAt = job['retry-at'] === null ? 0 : Date.parse(job['retry-at'])
    if (retryAt > Date.now()) return { kind: 'retry', delayMs: retryAt - Date.now(), reason: 'backing off after a failed attempt' }
    return await runJob(deps, job, delivery)
  }
}

async function runJob (deps: JobHandlerDeps, pending: JobDocument, delivery: Parameters<JobHandler>[1]): Promise<JobOutcome> {
  const runner = deps.runners[pending.type] as unknown as JobRunner<JobType>
  const log = deps.logger.child({ jobId: pending._id, jobType: pending.type, tenantId: pending['user-id'] })
  const readiness = runner.ready === undefined ? { kind: 'ready' as const } : await runner.ready(pending as DocumentOf<JobType>, deps.store)
  if (readiness.kind === 'wait') {
    log.debug({ reason: readiness.reason }, 'job waits for its inputs')
    return { kind: 'retry', delayMs: readiness.delayMs, reason: readiness.reason }
  }

  const claim = await deps.store.claim(pending._id, deps.workerId, deps.leaseMs, deps.maxAttempts)
  if (claim.kind === 'skipped') return { kind: 'done' }
  if (claim.kind === 'exhausted') {
    log.error({ attempts: pending.attempts }, 'job failed: out of attempts')
    deps.onEnded?.(claim.job)
    return { kind: 'done' }
  }
  const job = claim.job
  const attempt = job.attempts
  log.info({ attempt, workerId: deps.workerId }, 'job claimed')
  if (readiness.kind === 'fail') {
    const failed = await deps.store.fail(job._id, deps.workerId, readiness.reason)
    deps.onEnded?.(failed)
    log.warn({ reason: readiness.reason }, 'job failed: its inputs failed')
    return { kind: 'done' }
  }

  const lost = new AbortController()
  const signal = AbortSignal.any([lost.signal, delivery.signal])
  // Renew at a third of the lease so two missed renewals still leave time before it expires.
  const renewal = setInterval(() => {
    delivery.touch()
    deps.store.renew(job._id, deps.workerId, deps.leaseMs).catch((err: unknown) => {
      if (err instanceof LeaseLostError) lost.abort(err)
      else log.warn({ err }, 'lease renewal failed; will try again')
    })
  }, Math.max(50, Math.floor(deps.leaseMs / 3)))
  const started = Date.now()
  let workDir: string | undefined
  try {
    // Inside the try: a work root that cannot be written must release the job and stop the
    // renewal timer, or the lease is renewed forever and the job never runs nor gets reaped.
    await mkdir(deps.workRoot, { recursive: true })
    workDir = await mkdtemp(join(deps.workRoot, `${job._id}-a${attempt}-`))
    const complete = await runner.run({
      job: job as DocumentOf<JobType>,
      workerId: deps.workerId,
      attempt,
      signal,
      log,
      blobs: deps.blobs,
      store: deps.store,
      workDir,
      touch: () => { delivery.touch() },
      update: async (change) => await deps.store.update(job._id, deps.workerId, change as (doc: JobDocument) => JobDocument) as DocumentOf<JobType>
    })
    signal.throwIfAborted()
    const done = await deps.store.finish(job._id, deps.workerId, complete as (doc: JobDocument) => JobDocument)
    log.info({ attempt, durationMs: Date.now() - started }, 'job finished')
    deps.onEnded?.(done)
    return { kind: 'done' }
  } catch (err) {
    return await settleFailure(deps, job, err, { lost: lost.signal, shutdown: delivery.signal, log })
  } finally {
    clearInterval(renewal)
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true }).catch((err: unknown) => { log.warn({ err, workDir }, 'work dir could not be removed') })
  }
}

async function settleFailure (deps: JobHandlerDeps, job: JobDocument, err: unknown, how: { lost: AbortSignal, shutdown: AbortSignal, log: Logger }): Promise<JobOutcome> {
  const { log } = how
  const lostReason: unknown = how.lost.aborted ? how.lost.reason : err
  if (lostReason instanceof LeaseLostError) {
    // Cancelled by the user or reclaimed after our lease lapsed: the document is not ours to write.
    log.info({ state: lostReason.state }, lostReason.state === 'cancelled' ? 'job cancelled; work stopped' : 'job lease lost; work stopped')
    return { kind: 'done' }
  }
  if (how.shutdown.aborted) {
    await deps.store.unclaim(job._id, deps.workerId, `worker ${deps.workerId} shut down during attempt ${job.attempts}; the job was returned to the queue`)
      .catch((unclaimErr: unknown) => { log.warn({ err: unclaimErr }, 'could not return the job; the reaper will after its lease expires') })
    log.warn('job returned to the queue at shutdown')
    return { kind: 'done' }
  }
  const message = err instanceof Error ? err.message : String(err)
  try {
    if (err instanceof PermanentJobError) {
      log.error({ err }, 'job failed')
      const failed = await deps.store.fail(job._id, deps.workerId, message)
      deps.onEnded?.(failed)
      return { kind: 'done' }
    }
    const delay = retryDelayMs(job.attempts)
    const released = await deps.store.release(job._id, deps.workerId, `attempt ${job.attempts} failed: ${message}`, new Date(Date.now() + delay), deps.maxAttempts)
    if (released['processing-state'] === 'failed') {
      log.error({ err, attempts: job.attempts }, 'job failed: out of attempts')
      deps.onEnded?.(released)
    } else {
      log.warn({ err, attempt: job.attempts, retryInMs: delay }, 'job attempt failed; will retry')
    }
    return { kind: 'done' }
  } catch (saveErr) {
    if (saveErr instanceof LeaseLostError) {
      log.info({ state: saveErr.state }, 'job outcome not saved: the job is no longer ours')
      return { kind: 'done' }
    }
    // The outcome could not be saved (database down): let the broker redeliver; the lease
    // expires and the reaper or the next delivery sorts it out.
    throw saveErr
  }
}
