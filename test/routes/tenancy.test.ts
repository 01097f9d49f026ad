import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { createChain, lenetDeploy, lenetNet, lenetSolver } from '../helpers/resources.js'
import type { Chain } from '../helpers/resources.js'

/**
 * The tenancy matrix: for every resource and every endpoint, another user's id answers exactly
 * like a missing id (404, same message shape), lists never show another user's documents, and
 * references to another user's documents are refused as if they did not exist.
 */
describe('tenancy matrix', () => {
  let t: TestApp
  let alice: string
  let mallory: string
  let chain: Chain
  const missing = '0123456789abcdef0123456789abcdef'

  beforeAll(async () => {
    t = await startTestApp()
    alice = await signUp(t.app, 'alice')
    mallory = await signUp(t.app, 'mallory')
    chain = await createChain(t.app, alice)
    // Mallory owns documents too, so her lists are not trivially empty.
    await createChain(t.app, mallory)
  })
  afterAll(async () => { await t.close() })

  const resources: Array<[string, keyof Chain]> = [
    ['datafiles', 'datafile'], ['datasets', 'dataset'], ['solvers', 'solver'],
    ['training-jobs', 'trainingJob'], ['classifiers', 'classifier'], ['classify-jobs', 'classifyJob']
  ]

  const endpoints = (path: string, id: string): Array<{ method: 'GET' | 'DELETE' | 'POST', url: string, payload?: unknown }> => [
    { method: 'GET', url: `/${path}/${id}` },
    { method: 'DELETE', url: `/${path}/${id}` },
    ...(path === 'training-jobs' || path === 'classify-jobs' ? [{ method: 'POST' as const, url: `/${path}/${id}/cancel` }] : []),
    ...(path === 'classifiers' ? [{ method: 'POST' as const, url: `/${path}/${id}/classify`, payload: { urls: ['https://example.com/x.png'] } }] : [])
  ]

  for (const [path, key] of resources) {
    it(`${path}: every endpoint answers another user's id exactly as a missing one`, async () => {
      for (const endpoint of endpoints(path, chain[key])) {
        const foreign = await t.app.inject({ ...endpoint, headers: { authorization: mallory }, payload: endpoint.payload as Record<string, unknown> | undefined })
        const absent = await t.app.inject({ ...endpoint, url: endpoint.url.replace(chain[key], missing), headers: { authorization: mallory }, payload: endpoint.payload as Record<string, unknown> | undefined })
        expect(foreign.statusCode, `${endpoint.method} ${endpoint.url}`).toBe(404)
        expect(absent.statusCode).toBe(404)
        expect(foreign.json().code).toBe(absent.json().code)
        expect(foreign.json().message.replace(chain[key], 'ID')).toBe(absent.json().message.replace(missing, 'ID'))
      }
      // The owner still has it: nothing above changed or deleted it.
      const own = await t.app.inject({ url: `/${path}/${chain[key]}`, headers: { authorization: alice } })
      expect(own.statusCode).toBe(200)
      expect(own.json()['processing-state'] ?? 'n/a').not.toBe('cancelled')
    })

    it(`${path}: lists never show another user's documents`, async () => {
      const mine = await t.app.inject({ url: `/${path}?limit=200`, headers: { authorization: alice } })
      const theirs = await t.app.inject({ url: `/${path}?limit=200`, headers: { authorization: mallory } })
      const mineIds = mine.json().items as Array<{ id: string, 'user-id': string }>
      const theirIds = theirs.json().items as Array<{ id: string, 'user-id': string }>
      expect(mineIds.map((d) => d.id)).toContain(chain[key])
      expect(theirIds.length).toBeGreaterThan(0)
      expect(theirIds.map((d) => d.id)).not.toContain(chain[key])
      expect(new Set(theirIds.map((d) => d['user-id']))).toEqual(new Set(['user:mallory']))
      expect(new Set(mineIds.map((d) => d['user-id']))).toEqual(new Set(['user:alice']))
    })
  }

  it("a cursor from one user's list cannot page through another's", async () => {
    const page = await t.app.inject({ url: '/datafiles?limit=1', headers: { authorization: alice } })
    // Alice has one datafile, so craft a cursor shaped like hers and present it as Mallory.
    const cursor = Buffer.from(JSON.stringify(['user:alice', 'datafile', '9999', 'z'])).toString('base64url')
    expect(page.statusCode).toBe(200)
    const res = await t.app.inject({ url: `/datafiles?cursor=${cursor}`, headers: { authorization: mallory } })
    expect(res.statusCode).toBe(400)
    expect(res.json().code).toBe('ET_VALIDATION')
  })

  it("references to another user's documents are refused as nonexistent when creating", async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['/datasets', { training: { 'datafile-id': chain.datafile, 'split-percentage': 70 }, test: { 'datafile-id': chain.datafile, 'split-percentage': 30 } }, 'datafile'],
      ['/solvers', { 'dataset-id': chain.dataset, specification: lenetSolver, 'specification-net': lenetNet }, 'dataset'],
      ['/training-jobs', { 'solver-id': chain.solver }, 'solver'],
      ['/classifiers', { 'training-job-id': chain.trainingJob, specification: lenetDeploy, scale: '255', 'image-width': '28', 'image-height': '28' }, 'training-job']
    ]
    for (const [url, payload, target] of cases) {
      const res = await t.app.inject({ method: 'POST', url, headers: { authorization: mallory }, payload })
      expect(res.statusCode, url).toBe(400)
      expect(res.json().message).toMatch(new RegExp(`^${target} '[0-9a-f]+' does not exist$`))
    }
  })

  it('the owner is set by the server: a client-sent user-id, state, _id or _rev is rejected', async () => {
    for (const extra of [{ 'user-id': 'user:alice' }, { 'processing-state': 'finished_successfully' }, { _id: 'chosen' }, { _rev: '1-abc' }]) {
      const res = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: mallory }, payload: { url: 'https://example.com/a.tar.gz', ...extra } })
      expect(res.statusCode, JSON.stringify(extra)).toBe(400)
      expect(res.json().message).toContain(Object.keys(extra)[0])
    }
  })

  it('GET /users/me shows only the caller', async () => {
    const res = await t.app.inject({ url: '/users/me', headers: { authorization: mallory } })
    expect(res.json()).toMatchObject({ id: 'user:mallory', username: 'mallory' })
  })
})
