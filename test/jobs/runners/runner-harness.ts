import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BlobStore } from '../../../blobstore/blob-store.js'
import type { TenantId } from '../../../models/common.js'
import type { JobDocument } from '../../../models/documents.js'
import type { JobOutcome } from '../../../schedulers/scheduler.js'
import { createCaffeCommand } from '../../../src/jobs/caffe-command.js'
import type { CaffeCommand } from '../../../src/jobs/caffe-command.js'
import { createJobHandler } from '../../../src/jobs/job-handler.js'
import type { JobRunners } from '../../../src/jobs/job-runner.js'
import { JobStore } from '../../../src/jobs/job-store.js'
import { createClassifyRunner } from '../../../src/jobs/runners/classify-runner.js'
import type { ClassifyRunnerDeps } from '../../../src/jobs/runners/classify-runner.js'
import { createTrainingRunner } from '../../../src/jobs/runners/training-runner.js'
import type { TrainingRunnerDeps } from '../../../src/jobs/runners/training-runner.js'
import { PermanentJobError } from '../../../src/lib/errors.js'
import { createLogger } from '../../../src/lib/logger.js'
import { SafeFetcher } from '../../../src/net/safe-fetch.js'
import { signUp, startTestApp } from '../../helpers/app.js'
import type { TestApp } from '../../helpers/app.js'
import { QUADRANTS, quadrantArchive } from './runner-fixtures.js'

/**
 * A real test database and app (jobs not run by it), plus a JobHandler with the real training
 * and classify runners that the tests drive one message at a time.
 */
export interface RunnerHarness {
  t: TestApp
  auth: string
  tenant: TenantId
  store: JobStore
  blobs: BlobStore
  /** Pids of every `caffe train` the runners started, in order. */
  pids: number[]
  workRoot: string
  /** Delivers one message for `id` and resolves with the handler's outcome. */
  deliver: (id: string, signal?: AbortSignal) => Promise<JobOutcome>
  post: (url: string, payload: Record<string, unknown>) => Promise<string>
  doc: (id: string) => Promise<JobDocument>
  /** Overwrites fields of a stored document (for states the test needs, like a finished dataset). */
  patch: (id: string, fields: Record<string, unknown>) => Promise<void>
  text: (key: string) => Promise<string>
  /** A finished dataset of quadrant PNGs (as the dataset runner leaves it) and a pending training job on it. */
  trainingJob: (net: string, solver: string, labels?: string[] | null, archives?: { training: Buffer, test: Buffer }) => Promise<{ jobId: string, datasetId: string }>
  workDirs: () => Promise<string[]>
  close: () => Promise<void>
}

export interface HarnessOptions {
  leaseMs?: number
  training?: Partial<TrainingRunnerDeps>
  classify?: Partial<ClassifyRunnerDeps>
}

export async function startRunnerHarness (options: HarnessOptions = {}): Promise<RunnerHarness> {
  const t = await startTestApp()
  const auth = await signUp(t.app, 'alice')
  const store = new JobStore(t.deps.documents)
  const blobs = t.deps.blobs
  const workRoot = await mkdtemp(join(tmpdir(), 'et-runner-test-'))
  const fetcher = new SafeFetcher()
  const caffe = createCaffeCommand({ caffeBin: null, gpu: null, kernels: 'ts', threads: 1, killGraceMs: 2000 })
  const pids: number[] = []
  const observed: CaffeCommand = {
    trainer: caffe.trainer,
    usesBuiltinTrainer: caffe.usesBuiltinTrainer,
    train: (args, o) => {
      const run = caffe.train(args, o)
      if (run.pid !== undefined) pids.push(run.pid)
      return run
    },
    engine: (tool, argv, o) => caffe.engine(tool, argv, o)
  }
  const notHere = (type: string) => async (): Promise<never> => { throw new PermanentJobError(`${type} jobs are not run in this test`) }
  const runners: JobRunners = {
    datafile: { type: 'datafile', run: notHere('datafile') },
    dataset: { type: 'dataset', run: notHere('dataset') },
    'training-job': createTrainingRunner({ caffe: observed, gpu: false, progressMs: 200, logFlushMs: 200, snapshotPollMs: 50, waitMs: 1000, ...options.training }),
    'classify-job': createClassifyRunner({ caffe: observed, fetcher, allowPrivateUrls: true, waitMs: 1000, ...options.classify })
  }
  const handler = createJobHandler({
    store,
    blobs,
    runners,
    workerId: 'test-worker',
    leaseMs: options.leaseMs ?? 1500,
    maxAttempts: 3,
    workRoot,
    logger: createLogger(process.env.ET_TEST_LOG ?? 'silent')
  })
  let messages = 0
  const post = async (url: string, payload: Record<string, unknown>): Promise<string> => {
    const res = await t.app.inject({ method: 'POST', url, headers: { authorization: auth }, payload })
    if (res.statusCode !== 201) throw new Error(`POST ${url} failed: ${res.statusCode} ${res.body}`)
    return String(res.json().id)
  }
  const patch = async (id: string, fields: Record<string, unknown>): Promise<void> => {
    const raw = await t.deps.documents.read(id) as Record<string, unknown> & { _id: string }
    await t.deps.documents.write({ ...raw, ...fields })
  }
  const trainingArchive = quadrantArchive(12, 1)
  const testArchive = quadrantArchive(4, 2)
  const trainingJob = async (net: string, solver: string, labels: string[] | null = [...QUADRANTS], archives = { training: trainingArchive, test: testArchive }): Promise<{ jobId: string, datasetId: string }> => {
    const datafile = await post('/datafiles', { url: 'https://example.com/quadrants.tar.gz' })
    const datasetId = await post('/datasets', { training: { 'datafile-id': datafile, 'split-percentage': 0.8 }, test: { 'datafile-id': datafile, 'split-percentage': 0.2 } })
    await blobs.put(`${datasetId}/training.tar.gz`, archives.training)
    await blobs.put(`${datasetId}/testing.tar.gz`, archives.test)
    const dataset = await store.readJob(datasetId)
    await patch(datasetId, {
      'processing-state': 'finished_successfully',
      training: { ...Reflect.get(dataset, 'training'), url: `cbfs://${datasetId}/training.tar.gz` },
      test: { ...Reflect.get(dataset, 'test'), url: `cbfs://${datasetId}/testing.tar.gz` },
      labels
    })
    const solverId = await post('/solvers', { 'dataset-id': datasetId, specification: solver, 'specification-net': net })
    const jobId = await post('/training-jobs', { 'solver-id': solverId })
    return { jobId, datasetId }
  }
  return {
    t,
    auth,
    trainingJob,
    tenant: 'user:alice' as TenantId,
    store,
    blobs,
    pids,
    workRoot,
    deliver: async (id, signal = new AbortController().signal) => await handler({ 'doc-id-to-process': id }, { messageId: String(++messages), attempts: 1, maxAttempts: 3, signal, touch: () => {} }),
    post,
    doc: async (id) => await store.readJob(id),
    patch,
    text: async (key) => {
      const parts: Buffer[] = []
      for await (const c of await blobs.get(key)) parts.push(Buffer.from(c as Uint8Array))
      return Buffer.concat(parts).toString('utf8')
    },
    workDirs: async () => await readdir(workRoot),
    close: async () => {
      await fetcher.close()
      await t.close()
      await rm(workRoot, { recursive: true, force: true })
    }
  }
}
