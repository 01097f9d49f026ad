import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keyFromBlobUri } from '../../../blobstore/blob-uri.js'
import type { TrainingJob } from '../../../models/training-job.js'
import { OwnedRepository } from '../../../src/db/owned-repository.js'
import { logChunkPrefix } from '../../../src/jobs/job-logs.js'
import { Artifacts } from '../../../src/services/artifacts.js'
import { DECONV_NET, IMAGE_DATA_NET, V1_DATA_NET, solverText } from './runner-fixtures.js'
import { startRunnerHarness } from './runner-harness.js'
import { targz } from '../archive/archive-fixtures.js'
import { writeQuadrantLmdb } from '../../engine/solver/synthetic-data.js'
import type { RunnerHarness } from './runner-harness.js'
import { processAlive } from '../../../src/lib/process-alive.js'

let h: RunnerHarness
let artifacts: Artifacts

beforeAll(async () => {
  h = await startRunnerHarness()
  artifacts = new Artifacts({ repo: new OwnedRepository(h.t.deps.documents), blobs: h.blobs, pollMs: 50 })
})
afterAll(async () => { await h.close() })

/** A dataset part holding an LMDB of 12×12 grey quadrant images at the archive's top level. */
async function lmdbArchive (count: number, seed: number): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'et-lmdb-'))
  try {
    await writeQuadrantLmdb(join(dir, 'db'), count, seed)
    const names = await readdir(join(dir, 'db'))
    return targz(await Promise.all(names.map(async (name) => ({ path: name, body: await readFile(join(dir, 'db', name)) }))))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const training = async (id: string): Promise<TrainingJob> => await h.doc(id) as TrainingJob
const readAll = async (stream: NodeJS.ReadableStream): Promise<string> => {
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(Buffer.from(c as Uint8Array))
  return Buffer.concat(parts).toString('utf8')
}
async function until<T> (what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe('training runner', () => {
  it('trains an ImageData net on a tar.gz of PNGs: model, snapshots, progress, labels and logs', async () => {
    const { jobId } = await h.trainingJob(IMAGE_DATA_NET, solverText(30))
    // Logs are readable while the job runs, through the same service the API uses.
    const seenWhileRunning: string[] = []
    const watching = new AbortController()
    const watcher = (async () => {
      while (!watching.signal.aborted) {
        const doc = await training(jobId)
        if (doc['processing-state'] === 'processing') seenWhileRunning.push(await readAll(await artifacts.jobLog(h.tenant, 'training-job', jobId, { stream: 'stderr', from: 0, follow: false })))
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })()
    const outcome = await h.deliver(jobId)
    watching.abort()
    await watcher
    expect(outcome).toEqual({ kind: 'done' })
    const job = await training(jobId)
    expect(job['processing-state'], job['processing-log']).toBe('finished_successfully')

    expect(job['trained-model-url']).toBe(`cbfs://${jobId}/trained.caffemodel`)
    expect((await h.blobs.stat(`${jobId}/trained.caffemodel`)).size).toBeGreaterThan(100)
    expect(job.snapshots.map((s) => s.iteration)).toEqual([10, 20, 30])
    for (const s of job.snapshots) {
      expect(s['model-url']).toBe(`cbfs://${jobId}/snapshots/snapshot_iter_${s.iteration}.caffemodel`)
      expect(await h.blobs.exists(keyFromBlobUri(s['model-url']))).toBe(true)
      expect(await h.blobs.exists(keyFromBlobUri(s['state-url'] ?? ''))).toBe(true)
    }
    // The final snapshot is the trained model, byte for byte.
    const final = await h.blobs.stat(`${jobId}/snapshots/snapshot_iter_30.caffemodel`)
    expect(final.size).toBe((await h.blobs.stat(`${jobId}/trained.caffemodel`)).size)

    expect(job.labels).toEqual(['ne', 'nw', 'se', 'sw'])
    const progress = job.progress
    expect(progress?.iteration).toBe(30)
    expect(progress?.['max-iter']).toBe(30)
    expect(progress?.loss).toEqual(expect.any(Number))
    expect(progress?.lr).toEqual(expect.any(Number))
    expect(Object.keys(progress?.['test-outputs'] ?? {}).sort()).toEqual(['accuracy', 'loss'])
    const iterations = progress?.series.map((p) => p.iteration) ?? []
    expect(iterations).toEqual([...new Set(iterations)].sort((a, b) => a - b))
    expect(iterations).toEqual(expect.arrayContaining([0, 5, 10, 15, 20, 25, 30]))
    expect(progress?.series.find((p) => p.iteration === 10)?.test?.accuracy).toEqual(expect.any(Number))

    // The whole log is the concatenation of the chunks shipped while it ran.
    const stderr = await h.text(`${jobId}/stderr`)
    expect(job['std-err-url']).toBe(`cbfs://${jobId}/stderr`)
    const chunks = await h.blobs.list(logChunkPrefix(jobId, 'stderr'))
    expect(chunks.length).toBeGreaterThan(0)
    expect(chunks.every((c) => /\/001-\d{6}$/.test(c.key))).toBe(true)
    expect((await Promise.all(chunks.map(async (c) => await h.text(c.key)))).join('')).toBe(stderr)
    expect(stderr).toContain('elastic-thought: attempt 1 on worker test-worker')
    expect(stderr).toContain('Optimization Done.')
    expect(stderr).toContain('Snapshotting to binary proto file snapshot_iter_30.caffemodel')
    expect(await readAll(await artifacts.jobLog(h.tenant, 'training-job', jobId, { stream: 'stderr', from: 0, follow: false }))).toBe(stderr)
    expect(seenWhileRunning.some((log) => log.includes('extracting the training archive'))).toBe(true)
    // The work dir is gone.
    expect(await h.workDirs()).toEqual([])
  })

  it('converts the images to LMDB for a V1 net with Data layers (BVLC lenet style), in grey', async () => {
    const { jobId } = await h.trainingJob(V1_DATA_NET, solverText(20))
    await h.deliver(jobId)
    const job = await training(jobId)
    expect(job['processing-state'], job['processing-log']).toBe('finished_successfully')
    const stderr = await h.text(`${jobId}/stderr`)
    expect(stderr).toContain('convert_imageset --gray (the images have one channel)')
    expect(stderr).toContain('A total of 48 images.')
    expect(stderr).toMatch(/Processed 16 files\./)
    expect(job.snapshots.map((s) => s.iteration)).toEqual([10, 20])
    expect(job.progress?.['test-outputs'].accuracy).toEqual(expect.any(Number))
  })

  it('trains a Data net on an uploaded LMDB dataset as is; an ImageData net on it fails clearly', async () => {
    const archives = { training: await lmdbArchive(48, 1), test: await lmdbArchive(16, 2) }
    const { jobId } = await h.trainingJob(V1_DATA_NET, solverText(10), null, archives)
    await h.deliver(jobId)
    const job = await training(jobId)
    expect(job['processing-state'], job['processing-log']).toBe('finished_successfully')
    expect(job.labels).toBeNull()
    expect(await h.text(`${jobId}/stderr`)).not.toContain('convert_imageset')

    const mismatch = await h.trainingJob(IMAGE_DATA_NET, solverText(10), null, archives)
    await h.deliver(mismatch.jobId)
    const failed = await training(mismatch.jobId)
    expect(failed['processing-state']).toBe('failed')
    expect(failed['processing-log']).toBe('the dataset holds LMDB databases, but the net reads its data with ImageData layers (image list files); use Data layers (type: "Data" with backend: LMDB) for a database dataset')
  })

  it('a net the engine cannot build fails with Caffe\'s reason, in the user\'s own line numbers', async () => {
    const { jobId } = await h.trainingJob(DECONV_NET, solverText(10))
    await h.deliver(jobId)
    const job = await training(jobId)
    expect(job['processing-state']).toBe('failed')
    const line = DECONV_NET.split('\n').findIndex((l) => l.includes('"Deconvolution"')) + 1
    expect(job['processing-log']).toBe(`training failed: the net prototxt refers to layer type 'Deconvolution', which is not supported (line ${line - 1})`)
    // The log says it too, and the fatal line is there for those who read Caffe logs.
    expect(job['std-err-url']).toBe(`cbfs://${jobId}/stderr`)
    const stderr = await h.text(`${jobId}/stderr`)
    expect(stderr).toMatch(/^F.*layer type "Deconvolution" is not supported/m)
    expect(stderr).toContain("elastic-thought: failed: training failed: the net prototxt refers to layer type 'Deconvolution'")
    expect(job.attempts).toBe(1)
  })

  it('fails at once, with the reason, when the dataset failed', async () => {
    const { jobId, datasetId } = await h.trainingJob(IMAGE_DATA_NET, solverText(10))
    await h.patch(datasetId, { 'processing-state': 'failed', 'processing-log': 'the archive is empty' })
    await h.deliver(jobId)
    const job = await training(jobId)
    expect(job['processing-state']).toBe('failed')
    expect(job['processing-log']).toBe(`the solver's dataset ${datasetId} failed: the archive is empty`)
  })

  it('waits while the dataset is still being split', async () => {
    const { jobId, datasetId } = await h.trainingJob(IMAGE_DATA_NET, solverText(10))
    await h.patch(datasetId, { 'processing-state': 'processing' })
    expect(await h.deliver(jobId)).toEqual({ kind: 'retry', delayMs: 1000, reason: `waiting for dataset ${datasetId} (processing)` })
    expect((await training(jobId))['processing-state']).toBe('pending')
  })

  it('cancel kills the engine, leaves cancelled, and a follower sees the log end', async () => {
    const { jobId } = await h.trainingJob(IMAGE_DATA_NET, solverText(1_000_000).replace('display: 5', 'display: 1'))
    const before = h.pids.length
    const handled = h.deliver(jobId)
    await until('training under way', async () => ((await training(jobId)).progress?.iteration ?? 0) >= 3 ? true : undefined)
    // The log stored so far already shows it (a follower ends when the job does, so what it
    // sees is what was shipped before the cancel).
    await until('the log to show iteration 3', async () => /Iteration 3 /.test(await readAll(await artifacts.jobLog(h.tenant, 'training-job', jobId, { stream: 'stderr', from: 0, follow: false }))) ? true : undefined)
    const pid = h.pids[before]
    expect(pid).toEqual(expect.any(Number))
    expect(processAlive(pid ?? -1)).toBe(true)
    const follow = readAll(await artifacts.jobLog(h.tenant, 'training-job', jobId, { stream: 'stderr', from: 0, follow: true }))
    const res = await h.t.app.inject({ method: 'POST', url: `/training-jobs/${jobId}/cancel`, headers: { authorization: h.auth } })
    expect(res.statusCode, res.body).toBe(200)
    expect(await handled).toEqual({ kind: 'done' })
    expect(processAlive(pid ?? -1)).toBe(false)
    const job = await training(jobId)
    expect(job['processing-state']).toBe('cancelled')
    expect(job['trained-model-url']).toBeNull()
    const followed = await follow
    expect(followed).toMatch(/Iteration 3 /)
    expect(await h.workDirs()).toEqual([])
  })

  it('an engine killed from outside is retried, and the retry resumes from the last uploaded snapshot', async () => {
    const { jobId } = await h.trainingJob(IMAGE_DATA_NET, solverText(40).replace('display: 5', 'display: 1').replace('snapshot: 10', 'snapshot: 5'))
    const before = h.pids.length
    const handled = h.deliver(jobId)
    const snap = await until('a snapshot', async () => {
      const doc = await training(jobId)
      return doc.snapshots.length > 0 && doc['processing-state'] === 'processing' ? doc.snapshots : undefined
    })
    const pid = h.pids[before] ?? -1
    process.kill(pid, 'SIGKILL')
    expect(await handled).toEqual({ kind: 'done' })
    const released = await training(jobId)
    expect(released['processing-state']).toBe('pending')
    expect(released['processing-log']).toMatch(/^attempt 1 failed: training failed: Caffe was killed by SIGKILL/)
    expect(released.snapshots.length).toBeGreaterThanOrEqual(snap.length)
    const resumeAt = Math.max(...released.snapshots.map((s) => s.iteration))

    // Skip the backoff the job handler set, then deliver again.
    await h.patch(jobId, { 'retry-at': null })
    expect(await h.deliver(jobId)).toEqual({ kind: 'done' })
    const job = await training(jobId)
    expect(job['processing-state'], job['processing-log']).toBe('finished_successfully')
    expect(job.attempts).toBe(2)
    const stderr = await h.text(`${jobId}/stderr`)
    expect(stderr).toContain(`elastic-thought: resuming from the snapshot at iteration ${resumeAt}`)
    expect(stderr).toContain(`Resuming from snapshot_iter_${resumeAt}.solverstate`)
    // Both attempts' logs, in order, in the whole file.
    expect(stderr.indexOf('attempt 1 on worker')).toBeLessThan(stderr.indexOf('attempt 2 on worker'))
    // The resumed run did not start over: its first loss line is at the snapshot's iteration.
    const attempt2 = stderr.slice(stderr.indexOf('attempt 2 on worker'))
    expect(Number(/Iteration (\d+) \(/.exec(attempt2)?.[1])).toBe(resumeAt)
    const iterations = job.progress?.series.map((p) => p.iteration) ?? []
    expect(iterations).toEqual([...new Set(iterations)].sort((a, b) => a - b))
    expect(job.snapshots.map((s) => s.iteration).at(-1)).toBe(40)
    expect(job['trained-model-url']).toBe(`cbfs://${jobId}/trained.caffemodel`)
  })
})
