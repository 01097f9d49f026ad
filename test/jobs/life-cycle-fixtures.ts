import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inject } from 'vitest'
import { createBlobStore } from '../../blobstore/index.js'
import type { BlobStore } from '../../blobstore/index.js'
import type { DocumentOf } from '../../models/documents.js'
import { createScheduler } from '../../schedulers/index.js'
import type { JobHandler, JobOutcome, Scheduler } from '../../schedulers/index.js'
import { SchedulerConfig } from '../../schedulers/scheduler-config.js'
import type { JobMessage } from '../../models/job-message.js'
import { CouchDatabase } from '../../src/db/couch.js'
import type { CouchLocation } from '../../src/db/couch.js'
import { installDesign } from '../../src/db/design.js'
import { Documents } from '../../src/db/documents.js'
import { OwnedRepository } from '../../src/db/owned-repository.js'
import { createJobHandler } from '../../src/jobs/job-handler.js'
import type { JobHandlerDeps } from '../../src/jobs/job-handler.js'
import type { JobContext, JobRunner, JobRunners } from '../../src/jobs/job-runner.js'
import { JobStore } from '../../src/jobs/job-store.js'
import { PermanentJobError } from '../../src/lib/errors.js'
import { createLogger } from '../../src/lib/logger.js'
import type { Logger } from '../../src/lib/logger.js'

export const TENANT = 'user:alice'

/** Silent unless ET_TEST_LOG names a level (debugging a failing run). */
export const testLogger: Logger = createLogger(process.env.ET_TEST_LOG ?? 'silent')

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `check` holds; the error names what never happened. */
export async function waitFor (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

/** A fresh database with the design document, and the stores the job code uses over it. */
export interface TestDb {
  couch: CouchDatabase
  docs: Documents
  store: JobStore
  repo: OwnedRepository
  drop: () => Promise<void>
}

export async function openTestDb (location: Partial<CouchLocation> = {}): Promise<TestDb> {
  const couch = new CouchDatabase({ serverUrl: inject('couchUrl'), dbName: `test_${randomUUID().replaceAll('-', '')}`, ...location })
  await couch.ensureExists()
  await installDesign(couch)
  const docs = new Documents(couch)
  return {
    couch,
    docs,
    store: new JobStore(docs),
    repo: new OwnedRepository(docs),
    drop: async () => {
      await couch.server.db.destroy(couch.name).catch(() => {})
      await couch.close()
    }
  }
}

/** Writes a pending datafile job (the simplest job type) straight into the database. */
export async function createDatafileJob (docs: Documents, fields: Record<string, unknown> = {}): Promise<string> {
  const id = typeof fields._id === 'string' ? fields._id : randomUUID().replaceAll('-', '')
  const now = new Date().toISOString()
  await docs.write({
    _id: id,
    type: 'datafile',
    'user-id': TENANT,
    'created-at': now,
    'updated-at': now,
    url: 'https://example.com/data.tar.gz',
    'processing-state': 'pending',
    'processing-log': '',
    attempts: 0,
    'worker-id': null,
    'lease-expires-at': null,
    'started-at': null,
    'finished-at': null,
    'retry-at': null,
    ...fields
  })
  return id
}

/** A pending dataset whose two parts refer to `datafileId` (it waits for that datafile). */
export async function createDatasetJob (docs: Documents, datafileId: string): Promise<string> {
  const id = randomUUID().replaceAll('-', '')
  const now = new Date().toISOString()
  await docs.write({
    _id: id,
    type: 'dataset',
    'user-id': TENANT,
    'created-at': now,
    'updated-at': now,
    training: { 'datafile-id': datafileId, 'split-percentage': 0.7 },
    test: { 'datafile-id': datafileId, 'split-percentage': 0.3 },
    'processing-state': 'pending'
  })
  return id
}

/** Overwrites fields of a stored document as another process would (no owner check). */
export async function patchDoc (docs: Documents, id: string, fields: Record<string, unknown>): Promise<void> {
  const raw = await docs.couch.get(id) as { _id: string } & Record<string, unknown>
  await docs.write({ ...raw, ...fields })
}

export async function rawDoc (couch: CouchDatabase, id: string): Promise<Record<string, unknown>> {
  return await couch.get(id) as Record<string, unknown>
}

type Datafile = DocumentOf<'datafile'>
type DatafileRun = (ctx: JobContext<'datafile'>) => Promise<(doc: Datafile) => Datafile>

/**
 * A fake datafile runner that records every call, the signal it was given and how the call
 * ended; other job types fail permanently (they are not run in these tests).
 */
export interface RecordingRunner {
  runners: JobRunners
  calls: Array<{ jobId: string, attempt: number, workerId: string, signal: AbortSignal, abortedAt: number | undefined, ended: 'returned' | 'threw' | undefined }>
}

export function recordingRunners (run: DatafileRun, ready?: JobRunner<'datafile'>['ready']): RecordingRunner {
  const calls: RecordingRunner['calls'] = []
  const notHere = (type: string) => async (): Promise<never> => { throw new PermanentJobError(`${type} jobs are not run in this test`) }
  const datafile: JobRunner<'datafile'> = {
    type: 'datafile',
    ...(ready === undefined ? {} : { ready }),
    run: async (ctx) => {
      const call: RecordingRunner['calls'][number] = { jobId: ctx.job._id, attempt: ctx.attempt, workerId: ctx.workerId, signal: ctx.signal, abortedAt: undefined, ended: undefined }
      calls.push(call)
      ctx.signal.addEventListener('abort', () => { call.abortedAt = Date.now() }, { once: true })
      try {
        const result = await run(ctx)
        call.ended = 'returned'
        return result
      } catch (err) {
        call.ended = 'threw'
        throw err
      }
    }
  }
  return {
    calls,
    runners: {
      datafile,
      dataset: { type: 'dataset', run: notHere('dataset') },
      'training-job': { type: 'training-job', run: notHere('training-job') },
      'classify-job': { type: 'classify-job', run: notHere('classify-job') }
    }
  }
}

/** Resolves at once with a change that records the result. */
export const quickRun: DatafileRun = async () => (doc) => ({ ...doc, format: 'lmdb', size: 1 })

/** Runs until its signal aborts (then rejects with the signal's reason) or `release` is called. */
export function blockingRun (): { run: DatafileRun, release: () => void } {
  let release = (): void => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  return {
    release: () => { release() },
    run: async (ctx) => {
      await new Promise<void>((resolve, reject) => {
        if (ctx.signal.aborted) reject(ctx.signal.reason)
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })
        released.then(resolve, reject)
      })
      return (doc) => ({ ...doc, format: 'lmdb', size: 2 })
    }
  }
}

/** A delivery as a scheduler makes it, for calling a handler directly. */
export function fakeDelivery (signal: AbortSignal = new AbortController().signal): { messageId: string, attempts: number, maxAttempts: undefined, signal: AbortSignal, touch: () => void, touches: () => number } {
  let touches = 0
  return { messageId: '1', attempts: 1, maxAttempts: undefined, signal, touch: () => { touches++ }, touches: () => touches }
}

export interface HandlerFixture {
  handler: JobHandler
  workRoot: string
  ended: string[]
  cleanup: () => Promise<void>
}

export async function makeHandler (store: JobStore, runners: JobRunners, deps: Partial<JobHandlerDeps> = {}): Promise<HandlerFixture> {
  const workRoot = await mkdtemp(join(tmpdir(), 'et-lifecycle-'))
  const blobs: BlobStore = createBlobStore({ kind: 'memory' })
  const ended: string[] = []
  const handler = createJobHandler({
    store,
    blobs,
    runners,
    workerId: 'worker-a',
    leaseMs: 300,
    maxAttempts: 3,
    workRoot,
    logger: testLogger,
    onEnded: (job) => { ended.push(`${job._id}:${job['processing-state']}`) },
    ...deps
  })
  return { handler, workRoot, ended, cleanup: async () => { await blobs.close(); await rm(workRoot, { recursive: true, force: true }) } }
}

/** A real in-process scheduler with test-sized retry delays. */
export function inProcessScheduler (concurrency = 2): Scheduler {
  return createScheduler(SchedulerConfig.parse({ kind: 'in-process', concurrency, retryBaseMs: 20, retryMaxMs: 200 }))
}

/** Wraps a scheduler to record every message handed to it (duplicates included). */
export function recordingScheduler (inner: Scheduler): Scheduler & { scheduled: string[] } {
  const scheduled: string[] = []
  return {
    kind: inner.kind,
    scheduled,
    schedule: async (msg: JobMessage) => {
      scheduled.push(msg['doc-id-to-process'])
      await inner.schedule(msg)
    },
    startConsumer: (handler, options) => inner.startConsumer(handler, options),
    close: async () => { await inner.close() }
  }
}

export type { JobOutcome }
