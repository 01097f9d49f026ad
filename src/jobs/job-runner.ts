import type { BlobStore } from '../../blobstore/blob-store.js'
import type { JobType } from '../../models/common.js'
import type { DocumentOf } from '../../models/documents.js'
import type { Logger } from '../lib/logger.js'
import type { JobStore } from './job-store.js'

/** What a runner gets for one attempt at one job. */
export interface JobContext<T extends JobType> {
  /** The job as claimed (state processing, this worker's lease). */
  readonly job: DocumentOf<T>
  readonly workerId: string
  /** 1-based attempt number; a retry of a training job resumes from its last snapshot. */
  readonly attempt: number
  /** Aborts when the job is cancelled, its lease is lost, or the worker shuts down. */
  readonly signal: AbortSignal
  readonly log: Logger
  readonly blobs: BlobStore
  readonly store: JobStore
  /** A private directory for this attempt, removed afterwards whatever the outcome. */
  readonly workDir: string
  /** Saves fields of the job now (progress, artifact URLs); rejects with LeaseLostError if it is no longer ours. */
  update: (change: (doc: DocumentOf<T>) => DocumentOf<T>) => Promise<DocumentOf<T>>
  /** Keeps the broker from redelivering the message during long work (NSQ TOUCH). */
  touch: () => void
}

/** Whether a job's inputs are ready: a dataset waits for its datafiles, a training job for its dataset. */
export type Readiness =
  | { kind: 'ready' }
  | { kind: 'wait', delayMs: number, reason: string }
  | { kind: 'fail', reason: string }

/**
 * Runs one type of job. `run` stores artifacts first and then resolves to the change that
 * completes the document (URLs, labels, results); the skeleton saves it together with the
 * `finished_successfully` state in one rev-checked update. Throwing PermanentJobError fails
 * the job with its message; any other error is retried with backoff up to the attempt limit.
 */
export interface JobRunner<T extends JobType> {
  readonly type: T
  ready?: (job: DocumentOf<T>, store: JobStore) => Promise<Readiness>
  run: (ctx: JobContext<T>) => Promise<(doc: DocumentOf<T>) => DocumentOf<T>>
}

export type JobRunners = { [T in JobType]: JobRunner<T> }
