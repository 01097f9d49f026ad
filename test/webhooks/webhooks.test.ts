import { createHmac } from 'node:crypto'
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { WebhookPayload } from '../../models/notify.js'
import { buildApp } from '../../src/app.js'
import type { ServerConfig } from '../../src/config.js'
import { CouchDatabase, parseCouchUrl } from '../../src/db/couch.js'
import { createDeps } from '../../src/deps.js'
import type { Deps, DepsOptions } from '../../src/deps.js'
import { createLogger } from '../../src/lib/logger.js'
import { verifyWebhookSignature } from '../../src/webhooks/webhook-signature.js'
import { signUp, testConfig } from '../helpers/app.js'
import { settleJob } from '../helpers/settle.js'
import { DEPLOY_NET, IMAGE_DATA_NET, quadrantArchive, solverText } from '../jobs/runners/runner-fixtures.js'
import { startReceiver } from './webhook-receiver.js'
import type { WebhookReceiver } from './webhook-receiver.js'

type Doc = Record<string, unknown> & { id: string, 'processing-state': string }

interface Server {
  app: FastifyInstance
  deps: Deps
  close: () => Promise<void>
}

/** A server over a database that outlives it (restarts, two servers on one database). */
async function startServer (dbUrl: string, options: DepsOptions & { allowPrivate?: boolean, publicUrl?: string } = {}): Promise<Server> {
  const base = testConfig()
  const config: ServerConfig = {
    ...base,
    database: { kind: 'couch', url: dbUrl, dbName: 'unused' },
    jobs: { ...base.jobs, allowPrivateUrls: options.allowPrivate ?? true }
  }
  const deps = await createDeps(config, createLogger(process.env.ET_TEST_LOG ?? 'silent'), { runJobs: false, ...options })
  const app = await buildApp(deps.services, { registration: 'open', maxUploadBytes: config.maxUploadBytes, logger: false, publicUrl: options.publicUrl ?? null })
  await app.ready()
  for (let i = 0; i < 400 && !deps.dispatcher.isLive; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  return { app, deps, close: async () => { await app.close(); await deps.close() } }
}

const fast = { baseDelayMs: 200, maxDelayMs: 1000, timeoutMs: 2000, sweepIntervalMs: 500 }

async function call (app: FastifyInstance, auth: string, method: 'GET' | 'POST', url: string, payload?: unknown): Promise<{ status: number, json: () => Doc }> {
  const res = await app.inject({ method, url, headers: { authorization: auth }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) })
  return { status: res.statusCode, json: () => res.json() }
}

/** A solver to hang training jobs on. Jobs do not run here, so its inputs never need to exist for real. */
async function makeSolver (app: FastifyInstance, auth: string): Promise<string> {
  const datafile = await call(app, auth, 'POST', '/datafiles', { url: 'http://192.0.2.1/never-fetched.tar.gz' })
  const dataset = await call(app, auth, 'POST', '/datasets', { training: { 'datafile-id': datafile.json().id, 'split-percentage': 0.8 }, test: { 'datafile-id': datafile.json().id, 'split-percentage': 0.2 } })
  const solver = await call(app, auth, 'POST', '/solvers', { 'dataset-id': dataset.json().id, specification: solverText(10), 'specification-net': IMAGE_DATA_NET })
  expect(solver.status).toBe(201)
  return solver.json().id
}

async function jobWithHook (app: FastifyInstance, auth: string, solverId: string, url: string): Promise<string> {
  const job = await call(app, auth, 'POST', '/training-jobs', { 'solver-id': solverId, 'notify-url': url })
  expect(job.status).toBe(201)
  expect(job.json()['notify-state']).toBe('pending')
  return job.json().id
}

/** Polls the job until its webhook state is one of `states` (and `also` holds). */
async function notifyState (app: FastifyInstance, auth: string, id: string, states: string[], ms = 20_000, also: (doc: Doc) => boolean = () => true): Promise<Doc> {
  const deadline = Date.now() + ms
  for (;;) {
    const doc = (await call(app, auth, 'GET', `/training-jobs/${id}`)).json()
    if (states.includes(String(doc['notify-state'])) && also(doc)) return doc
    if (Date.now() > deadline) throw new Error(`webhook of ${id} still ${String(doc['notify-state'])} (attempts ${String(doc['notify-attempts'])}, last error ${String(doc['notify-last-error'])})`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

// Several servers start and stop per test: room for a loaded 2-core machine.
describe('job webhooks', { timeout: 60_000 }, () => {
  const dbUrl = freshDatabaseUrl()
  let receiver: WebhookReceiver
  let server: Server
  let auth: string
  let solverId: string

  beforeAll(async () => {
    receiver = await startReceiver()
    server = await startServer(dbUrl, { webhooks: fast })
    auth = await signUp(server.app, 'hooked')
    solverId = await makeSolver(server.app, auth)
  })
  afterEach(() => {
    receiver.received.length = 0
    receiver.fallback = { status: 200 }
  })
  afterAll(async () => {
    await server.close()
    await receiver.close()
    const location = parseCouchUrl(dbUrl, 'unused')
    const couch = new CouchDatabase(location)
    await couch.server.db.destroy(location.dbName).catch(() => {})
    await couch.close()
  })

  it('signs the summary with the user\'s secret, verifiable as the README says; rotation switches keys', async () => {
    const secret = (await call(server.app, auth, 'GET', '/users/me/webhook-secret')).json() as unknown as { secret: string }
    expect(secret.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/)
    // Reading it again gives the same key; it is never in the user view.
    expect((await call(server.app, auth, 'GET', '/users/me/webhook-secret')).json()).toMatchObject({ secret: secret.secret })
    expect(JSON.stringify((await call(server.app, auth, 'GET', '/users/me')).json())).not.toContain(secret.secret)

    const id = await jobWithHook(server.app, auth, solverId, receiver.url('/hook?x=1'))
    expect((await call(server.app, auth, 'POST', `/training-jobs/${id}/cancel`)).status).toBe(200)
    const [hook] = await receiver.waitFor(1)
    if (hook === undefined) throw new Error('no webhook')
    expect(hook.path).toBe('/hook?x=1')
    expect(hook.headers['content-type']).toBe('application/json')
    expect(hook.headers['x-elasticthought-event']).toBe('training-job.cancelled')
    expect(hook.headers['x-elasticthought-delivery']).toBe(id)
    // Verify exactly as documented: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>.
    const header = String(hook.headers['x-elasticthought-signature'])
    const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header)
    expect(match, header).not.toBeNull()
    const [, t, v1] = match ?? []
    expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(30)
    expect(createHmac('sha256', secret.secret).update(`${t ?? ''}.${hook.body}`).digest('hex')).toBe(v1)
    expect(verifyWebhookSignature(secret.secret, header, hook.body)).toBe(true)
    expect(verifyWebhookSignature(secret.secret, header, hook.body.replace('cancelled', 'finished_successfully'))).toBe(false)
    expect(verifyWebhookSignature(secret.secret, header, hook.body, { now: new Date(Date.now() + 600_000) })).toBe(false)

    const payload = WebhookPayload.parse(JSON.parse(hook.body))
    expect(payload).toMatchObject({ event: 'training-job.cancelled', id, type: 'training-job', state: 'cancelled', 'user-id': 'user:hooked', 'processing-log': 'cancelled by the user', classify: null })
    expect(payload.url).toMatch(new RegExp(`/training-jobs/${id}$`))
    expect(payload.training).toMatchObject({ 'solver-id': solverId, 'model-url': null })
    expect(payload['duration-ms']).toBeGreaterThanOrEqual(0)
    const done = await notifyState(server.app, auth, id, ['delivered'])
    expect(done).toMatchObject({ 'notify-attempts': 1, 'notify-last-status': 200, 'notify-last-error': null })
    expect(typeof done['notify-delivered-at']).toBe('string')

    const openapi = (await server.app.inject({ url: '/documentation/json' })).json<{ paths: Record<string, unknown> }>()
    expect(Object.keys(openapi.paths)).toContain('/users/me/webhook-secret')
    expect(JSON.stringify(openapi.paths['/training-jobs/{id}'])).toContain('notify-last-error')

    const rotated = (await call(server.app, auth, 'POST', '/users/me/webhook-secret')).json() as unknown as { secret: string }
    expect(rotated.secret).not.toBe(secret.secret)
    const second = await jobWithHook(server.app, auth, solverId, receiver.url())
    await call(server.app, auth, 'POST', `/training-jobs/${second}/cancel`)
    const [, next] = await receiver.waitFor(2)
    const nextHeader = String(next?.headers['x-elasticthought-signature'])
    expect(verifyWebhookSignature(rotated.secret, nextHeader, next?.body ?? '')).toBe(true)
    expect(verifyWebhookSignature(secret.secret, nextHeader, next?.body ?? '')).toBe(false)
  })

  it('retries a 500 with growing delays until the receiver takes it; a 4xx is final', async () => {
    receiver.script({ status: 500 }, { status: 503 })
    const id = await jobWithHook(server.app, auth, solverId, receiver.url())
    await call(server.app, auth, 'POST', `/training-jobs/${id}/cancel`)
    const done = await notifyState(server.app, auth, id, ['delivered', 'failed'])
    expect(done).toMatchObject({ 'notify-state': 'delivered', 'notify-attempts': 3, 'notify-last-status': 200 })
    expect(receiver.received.map((r) => r.headers['x-elasticthought-attempt'])).toEqual(['1', '2', '3'])
    expect(new Set(receiver.received.map((r) => r.body)).size).toBe(1)
    const gaps = receiver.received.slice(1).map((r, i) => r.receivedAt - (receiver.received[i]?.receivedAt ?? 0))
    // 200 ms then 400 ms (±10% jitter): exponential backoff, not a hot loop.
    expect(gaps[0]).toBeGreaterThanOrEqual(170)
    expect(gaps[1]).toBeGreaterThanOrEqual(340)

    receiver.received.length = 0
    receiver.script({ status: 410 })
    const refused = await jobWithHook(server.app, auth, solverId, receiver.url())
    await call(server.app, auth, 'POST', `/training-jobs/${refused}/cancel`)
    const failed = await notifyState(server.app, auth, refused, ['delivered', 'failed'])
    expect(failed).toMatchObject({ 'notify-state': 'failed', 'notify-attempts': 1, 'notify-last-status': 410, 'notify-last-error': 'the receiver answered HTTP 410' })
    await new Promise((resolve) => setTimeout(resolve, 600))
    expect(receiver.received).toHaveLength(1)
  })

  it('gives up on a receiver that never answers, with the reason recorded', async () => {
    const quick = await startServer(dbUrl, { webhooks: { timeoutMs: 300, maxAttempts: 2, baseDelayMs: 100, sweepIntervalMs: 500 } })
    try {
      // The shared server must not race this one for the delivery: its timeout is longer.
      await server.close()
      receiver.fallback = 'hang'
      const id = await jobWithHook(quick.app, auth, solverId, receiver.url())
      await call(quick.app, auth, 'POST', `/training-jobs/${id}/cancel`)
      const done = await notifyState(quick.app, auth, id, ['delivered', 'failed'])
      expect(done).toMatchObject({ 'notify-state': 'failed', 'notify-attempts': 2, 'notify-last-status': null, 'notify-last-error': 'gave up after 2 attempts: no answer within 300 ms' })
      expect(receiver.received).toHaveLength(2)
    } finally {
      await quick.close()
      server = await startServer(dbUrl, { webhooks: fast })
    }
  })

  it('with two servers on one database, each webhook is sent once', async () => {
    const other = await startServer(dbUrl, { webhooks: fast })
    try {
      const ids: string[] = []
      for (let i = 0; i < 6; i++) ids.push(await jobWithHook(server.app, auth, solverId, receiver.url(`/hook/${i}`)))
      await Promise.all(ids.map(async (id) => await call(server.app, auth, 'POST', `/training-jobs/${id}/cancel`)))
      const senders = new Set<string>()
      for (const id of ids) senders.add(String((await notifyState(server.app, auth, id, ['delivered']))['notify-sender']))
      // Give a duplicate every chance to show up (both servers sweep every 500 ms).
      await new Promise((resolve) => setTimeout(resolve, 1500))
      expect(receiver.received.map((r) => r.path).sort()).toEqual(ids.map((_, i) => `/hook/${i}`).sort())
      expect(receiver.received.every((r) => r.headers['x-elasticthought-attempt'] === '1')).toBe(true)
      expect([...senders].every((s) => s.startsWith('server@'))).toBe(true)
    } finally {
      await other.close()
    }
  })

  it('resumes a delivery after a server restart, and takes over one whose sender died mid-claim', async () => {
    const slow = { ...fast, baseDelayMs: 1500, maxDelayMs: 1500 }
    await server.close()
    let first = await startServer(dbUrl, { webhooks: slow })
    receiver.script({ status: 500 })
    const id = await jobWithHook(first.app, auth, solverId, receiver.url())
    await call(first.app, auth, 'POST', `/training-jobs/${id}/cancel`)
    const waiting = await notifyState(first.app, auth, id, ['pending'], 5000, (doc) => doc['notify-attempts'] === 1)
    expect(waiting).toMatchObject({ 'notify-state': 'pending', 'notify-attempts': 1, 'notify-last-error': 'the receiver answered HTTP 500' })
    await first.close()
    const sender = String(waiting['notify-sender'])

    first = await startServer(dbUrl, { webhooks: slow })
    try {
      const done = await notifyState(first.app, auth, id, ['delivered'])
      expect(done['notify-attempts']).toBe(2)
      expect(done['notify-sender']).not.toBe(sender)
      expect(receiver.received).toHaveLength(2)

      // A server that died while sending leaves a claim; once it expires another server sends.
      const orphan = await jobWithHook(first.app, auth, solverId, receiver.url('/orphan'))
      await first.close()
      const db = new CouchDatabase(parseCouchUrl(dbUrl, 'unused'))
      const raw = await db.get(orphan) as Record<string, unknown>
      await db.put({ ...raw, _id: orphan, 'processing-state': 'cancelled', 'finished-at': new Date().toISOString(), 'notify-state': 'sending', 'notify-sender': 'server@dead', 'notify-attempts': 1, 'notify-lease-expires-at': new Date(Date.now() + 800).toISOString() })
      await db.close()
      first = await startServer(dbUrl, { webhooks: slow })
      const taken = await notifyState(first.app, auth, orphan, ['delivered'])
      expect(taken['notify-attempts']).toBe(2)
      expect(receiver.received.filter((r) => r.path === '/orphan').map((r) => r.headers['x-elasticthought-attempt'])).toEqual(['2'])
    } finally {
      await first.close()
      server = await startServer(dbUrl, { webhooks: fast })
    }
  })

  it('links to the job through the Host it was created through, or through --public-url when set', async () => {
    // Behind a proxy the Host is an internal name; the operator's public URL wins over it.
    const behindProxy = { host: 'et-api.internal:8080' }
    const direct = (await server.app.inject({ method: 'POST', url: '/training-jobs', headers: { authorization: auth, ...behindProxy }, payload: { 'solver-id': solverId, 'notify-url': receiver.url() } })).json<Doc>().id
    await server.close()
    server = await startServer(dbUrl, { webhooks: fast, publicUrl: 'https://et.example.com/api' })
    const configured = (await server.app.inject({ method: 'POST', url: '/training-jobs', headers: { authorization: auth, ...behindProxy }, payload: { 'solver-id': solverId, 'notify-url': receiver.url() } })).json<Doc>().id
    const trained = (await server.app.inject({ method: 'POST', url: '/training-jobs', headers: { authorization: auth, ...behindProxy }, payload: { 'solver-id': solverId } })).json<Doc>().id
    const classifier = (await call(server.app, auth, 'POST', '/classifiers', { 'training-job-id': trained, specification: DEPLOY_NET, scale: 1, 'image-width': 12, 'image-height': 12 })).json().id
    const classify = (await server.app.inject({ method: 'POST', url: `/classifiers/${classifier}/classify`, headers: { authorization: auth, ...behindProxy }, payload: { urls: [receiver.url('/a.png')], 'notify-url': receiver.url() } })).json<Doc>().id
    for (const [kind, id] of [['training-jobs', direct], ['training-jobs', configured], ['classify-jobs', classify]]) {
      await call(server.app, auth, 'POST', `/${kind}/${id}/cancel`)
    }
    const hooks = await receiver.waitFor(3)
    const urls = hooks.map((h) => WebhookPayload.parse(JSON.parse(h.body)).url).sort()
    expect(urls).toEqual([
      `http://et-api.internal:8080/training-jobs/${direct}`,
      `https://et.example.com/api/classify-jobs/${classify}`,
      `https://et.example.com/api/training-jobs/${configured}`
    ].sort())
    await server.close()
    server = await startServer(dbUrl, { webhooks: fast })
  })

  it('refuses private notify-urls unless the server allows them, at creation and at delivery', async () => {
    const strict = await startServer(dbUrl, { webhooks: fast, allowPrivate: false })
    try {
      for (const url of ['http://127.0.0.1:9/hook', 'http://localhost/hook', 'http://[::1]/hook', 'http://169.254.169.254/latest']) {
        const res = await call(strict.app, auth, 'POST', '/training-jobs', { 'solver-id': solverId, 'notify-url': url })
        expect(res.status, url).toBe(400)
        expect(String(res.json().message)).toContain('--allow-private-urls')
      }
      const job = (await call(strict.app, auth, 'POST', '/training-jobs', { 'solver-id': solverId })).json().id
      const classifier = (await call(strict.app, auth, 'POST', '/classifiers', { 'training-job-id': job, specification: DEPLOY_NET, scale: 1, 'image-width': 12, 'image-height': 12 })).json().id
      const classify = await call(strict.app, auth, 'POST', `/classifiers/${classifier}/classify`, { urls: ['http://192.0.2.1/a.png'], 'notify-url': 'http://10.0.0.1/' })
      expect(classify.status).toBe(400)
      expect(String(classify.json().message)).toContain('body.notify-url: 10.0.0.1 is a private')

      // Created through a permissive server, ended under a strict one: refused, not retried.
      await server.close()
      const permissive = await startServer(dbUrl, { webhooks: false })
      const id = await jobWithHook(permissive.app, auth, solverId, receiver.url())
      await permissive.close()
      await call(strict.app, auth, 'POST', `/training-jobs/${id}/cancel`)
      const done = await notifyState(strict.app, auth, id, ['delivered', 'failed'])
      expect(done['notify-state']).toBe('failed')
      expect(done['notify-attempts']).toBe(1)
      expect(String(done['notify-last-error'])).toContain('private, loopback or link-local')
      expect(receiver.received).toHaveLength(0)
    } finally {
      await strict.close()
      server = await startServer(dbUrl, { webhooks: fast })
    }
  })
})

function freshDatabaseUrl (): string {
  const url = (testConfig().database as { url: string }).url
  return url.replace(/[^/]*$/, `test_hooks_${randomUUID().replaceAll('-', '')}`)
}

describe('a slow receiver', () => {
  it('does not hold up the job that ended nor the jobs after it', async () => {
    const receiver = await startReceiver({ status: 200, delayMs: 10_000 })
    const dbUrl = freshDatabaseUrl()
    const server = await startServer(dbUrl, { runJobs: true, webhooks: { ...fast, timeoutMs: 15_000 } })
    try {
      const auth = await signUp(server.app, 'patient')
      const boundary = '----et-hook'
      const archive = quadrantArchive(8, 3)
      const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`), archive, Buffer.from(`\r\n--${boundary}--\r\n`)])
      const upload = await server.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body })
      expect(upload.statusCode, upload.body).toBe(201)
      const datafile = upload.json<Doc>().id
      const dataset = (await call(server.app, auth, 'POST', '/datasets', { training: { 'datafile-id': datafile, 'split-percentage': 75 }, test: { 'datafile-id': datafile, 'split-percentage': 25 } })).json().id
      const solver = (await call(server.app, auth, 'POST', '/solvers', { 'dataset-id': dataset, specification: solverText(20), 'specification-net': IMAGE_DATA_NET })).json().id
      const first = (await call(server.app, auth, 'POST', '/training-jobs', { 'solver-id': solver, 'notify-url': receiver.url() })).json().id
      const ended = await settleJob(server.app, auth, `/training-jobs/${first}`, 60_000)
      expect(ended['processing-state']).toBe('finished_successfully')

      // The receiver holds the request for 10 s; meanwhile another job runs and ends.
      const [hook] = await receiver.waitFor(1)
      const second = (await call(server.app, auth, 'POST', '/training-jobs', { 'solver-id': solver })).json().id
      const next = await settleJob(server.app, auth, `/training-jobs/${second}`, 60_000)
      expect(next['processing-state']).toBe('finished_successfully')
      expect(hook?.answeredAt).toBeNull()
      expect((await call(server.app, auth, 'GET', `/training-jobs/${first}`)).json()['notify-state']).toBe('sending')

      const delivered = await notifyState(server.app, auth, first, ['delivered', 'failed'], 20_000)
      expect(delivered['notify-state']).toBe('delivered')
      const payload = WebhookPayload.parse(JSON.parse(hook?.body ?? '{}'))
      expect(payload.state).toBe('finished_successfully')
      expect(payload.training?.iteration).toBe(20)
      expect(payload.training?.['max-iter']).toBe(20)
      expect(payload.training?.loss).toEqual(expect.any(Number))
      expect(payload.training?.accuracy).toEqual(expect.any(Number))
      expect(payload.training?.['model-url']).toMatch(new RegExp(`/training-jobs/${first}/model$`))
      expect(payload['run-ms']).toBeGreaterThan(0)
    } finally {
      await server.close()
      await receiver.close()
      const location = parseCouchUrl(dbUrl, 'unused')
      const couch = new CouchDatabase(location)
      await couch.server.db.destroy(location.dbName).catch(() => {})
      await couch.close()
    }
  }, 60_000)
})
