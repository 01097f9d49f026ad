import type { JobType } from '../../models/common.js'
import { MAX_PROCESSING_LOG } from '../../models/common.js'
import { isJobType, jobTypes } from '../../models/documents.js'
import type { DocumentOf, JobDocument, OwnedType } from '../../models/documents.js'
import { casUpdate } from '../db/cas-update.js'
import { DESIGN } from '../db/design.js'
import type { Documents } from '../db/documents.js'
import { parseStored } from '../db/parse-stored.js'
import { NotFoundError } from '../lib/errors.js'

/** The worker no longer owns the job: its lease was taken over, or the user cancelled it. */
export class LeaseLostError extends Error {
  readonly state: string
  constructor (jobId: string, state: string) {
    super(state === 'cancelled' ? `job ${jobId} was cancelled` : `job ${jobId} is no longer held by this worker (now ${state})`)
    this.name = 'LeaseLostError'
    this.state = state
  }
}

export type ClaimResult =
  | { kind: 'claimed', job: JobDocument }
  | { kind: 'skipped', state: string }
  | { kind: 'exhausted', job: JobDocument }

/**
 * System-side access to job documents for workers, the dispatcher and the reaper: no tenant
 * scoping (they act for every tenant), and every state change is one rev-checked update that
 * also checks who holds the job, so two workers can never both believe they run it.
 */
export class JobStore {
  readonly docs: Documents

  constructor (docs: Documents) {
    this.docs = docs
  }

  /** Reads a job document of any job type; NotFoundError if missing or not a job. */
  async readJob (id: string): Promise<JobDocument> {
    const raw = await this.docs.read(id)
    const type: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'type') : undefined
    if (typeof type !== 'string' || !isJobType(type)) throw new NotFoundError(`job '${id}' not found`)
    return parseStored(type, raw)
  }

  /** Reads any owned document by id and type (a job's solver, dataset, …). */
  async read<T extends OwnedType> (type: T, id: string): Promise<DocumentOf<T>> {
    const raw = await this.docs.read(id)
    if (typeof raw !== 'object' || raw === null || Reflect.get(raw, 'type') !== type) throw new NotFoundError(`${type} '${id}' not found`)
    return parseStored(type, raw)
  }

  /**
   * pending → processing for this worker, attempt + 1, with a lease. A job that is not pending
   * (someone else claimed it, it ended, it was cancelled) is skipped; a job that has used up
   * its attempts is failed instead of run.
   */
  async claim (id: string, workerId: string, leaseMs: number, maxAttempts: number): Promise<ClaimResult> {
    // Set inside the update function, which may run more than once (409 retries): the last run wins.
    const box: { outcome: ClaimResult } = { outcome: { kind: 'skipped', state: 'unknown' } }
    const result = await casUpdate<JobDocument>(async () => await this.readJob(id), this.writer(), (doc) => {
      const now = new Date()
      if (doc['processing-state'] !== 'pending') {
        box.outcome = { kind: 'skipped', state: doc['processing-state'] }
        return null
      }
      if (doc.attempts >= maxAttempts) {
        const next = { ...doc, 'processing-state': 'failed' as const, 'finished-at': now.toISOString(), 'worker-id': null, 'lease-expires-at': null, 'processing-log': clip(`gave up after ${doc.attempts} attempt${doc.attempts === 1 ? '' : 's'}: ${doc['processing-log'] === '' ? 'no attempt finished' : doc['processing-log']}`) }
        box.outcome = { kind: 'exhausted', job: next }
        return next
      }
      const next = { ...doc, 'processing-state': 'processing' as const, 'worker-id': workerId, attempts: doc.attempts + 1, 'lease-expires-at': new Date(now.getTime() + leaseMs).toISOString(), 'started-at': now.toISOString(), 'retry-at': null }
      box.outcome = { kind: 'claimed', job: next }
      return next
    })
    // The written copy carries the new _rev.
    return box.outcome.kind === 'skipped' ? box.outcome : { ...box.outcome, job: result.doc }
  }

  /** Extends this worker's lease; throws LeaseLostError if the job was cancelled or taken over. */
  async renew (id: string, workerId: string, leaseMs: number): Promise<JobDocument> {
    return await this.update(id, workerId, (doc) => ({ ...doc, 'lease-expires-at': new Date(Date.now() + leaseMs).toISOString() }))
  }

  /** Changes a job this worker holds (progress, artifact URLs); LeaseLostError if it no longer does. */
  async update<T extends JobDocument> (id: string, workerId: string, change: (doc: T) => T): Promise<T> {
    const result = await casUpdate<T>(async () => await this.readJob(id) as T, this.writer(), (doc) => {
      if (doc['processing-state'] !== 'processing' || doc['worker-id'] !== workerId) throw new LeaseLostError(id, doc['processing-state'])
      return change(doc)
    })
    return result.doc
  }

  /** processing → finished_successfully with the runner's final fields, artifacts already stored. */
  async finish<T extends JobDocument> (id: string, workerId: string, change: (doc: T) => T): Promise<T> {
    return await this.update<T>(id, workerId, (doc) => ({ ...change(doc), 'processing-state': 'finished_successfully', 'processing-log': '', 'finished-at': new Date().toISOString(), 'lease-expires-at': null }))
  }

  /** processing → failed with a message written for the user. */
  async fail (id: string, workerId: string, reason: string): Promise<JobDocument> {
    return await this.update(id, workerId, (doc) => ({ ...doc, 'processing-state': 'failed', 'processing-log': clip(reason), 'finished-at': new Date().toISOString(), 'lease-expires-at': null }))
  }

  /** A job that cannot start yet or failed in a way worth retrying (or past its attempts: failed). */
  async release (id: string, workerId: string, reason: string, retryAt: Date | null, maxAttempts: number): Promise<JobDocument> {
    return await this.update(id, workerId, (doc) => doc.attempts >= maxAttempts
      ? { ...doc, 'processing-state': 'failed', 'processing-log': clip(`gave up after ${doc.attempts} attempts: ${reason}`), 'finished-at': new Date().toISOString(), 'lease-expires-at': null, 'worker-id': null }
      : { ...doc, 'processing-state': 'pending', 'processing-log': clip(reason), 'lease-expires-at': null, 'worker-id': null, 'retry-at': retryAt?.toISOString() ?? null })
  }

  /** Gives a job back without spending an attempt (shutdown, or claimed before its inputs were ready). */
  async unclaim (id: string, workerId: string, reason: string): Promise<JobDocument> {
    return await this.update(id, workerId, (doc) => ({ ...doc, 'processing-state': 'pending', 'processing-log': clip(reason), attempts: Math.max(0, doc.attempts - 1), 'lease-expires-at': null, 'worker-id': null }))
  }

  /** Ids of jobs in `state`, by type (the pending sweep, metrics, the status command). */
  async idsInState (state: 'pending' | 'processing', types: readonly JobType[] = jobTypes): Promise<Array<{ id: string, type: JobType, leaseExpiresAt: string }>> {
    const found: Array<{ id: string, type: JobType, leaseExpiresAt: string }> = []
    for (const type of types) {
      const res = await this.docs.couch.view(DESIGN, 'by-state', { startkey: [type, state, ''], endkey: [type, state, {}], reduce: false })
      for (const row of res.rows) {
        const key = row.key as [string, string, string]
        found.push({ id: row.id, type, leaseExpiresAt: key[2] })
      }
    }
    return found
  }

  /**
   * Returns jobs whose worker stopped renewing its lease to `pending` (or `failed` past the
   * attempt limit) and reports how many it touched. Safe to run from every server at once.
   */
  async reapExpired (maxAttempts: number, now = new Date()): Promise<Array<{ id: string, state: string }>> {
    const reaped: Array<{ id: string, state: string }> = []
    const cutoff = now.toISOString()
    for (const type of jobTypes) {
      const res = await this.docs.couch.view(DESIGN, 'by-state', { startkey: [type, 'processing', ''], endkey: [type, 'processing', cutoff], reduce: false })
      for (const row of res.rows) {
        const result = await casUpdate<JobDocument>(async () => await this.readJob(row.id), this.writer(), (doc) => {
          const lease = doc['lease-expires-at']
          if (doc['processing-state'] !== 'processing' || lease === null || lease > cutoff) return null
          const who = doc['worker-id'] ?? 'the worker'
          return doc.attempts >= maxAttempts
            ? { ...doc, 'processing-state': 'failed', 'processing-log': clip(`${who} stopped responding during attempt ${doc.attempts} of ${maxAttempts} (its lease expired); giving up`), 'finished-at': now.toISOString(), 'lease-expires-at': null, 'worker-id': null }
            : { ...doc, 'processing-state': 'pending', 'processing-log': clip(`${who} stopped responding during attempt ${doc.attempts} (its lease expired); the job was returned to the queue`), 'lease-expires-at': null, 'worker-id': null }
        }).catch((err: unknown) => {
          if (err instanceof NotFoundError) return { written: false, doc: undefined }
          throw err
        })
        if (result.written && result.doc !== undefined) reaped.push({ id: row.id, state: result.doc['processing-state'] })
      }
    }
    return reaped
  }

  private writer (): (doc: JobDocument) => Promise<string> {
    return async (doc) => await this.docs.write({ ...doc, 'updated-at': new Date().toISOString() } as unknown as { _id: string } & Record<string, unknown>)
  }
}

/** Keeps a processing-log within its limit, cutting the middle so both ends stay readable. */
export function clip (message: string): string {
  if (message.length <= MAX_PROCESSING_LOG) return message
  const half = Math.floor((MAX_PROCESSING_LOG - 20) / 2)
  return `${message.slice(0, half)}\n[… cut …]\n${message.slice(-half)}`
}
