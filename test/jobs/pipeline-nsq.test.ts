import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { serveFiles } from '../helpers/http-files.js'
import { settleJob } from '../helpers/settle.js'
import { NsqPeer } from '../helpers/nsq-peer.js'
import { spawnTs } from '../helpers/processes.js'
import type { Spawned } from '../helpers/processes.js'
import { imageSpecs, targz } from './archive/archive-fixtures.js'
import { DEPLOY_NET, IMAGE_DATA_NET, quadrantArchive, quadrantPng, solverText } from './runners/runner-fixtures.js'

type Doc = Record<string, unknown> & { id: string, 'processing-state': string, 'processing-log': string, 'worker-id': string | null }

/*
 * The NSQ path end to end: the server publishes JobDescriptors to nsqd, separate
 * elastic-thought-worker processes consume them. No nsqd can be installed on these machines,
 * so nsqd is played by the protocol-level test peer in test/helpers/nsq-peer.ts.
 */
describe('NSQ scheduler with elastic-thought-worker processes', () => {
  const blobDir = mkdtempSync(join(tmpdir(), 'et-nsq-blobs-'))
  let nsqd: NsqPeer
  let t: TestApp
  let auth: string
  let files: Awaited<ReturnType<typeof serveFiles>>
  const workers: Spawned[] = []

  beforeAll(async () => {
    nsqd = await NsqPeer.start()
    files = await serveFiles({
      '/digits.tar.gz': { body: targz(imageSpecs({ a: ['1.png', '2.png', '3.png', '4.png'], b: ['1.png', '2.png', '3.png'] })) },
      '/quadrants.tar.gz': { body: quadrantArchive(10, 5) },
      '/ne.png': { body: quadrantPng('ne', 777), type: 'image/png' }
    })
    t = await startTestApp({
      blobStore: { kind: 'file', dir: blobDir },
      scheduler: { kind: 'nsq', nsqd: [nsqd.address], lookupd: [], topic: 'elastic-thought', channel: 'elastic-thought-worker', concurrency: 1, msgTimeoutMs: 60_000, heartbeatIntervalMs: 30_000, discoveryIntervalMs: 15_000, autoTouch: true, connectTimeoutMs: 5000, publishTimeoutMs: 10_000, retryBaseMs: 100, retryMaxMs: 1000, maxAttempts: 5 }
    }, { runJobs: true })
    auth = await signUp(t.app, 'nsquser')
    const couchUrl = t.config.database.kind === 'couch' ? t.config.database.url : ''
    for (const name of ['w1', 'w2']) {
      const worker = spawnTs('src/worker.ts', ['--couch-url', couchUrl, '--blob-store-url', `file://${blobDir}`, '--nsqd', nsqd.address, '--allow-private-urls', '--worker-id', name, '--lease-seconds', '5', '--grace-seconds', '2'])
      workers.push(worker)
      await worker.waitForLine(/elastic-thought-worker started/)
    }
  })
  afterAll(async () => {
    for (const w of workers) w.child.kill('SIGTERM')
    await Promise.all(workers.map(async (w) => await w.exited))
    await t.close()
    await nsqd.stop()
    await files.close()
    rmSync(blobDir, { recursive: true, force: true })
  })

  const settle = async (path: string): Promise<Doc> => await settleJob(t.app, auth, path, 30_000)

  it('runs datafile and dataset jobs in the workers, acknowledging messages only after the state is saved', async () => {
    const datafile = (await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth }, payload: { url: files.url('/digits.tar.gz') } })).json() as Doc
    const dataset = (await t.app.inject({ method: 'POST', url: '/datasets', headers: { authorization: auth }, payload: { training: { 'datafile-id': datafile.id, 'split-percentage': 0.5 }, test: { 'datafile-id': datafile.id, 'split-percentage': 0.5 } } })).json() as Doc
    const doneFile = await settle(`/datafiles/${datafile.id}`)
    const doneSet = await settle(`/datasets/${dataset.id}`)
    expect(doneFile['processing-state'], doneFile['processing-log']).toBe('finished_successfully')
    expect(doneSet['processing-state'], doneSet['processing-log']).toBe('finished_successfully')
    // Run by the worker processes, not the server.
    expect(['w1', 'w2']).toContain(doneFile['worker-id'])
    expect(nsqd.counters.published).toBeGreaterThanOrEqual(2)
    expect(nsqd.counters.finished).toBeGreaterThanOrEqual(2)
  })

  it('a duplicated message runs the job once', async () => {
    const datafile = (await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth }, payload: { url: files.url('/digits.tar.gz') } })).json() as Doc
    // The same JobDescriptor a second and third time, as a replayed feed or a second server would send.
    await t.deps.scheduler.schedule({ 'doc-id-to-process': datafile.id })
    await t.deps.scheduler.schedule({ 'doc-id-to-process': datafile.id })
    const done = await settle(`/datafiles/${datafile.id}`)
    expect(done['processing-state']).toBe('finished_successfully')
    expect(done.attempts).toBe(1)
    // Downloaded once: only one worker ever claimed it.
    const hits = files.hits()['/digits.tar.gz'] ?? 0
    expect(hits).toBe(2)
  })

  it('trains and classifies in the workers, with progress and the model visible through the server', async () => {
    const post = async (url: string, payload: unknown): Promise<Doc> => {
      const res = await t.app.inject({ method: 'POST', url, headers: { authorization: auth }, payload: payload as Record<string, unknown> })
      expect(res.statusCode, res.body).toBe(201)
      return res.json()
    }
    const datafile = await post('/datafiles', { url: files.url('/quadrants.tar.gz') })
    const dataset = await post('/datasets', { training: { 'datafile-id': datafile.id, 'split-percentage': 0.8 }, test: { 'datafile-id': datafile.id, 'split-percentage': 0.2 } })
    const solver = await post('/solvers', { 'dataset-id': dataset.id, specification: solverText(40), 'specification-net': IMAGE_DATA_NET })
    const job = await post('/training-jobs', { 'solver-id': solver.id })
    const trained = await settle(`/training-jobs/${job.id}`)
    expect(trained['processing-state'], trained['processing-log']).toBe('finished_successfully')
    expect(['w1', 'w2']).toContain(trained['worker-id'])
    expect((trained.progress as { iteration: number }).iteration).toBe(40)
    const model = await t.app.inject({ url: `/training-jobs/${job.id}/model`, headers: { authorization: auth } })
    expect(model.statusCode).toBe(200)
    const classifier = await post('/classifiers', { 'training-job-id': job.id, specification: DEPLOY_NET, scale: '1', 'image-width': '12', 'image-height': '12' })
    const classify = await post(`/classifiers/${classifier.id}/classify`, { urls: [files.url('/ne.png')] })
    const done = await settle(`/classify-jobs/${classify.id}`)
    expect(done['processing-state'], done['processing-log']).toBe('finished_successfully')
    expect(Object.values(done.results as Record<string, string>)).toHaveLength(1)
    expect(['ne', 'nw', 'se', 'sw']).toContain(Object.values(done.results as Record<string, string>)[0])
  }, 120_000)
})
