import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { NsqPeer } from '../helpers/nsq-peer.js'
import { spawnTs } from '../helpers/processes.js'
import type { Spawned } from '../helpers/processes.js'
import { IMAGE_DATA_NET, quadrantArchive, solverText } from '../jobs/runners/runner-fixtures.js'
import { parseExposition, sampleValue } from '../metrics/exposition.js'

type Doc = Record<string, unknown> & { id: string, 'processing-state': string, 'processing-log': string, 'worker-id': string | null, attempts: number, 'started-at': string | null, 'finished-at': string | null }

const boundary = '----et-idle'
const upload = (seed: number): Buffer => Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.tar.gz"\r\n\r\n`), quadrantArchive(4, seed), Buffer.from(`\r\n--${boundary}--\r\n`)])

async function until (what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** The exit of a worker, and when it happened by the wall clock. */
function exitTime (worker: Spawned): Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }> {
  return worker.exited.then((exit) => ({ ...exit, at: Date.now() }))
}

describe('elastic-thought-worker --exit-when-idle', () => {
  const root = mkdtempSync(join(tmpdir(), 'et-idle-'))
  const workers: Spawned[] = []
  afterEach(() => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL')
  })
  afterAll(() => { rmSync(root, { recursive: true, force: true }) })

  describe('with NSQ', () => {
    let nsqd: NsqPeer
    let t: TestApp
    let auth: string

    beforeAll(async () => {
      nsqd = await NsqPeer.start()
      t = await startTestApp({
        blobStore: { kind: 'file', dir: join(root, 'blobs-nsq') },
        scheduler: { kind: 'nsq', nsqd: [nsqd.address], lookupd: [], topic: 'elastic-thought', channel: 'elastic-thought-worker', concurrency: 1, msgTimeoutMs: 60_000, heartbeatIntervalMs: 30_000, discoveryIntervalMs: 15_000, autoTouch: true, connectTimeoutMs: 5000, publishTimeoutMs: 10_000, retryBaseMs: 100, retryMaxMs: 1000, maxAttempts: 5 }
      })
      auth = await signUp(t.app, 'idlensq')
    })
    afterAll(async () => {
      await t.close()
      await nsqd.stop()
    })

    it('drains the queue, stops taking messages, then exits 0 once idle for the given time', async () => {
      // Queued before the worker starts: it must not find itself idle before it has seen them.
      const jobs: Doc[] = []
      for (const seed of [1, 2, 3]) {
        const res = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: upload(seed) })
        expect(res.statusCode, res.body).toBe(201)
        jobs.push(res.json())
      }
      await until('the jobs to be published', () => nsqd.counters.published >= 3)
      const couchUrl = t.config.database.kind === 'couch' ? t.config.database.url : ''
      const worker = spawnTs('src/worker.ts', ['--couch-url', couchUrl, '--blob-store-url', `file://${join(root, 'blobs-nsq')}`, '--nsqd', nsqd.address, '--worker-id', 'idle-nsq', '--work-dir', join(root, 'idle-nsq'), '--exit-when-idle', '2'])
      workers.push(worker)
      const exit = exitTime(worker)
      await worker.waitForLine(/elastic-thought-worker started/)

      const { code, signal, at } = await exit
      expect({ code, signal }, worker.stderr()).toEqual({ code: 0, signal: null })
      const done: Doc[] = []
      for (const job of jobs) done.push((await t.app.inject({ url: `/datafiles/${job.id}`, headers: { authorization: auth } })).json())
      for (const doc of done) {
        expect(doc['processing-state'], doc['processing-log']).toBe('finished_successfully')
        expect(doc['worker-id']).toBe('idle-nsq')
        expect(doc.attempts).toBe(1)
      }
      // Idle means two seconds after the last job ended, not two seconds after it started.
      const lastEnd = Math.max(...done.map((d) => Date.parse(d['finished-at'] ?? '')))
      expect(at - lastEnd).toBeGreaterThanOrEqual(2000)
      expect(at - lastEnd).toBeLessThan(10_000)
      expect(worker.stdout()).toMatch(/worker idle; exiting/)
      // Every message acknowledged, none handed back; the consumer said RDY 0 and CLS before leaving.
      expect(nsqd.counters.finished).toBe(3)
      expect(nsqd.counters.requeued).toBe(0)
      const log = nsqd.commandLog
      const lastFin = log.findLastIndex((line) => line.startsWith('FIN '))
      expect(log.lastIndexOf('RDY 0')).toBeGreaterThan(lastFin)
      expect(log.lastIndexOf('CLS')).toBeGreaterThan(log.lastIndexOf('RDY 0'))
    }, 90_000)
  })

  describe('following the database', () => {
    let t: TestApp
    let auth: string

    beforeAll(async () => {
      t = await startTestApp({ blobStore: { kind: 'file', dir: join(root, 'blobs-db') } }, { runJobs: false })
      auth = await signUp(t.app, 'idledb')
    })
    afterAll(async () => { await t.close() })

    it('keeps running while a job runs past the idle time, and exits 0 only after it has finished', async () => {
      const post = async (url: string, payload: Record<string, unknown>): Promise<Doc> => {
        const res = await t.app.inject({ method: 'POST', url, headers: { authorization: auth }, payload })
        expect(res.statusCode, res.body).toBe(201)
        return res.json()
      }
      const datafile = (await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: upload(7) })).json() as Doc
      const dataset = await post('/datasets', { training: { 'datafile-id': datafile.id, 'split-percentage': 0.75 }, test: { 'datafile-id': datafile.id, 'split-percentage': 0.25 } })
      // Long enough to outlast the idle time several times over on a busy machine.
      const solver = await post('/solvers', { 'dataset-id': dataset.id, specification: solverText(ITERATIONS).replace('snapshot: 10', 'snapshot: 1000').replace('test_interval: 10', 'test_interval: 500'), 'specification-net': IMAGE_DATA_NET })
      const job = await post('/training-jobs', { 'solver-id': solver.id })

      const couchUrl = t.config.database.kind === 'couch' ? t.config.database.url : ''
      const worker = spawnTs('src/worker.ts', ['--couch-url', couchUrl, '--blob-store-url', `file://${join(root, 'blobs-db')}`, '--worker-id', 'idle-db', '--work-dir', join(root, 'idle-db'), '--exit-when-idle', '2', '--metrics-port', '0'])
      workers.push(worker)
      const exit = exitTime(worker)
      const started = await worker.waitForLine(/elastic-thought-worker started/)
      const metricsUrl = /"metrics":"([^"]+)"/.exec(started)?.[1] ?? ''
      expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)

      const get = async (): Promise<Doc> => (await t.app.inject({ url: `/training-jobs/${job.id}`, headers: { authorization: auth } })).json()
      await until('the training job to be claimed', async () => (await get())['worker-id'] === 'idle-db')
      const claimedAt = Date.parse((await get())['started-at'] ?? '')
      // Past the point where an idle timer that ignored running jobs would have fired.
      await until('three seconds into the training', () => Date.now() - claimedAt > 3000)
      const running = await get()
      expect(running['processing-state'], 'the job should still be training; raise ITERATIONS').toBe('processing')
      expect(worker.child.exitCode).toBeNull()
      const samples = parseExposition(await (await fetch(metricsUrl)).text())
      expect(sampleValue(samples, 'elastic_thought_jobs_in_progress')).toBe(1)
      // The datafile and dataset ran here before the training job.
      expect(sampleValue(samples, 'elastic_thought_job_duration_seconds_count', { type: 'datafile', outcome: 'finished_successfully' })).toBe(1)
      expect(sampleValue(samples, 'elastic_thought_job_duration_seconds_count', { type: 'dataset', outcome: 'finished_successfully' })).toBe(1)
      // Workers report only their own work: no cluster-wide counts to double up with the servers'.
      expect(samples.some((s) => s.name === 'elastic_thought_jobs' || s.name === 'elastic_thought_queue_depth')).toBe(false)

      const { code, signal, at } = await exit
      expect({ code, signal }, worker.stderr()).toEqual({ code: 0, signal: null })
      const done = await get()
      expect(done['processing-state'], done['processing-log']).toBe('finished_successfully')
      expect(done['worker-id']).toBe('idle-db')
      expect(done.attempts).toBe(1)
      const finishedAt = Date.parse(done['finished-at'] ?? '')
      expect(at - finishedAt).toBeGreaterThanOrEqual(2000)
      expect(at - finishedAt).toBeLessThan(10_000)
      if (process.env.ET_TEST_MEASURE !== undefined) process.stderr.write(`training ran ${finishedAt - claimedAt} ms; worker exited ${at - finishedAt} ms after it finished\n`)
    }, 120_000)
  })
})

const ITERATIONS = 800
