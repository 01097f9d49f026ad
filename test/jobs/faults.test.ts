import { readdirSync, readlinkSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { spawnTs } from '../helpers/processes.js'
import type { Spawned } from '../helpers/processes.js'
import { IMAGE_DATA_NET, quadrantArchive, solverText } from './runners/runner-fixtures.js'

type Doc = Record<string, unknown> & { id: string, 'processing-state': string, 'processing-log': string, 'worker-id': string | null, attempts: number, snapshots: Array<{ iteration: number }> }

/** Pids of processes whose working directory is under `dir` (the engine runs in its job's work dir). */
function processesIn (dir: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) pids.push(Number(entry))
    } catch {
      // Gone, or not ours to look at.
    }
  }
  return pids
}

describe('a worker killed mid-training', () => {
  const root = mkdtempSync(join(tmpdir(), 'et-faults-'))
  let t: TestApp
  let auth: string
  const workers: Spawned[] = []

  beforeAll(async () => {
    t = await startTestApp({ blobStore: { kind: 'file', dir: join(root, 'blobs') } }, { runJobs: false })
    auth = await signUp(t.app, 'faults')
  })
  afterAll(async () => {
    for (const w of workers) w.child.kill('SIGKILL')
    await t.close()
    rmSync(root, { recursive: true, force: true })
  })

  const startWorker = async (name: string): Promise<Spawned> => {
    const couchUrl = t.config.database.kind === 'couch' ? t.config.database.url : ''
    const worker = spawnTs('src/worker.ts', ['--couch-url', couchUrl, '--blob-store-url', `file://${join(root, 'blobs')}`, '--work-dir', join(root, name), '--worker-id', name, '--lease-seconds', '2', '--grace-seconds', '2', '--log-level', 'info'])
    workers.push(worker)
    await worker.waitForLine(/elastic-thought-worker started/)
    return worker
  }
  const get = async (path: string): Promise<Doc> => (await t.app.inject({ url: path, headers: { authorization: auth } })).json()
  const until = async (what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> => {
    const deadline = Date.now() + ms
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  it('is reclaimed after its lease by another worker, which resumes from the last snapshot; its engine exits too', async () => {
    const first = await startWorker('first')
    const boundary = '----et-faults'
    const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.tar.gz"\r\n\r\n`), quadrantArchive(8, 3), Buffer.from(`\r\n--${boundary}--\r\n`)])
    const datafile = (await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body })).json() as Doc
    const dataset = (await t.app.inject({ method: 'POST', url: '/datasets', headers: { authorization: auth }, payload: { training: { 'datafile-id': datafile.id, 'split-percentage': 0.75 }, test: { 'datafile-id': datafile.id, 'split-percentage': 0.25 } } })).json() as Doc
    const solver = (await t.app.inject({ method: 'POST', url: '/solvers', headers: { authorization: auth }, payload: { 'dataset-id': dataset.id, specification: solverText(4000).replace('snapshot: 10', 'snapshot: 100').replace('test_interval: 10', 'test_interval: 1000'), 'specification-net': IMAGE_DATA_NET } })).json() as Doc
    const job = (await t.app.inject({ method: 'POST', url: '/training-jobs', headers: { authorization: auth }, payload: { 'solver-id': solver.id } })).json() as Doc

    await until('a snapshot uploaded by the first worker', async () => {
      const doc = await get(`/training-jobs/${job.id}`)
      return doc['worker-id'] === 'first' && doc.snapshots.length > 0
    })
    const engines = processesIn(join(root, 'first'))
    expect(engines.length).toBeGreaterThan(0)
    first.child.kill('SIGKILL')
    await first.exited
    // The orphaned engine notices its worker is gone and stops.
    await until('the first worker\'s engine to exit', async () => processesIn(join(root, 'first')).length === 0, 10_000)

    const second = await startWorker('second')
    await until('the job to finish', async () => (await get(`/training-jobs/${job.id}`))['processing-state'] !== 'processing' && (await get(`/training-jobs/${job.id}`))['worker-id'] === 'second', 120_000)
    const done = await get(`/training-jobs/${job.id}`)
    expect(done['processing-state'], done['processing-log']).toBe('finished_successfully')
    expect(done.attempts).toBe(2)
    const log = (await t.app.inject({ url: `/training-jobs/${job.id}/logs`, headers: { authorization: auth } })).body
    expect(log).toMatch(/Resuming from .*snapshot_iter_\d+\.solverstate/)
    expect(log).toContain('Optimization Done.')
    const iterations = done.snapshots.map((s) => s.iteration)
    expect(iterations).toContain(4000)
    // Leave no worker behind to take the next test's jobs.
    second.child.kill('SIGTERM')
    await second.exited
  }, 180_000)

  it('SIGTERM lets running work finish within the grace period, then returns the job to the queue; the worker exits 0', async () => {
    const worker = await startWorker('graceful')
    const boundary = '----et-faults'
    const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.tar.gz"\r\n\r\n`), quadrantArchive(8, 4), Buffer.from(`\r\n--${boundary}--\r\n`)])
    const datafile = (await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body })).json() as Doc
    const dataset = (await t.app.inject({ method: 'POST', url: '/datasets', headers: { authorization: auth }, payload: { training: { 'datafile-id': datafile.id, 'split-percentage': 0.75 }, test: { 'datafile-id': datafile.id, 'split-percentage': 0.25 } } })).json() as Doc
    const solver = (await t.app.inject({ method: 'POST', url: '/solvers', headers: { authorization: auth }, payload: { 'dataset-id': dataset.id, specification: solverText(100_000).replace('snapshot: 10', 'snapshot: 100').replace('test_interval: 10', 'test_interval: 10000'), 'specification-net': IMAGE_DATA_NET } })).json() as Doc
    const job = (await t.app.inject({ method: 'POST', url: '/training-jobs', headers: { authorization: auth }, payload: { 'solver-id': solver.id } })).json() as Doc
    await until('the job to be running', async () => (await get(`/training-jobs/${job.id}`))['worker-id'] === 'graceful')
    const stopAt = Date.now()
    worker.child.kill('SIGTERM')
    const exit = await worker.exited
    // --grace-seconds 2: the training cannot finish in time, so it is stopped and returned.
    expect(exit).toEqual({ code: 0, signal: null })
    expect(Date.now() - stopAt).toBeLessThan(15_000)
    const returned = await get(`/training-jobs/${job.id}`)
    expect(returned['processing-state']).toBe('pending')
    expect(returned['worker-id']).toBeNull()
    expect(returned['processing-log']).toMatch(/worker graceful shut down during attempt 1; the job was returned to the queue/)
    // The attempt it could not finish is given back: a shutdown is not the job's fault.
    expect(returned.attempts).toBe(0)
    expect(processesIn(join(root, 'graceful'))).toEqual([])
    await t.app.inject({ method: 'POST', url: `/training-jobs/${job.id}/cancel`, headers: { authorization: auth } })
  }, 120_000)
})
