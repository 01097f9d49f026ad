import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { JobType } from '../../models/common.js'
import { jobTypes } from '../../models/documents.js'
import type { ProcessingState } from '../../models/processing-state.js'
import { buildApp } from '../../src/app.js'
import { CouchDatabase } from '../../src/db/couch.js'
import { createDeps } from '../../src/deps.js'
import type { Deps } from '../../src/deps.js'
import { createLogger } from '../../src/lib/logger.js'
import { CachedJobCounts, processingStates } from '../../src/metrics/job-counts.js'
import { createMetrics } from '../../src/metrics/metrics.js'
import { startMetricsServer } from '../../src/metrics/metrics-server.js'
import type { MetricsServer } from '../../src/metrics/metrics-server.js'
import { signUp, testConfig } from '../helpers/app.js'
import { serveFiles } from '../helpers/http-files.js'
import { settleJob } from '../helpers/settle.js'
import { quadrantArchive } from '../jobs/runners/runner-fixtures.js'
import { parseExposition, sampleValue } from './exposition.js'
import type { Sample } from './exposition.js'
import { writeJob } from './job-fixtures.js'

interface Running {
  deps: Deps
  app: FastifyInstance
  server: MetricsServer
  close: () => Promise<void>
}

async function start (runJobs: boolean): Promise<Running> {
  const config = testConfig({ metrics: { host: '127.0.0.1', port: 0 } })
  const logger = createLogger('silent')
  const deps = await createDeps(config, logger, { runJobs })
  if (deps.metrics === null) throw new Error('metrics were configured but not created')
  const app = await buildApp(deps.services, { registration: 'open', maxUploadBytes: config.maxUploadBytes, logger: false, documentation: false, metrics: deps.metrics })
  await app.ready()
  const server = await startMetricsServer(deps.metrics, { host: '127.0.0.1', port: 0 })
  return {
    deps,
    app,
    server,
    close: async () => {
      await server.close()
      await app.close()
      await deps.couch.server.db.destroy(deps.couch.name).catch(() => {})
      await deps.close()
    }
  }
}

async function scrape (server: MetricsServer): Promise<{ samples: Sample[], text: string, contentType: string | null }> {
  const res = await fetch(`${server.url}/metrics`)
  expect(res.status).toBe(200)
  const text = await res.text()
  return { samples: parseExposition(text), text, contentType: res.headers.get('content-type') }
}

/** Jobs by type and state, counted from every document in the database (the ground truth). */
async function countDocuments (couch: CouchDatabase): Promise<Map<string, number>> {
  const res = await couch.db.list({ include_docs: true })
  const counts = new Map<string, number>()
  for (const row of res.rows) {
    const doc = row.doc as Record<string, unknown> | undefined
    if (doc === undefined || typeof doc.type !== 'string' || typeof doc['processing-state'] !== 'string') continue
    const key = `${doc.type}/${doc['processing-state']}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

function expectCountsMatch (samples: Sample[], documents: Map<string, number>): void {
  let depth = 0
  for (const type of jobTypes) {
    for (const state of processingStates) {
      const expected = documents.get(`${type}/${state}`) ?? 0
      expect(sampleValue(samples, 'elastic_thought_jobs', { type, state }), `${type}/${state}`).toBe(expected)
      if (state === 'pending' || state === 'processing') depth += expected
    }
  }
  expect(sampleValue(samples, 'elastic_thought_queue_depth')).toBe(depth)
}

describe('GET /metrics: job counts from the database, HTTP latency by route', () => {
  let t: Running
  const plan: Partial<Record<JobType, Partial<Record<ProcessingState, number>>>> = {
    datafile: { pending: 3, processing: 2, finished_successfully: 4, failed: 1, cancelled: 1 },
    dataset: { pending: 1, finished_successfully: 2 },
    'training-job': { pending: 2, processing: 1, failed: 1 },
    'classify-job': { finished_successfully: 3 }
  }
  const ids: string[] = []

  beforeAll(async () => {
    t = await start(false)
    for (const [type, states] of Object.entries(plan) as Array<[JobType, Partial<Record<ProcessingState, number>>]>) {
      for (const [state, n] of Object.entries(states) as Array<[ProcessingState, number]>) {
        for (let i = 0; i < n; i++) ids.push(await writeJob(t.deps.couch, type, state))
      }
    }
  })
  afterAll(async () => { await t.close() })

  it('reports every type and state as the documents have them, zeros included, and the queue depth', async () => {
    const { samples, contentType } = await scrape(t.server)
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/)
    for (const type of jobTypes) {
      for (const state of processingStates) {
        expect(sampleValue(samples, 'elastic_thought_jobs', { type, state }), `${type}/${state}`).toBe(plan[type]?.[state] ?? 0)
      }
    }
    // pending + processing: 3 + 2 datafiles, 1 dataset, 2 + 1 training jobs.
    expect(sampleValue(samples, 'elastic_thought_queue_depth')).toBe(9)
    expect(sampleValue(samples, 'elastic_thought_database_up')).toBe(1)
    expectCountsMatch(samples, await countDocuments(t.deps.couch))
    // Process metrics come along, under their usual names.
    expect(samples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true)
    expect(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true)
  })

  it('follows state changes once its short cache has expired', async () => {
    const claimed = await t.deps.store.claim(ids[0] ?? '', 'worker-x', 60_000, 3)
    expect(claimed.kind).toBe('claimed')
    await writeJob(t.deps.couch, 'classify-job', 'pending')
    await writeJob(t.deps.couch, 'training-job', 'cancelled')
    await new Promise((resolve) => setTimeout(resolve, 1600))
    const { samples } = await scrape(t.server)
    expect(sampleValue(samples, 'elastic_thought_jobs', { type: 'datafile', state: 'pending' })).toBe(2)
    expect(sampleValue(samples, 'elastic_thought_jobs', { type: 'datafile', state: 'processing' })).toBe(3)
    expect(sampleValue(samples, 'elastic_thought_jobs', { type: 'classify-job', state: 'pending' })).toBe(1)
    expect(sampleValue(samples, 'elastic_thought_queue_depth')).toBe(10)
    expectCountsMatch(samples, await countDocuments(t.deps.couch))
  })

  it('times HTTP requests by route pattern and status, never by raw URL', async () => {
    const auth = await signUp(t.app, 'metricsuser')
    for (let i = 0; i < 2; i++) expect((await t.app.inject({ url: '/health' })).statusCode).toBe(200)
    const [a, b] = ids
    expect((await t.app.inject({ url: `/training-jobs/${a ?? ''}` })).statusCode).toBe(401)
    expect((await t.app.inject({ url: `/training-jobs/${b ?? ''}` })).statusCode).toBe(401)
    expect((await t.app.inject({ url: `/training-jobs/${b ?? ''}`, headers: { authorization: auth } })).statusCode).toBe(404)
    expect((await t.app.inject({ url: '/no/such/path/42' })).statusCode).toBe(404)
    // The API port itself has no /metrics.
    expect((await t.app.inject({ url: '/metrics' })).statusCode).toBe(404)

    const { samples, text } = await scrape(t.server)
    const count = (route: string, status: string, method = 'GET'): number => sampleValue(samples, 'elastic_thought_http_request_duration_seconds_count', { method, route, status_code: status })
    expect(count('/health', '200')).toBe(2)
    expect(count('/training-jobs/:id', '401')).toBe(2)
    expect(count('/training-jobs/:id', '404')).toBe(1)
    expect(count('/users', '201', 'POST')).toBe(1)
    // Unmatched paths share one label (the /metrics probe above is one of them).
    expect(count('unmatched', '404')).toBe(2)
    expect(sampleValue(samples, 'elastic_thought_http_request_duration_seconds_sum', { route: '/health', status_code: '200' })).toBeGreaterThan(0)
    const inf = sampleValue(samples, 'elastic_thought_http_request_duration_seconds_bucket', { route: '/health', status_code: '200', le: '+Inf' })
    expect(inf).toBe(2)
    for (const id of ids) expect(text).not.toContain(id)
    expect(text).not.toContain('/no/such/path')
  })
})

describe('GET /metrics: durations and attempts of jobs this process ran', () => {
  let t: Running
  let files: Awaited<ReturnType<typeof serveFiles>>
  let auth: string

  beforeAll(async () => {
    files = await serveFiles({})
    t = await start(true)
    auth = await signUp(t.app, 'runner')
  })
  afterAll(async () => {
    await t.close()
    await files.close()
  })

  it('observes each ended job once, from claim to end state, with its attempts', async () => {
    const boundary = '----et-metrics'
    const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.tar.gz"\r\n\r\n`), quadrantArchive(4, 9), Buffer.from(`\r\n--${boundary}--\r\n`)])
    const good = (await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body })).json() as { id: string }
    const missing = (await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth }, payload: { url: files.url('/gone.tar.gz') } })).json() as { id: string }
    const doneGood = await settleJob(t.app, auth, `/datafiles/${good.id}`, 30_000)
    const doneMissing = await settleJob(t.app, auth, `/datafiles/${missing.id}`, 30_000)
    expect(doneGood['processing-state'], doneGood['processing-log']).toBe('finished_successfully')
    expect(doneMissing['processing-state']).toBe('failed')
    const dataset = (await t.app.inject({ method: 'POST', url: '/datasets', headers: { authorization: auth }, payload: { training: { 'datafile-id': good.id, 'split-percentage': 0.5 }, test: { 'datafile-id': good.id, 'split-percentage': 0.5 } } })).json() as { id: string }
    const doneDataset = await settleJob(t.app, auth, `/datasets/${dataset.id}`, 30_000)
    expect(doneDataset['processing-state'], doneDataset['processing-log']).toBe('finished_successfully')
    // Out of attempts when it is picked up: failed at claim time, nothing run, so not timed.
    const exhausted = await writeJob(t.deps.couch, 'datafile', 'pending', { attempts: 3, 'started-at': new Date(Date.now() - 3_600_000).toISOString(), 'processing-log': 'attempt 3 failed: boom' })
    await settleJob(t.app, auth, `/datafiles/${exhausted}`, 30_000).catch(() => {})
    for (let i = 0; i < 200 && (await t.deps.store.readJob(exhausted))['processing-state'] !== 'failed'; i++) await new Promise((resolve) => setTimeout(resolve, 50))
    expect((await t.deps.store.readJob(exhausted))['processing-state']).toBe('failed')

    const { samples } = await scrape(t.server)
    const h = (name: string, type: string, outcome: string): number => sampleValue(samples, `elastic_thought_job_${name}`, { type, outcome })
    const seconds = (doc: Record<string, unknown>): number => (Date.parse(String(doc['finished-at'])) - Date.parse(String(doc['started-at']))) / 1000

    expect(h('duration_seconds_count', 'datafile', 'finished_successfully')).toBe(1)
    expect(h('duration_seconds_sum', 'datafile', 'finished_successfully')).toBeCloseTo(seconds(doneGood), 6)
    expect(h('duration_seconds_count', 'datafile', 'failed')).toBe(1)
    expect(h('duration_seconds_sum', 'datafile', 'failed')).toBeCloseTo(seconds(doneMissing), 6)
    expect(h('duration_seconds_count', 'dataset', 'finished_successfully')).toBe(1)
    expect(h('duration_seconds_sum', 'dataset', 'finished_successfully')).toBeCloseTo(seconds(doneDataset), 6)
    // Attempts: both failed datafiles are counted, the 404 after 1 attempt, the exhausted one after 3.
    expect(h('attempts_count', 'datafile', 'failed')).toBe(2)
    expect(h('attempts_sum', 'datafile', 'failed')).toBe(4)
    expect(h('attempts_sum', 'datafile', 'finished_successfully')).toBe(1)
    expect(sampleValue(samples, 'elastic_thought_jobs_in_progress')).toBe(0)
    await new Promise((resolve) => setTimeout(resolve, 1600))
    expectCountsMatch((await scrape(t.server)).samples, await countDocuments(t.deps.couch))
  })
})

describe('metrics with the database unreachable', () => {
  it('says so in elastic_thought_database_up and leaves the counts out rather than lying', async () => {
    const couch = new CouchDatabase({ serverUrl: 'http://127.0.0.1:9', dbName: 'nowhere' })
    const metrics = createMetrics({ counts: new CachedJobCounts(couch), processMetrics: false })
    const samples = parseExposition((await metrics.render()).body)
    expect(sampleValue(samples, 'elastic_thought_database_up')).toBe(0)
    expect(samples.filter((s) => s.name === 'elastic_thought_jobs' || s.name === 'elastic_thought_queue_depth')).toEqual([])
    expect(sampleValue(samples, 'elastic_thought_jobs_in_progress')).toBe(0)
    await couch.close()
  })
})
