import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { basic, signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { createChain } from '../helpers/resources.js'
import type { Chain } from '../helpers/resources.js'

interface Case {
  name: string
  method: 'GET' | 'POST' | 'DELETE'
  url: string | ((c: Chain) => string)
  auth?: 'none' | 'wrong' | 'ok' | 'garbage'
  body?: string | ((c: Chain) => unknown)
  contentType?: string
  status: number
  code: string
  message: RegExp
}

describe('bad input gets a clear 4xx and the server stays up', () => {
  let t: TestApp
  let auth: string
  let chain: Chain

  beforeAll(async () => {
    t = await startTestApp()
    auth = await signUp(t.app, 'alice')
    chain = await createChain(t.app, auth)
  })
  afterAll(async () => { await t.close() })

  const cases: Case[] = [
    { name: 'malformed JSON', method: 'POST', url: '/datafiles', body: '{"url": ', contentType: 'application/json', status: 400, code: 'ET_INVALID_JSON', message: /not valid JSON/ },
    { name: 'wrong type', method: 'POST', url: '/datafiles', body: () => ({ url: 42 }), status: 400, code: 'ET_VALIDATION', message: /body\.url/ },
    { name: 'unknown field', method: 'POST', url: '/datafiles', body: () => ({ url: 'https://example.com/x.tar.gz', colour: 'red' }), status: 400, code: 'ET_VALIDATION', message: /colour/ },
    { name: 'non-http URL', method: 'POST', url: '/datafiles', body: () => ({ url: 'file:///etc/passwd' }), status: 400, code: 'ET_VALIDATION', message: /body\.url: must be an http:\/\/ or https:\/\/ URL/ },
    { name: 'javascript: URL', method: 'POST', url: '/datafiles', body: () => ({ url: 'javascript:alert(1)' }), status: 400, code: 'ET_VALIDATION', message: /http/ },
    { name: 'missing required field', method: 'POST', url: '/training-jobs', body: () => ({}), status: 400, code: 'ET_VALIDATION', message: /body\.solver-id/ },
    { name: 'huge body', method: 'POST', url: '/datafiles', body: JSON.stringify({ url: 'https://example.com/' + 'a'.repeat(2 * 1024 * 1024) }), contentType: 'application/json', status: 413, code: 'ET_PAYLOAD_TOO_LARGE', message: /too large/ },
    { name: 'unsupported content type', method: 'POST', url: '/datafiles', body: 'url=https://example.com/a', contentType: 'text/plain', status: 415, code: 'ET_UNSUPPORTED_MEDIA_TYPE', message: /.+/ },
    { name: 'missing auth', method: 'GET', url: '/datafiles', auth: 'none', status: 401, code: 'ET_UNAUTHORIZED', message: /Basic/ },
    { name: 'garbage auth header', method: 'GET', url: '/datafiles', auth: 'garbage', status: 401, code: 'ET_UNAUTHORIZED', message: /Basic/ },
    { name: 'wrong password', method: 'GET', url: '/datafiles', auth: 'wrong', status: 401, code: 'ET_UNAUTHORIZED', message: /wrong username or password/ },
    { name: 'foreign reference', method: 'POST', url: '/training-jobs', body: () => ({ 'solver-id': 'ffffffffffffffffffffffffffffffff' }), status: 400, code: 'ET_VALIDATION', message: /^solver 'f+' does not exist$/ },
    { name: 'reference of the wrong type', method: 'POST', url: '/training-jobs', body: (c) => ({ 'solver-id': c.dataset }), status: 400, code: 'ET_VALIDATION', message: /^solver '[0-9a-f]+' does not exist$/ },
    { name: 'split over 100%', method: 'POST', url: '/datasets', body: (c) => ({ training: { 'datafile-id': c.datafile, 'split-percentage': 80 }, test: { 'datafile-id': c.datafile, 'split-percentage': 0.3 } }), status: 400, code: 'ET_VALIDATION', message: /110%, more than 100%/ },
    { name: 'split of zero on one datafile', method: 'POST', url: '/datasets', body: (c) => ({ training: { 'datafile-id': c.datafile, 'split-percentage': 0 }, test: { 'datafile-id': c.datafile, 'split-percentage': 0.3 } }), status: 400, code: 'ET_VALIDATION', message: /training\.split-percentage: must be above 0/ },
    { name: 'negative split', method: 'POST', url: '/datasets', body: (c) => ({ training: { 'datafile-id': c.datafile, 'split-percentage': -1 }, test: { 'datafile-id': c.datafile, 'split-percentage': 30 } }), status: 400, code: 'ET_VALIDATION', message: /split-percentage/ },
    { name: 'solver with both URL and inline text', method: 'POST', url: '/solvers', body: (c) => ({ 'dataset-id': c.dataset, 'specification-url': 'https://example.com/s.prototxt', specification: 'base_lr: 1', 'specification-net': 'x' }), status: 400, code: 'ET_VALIDATION', message: /exactly one of 'specification-url' or 'specification'/ },
    { name: 'classifier scale not a number', method: 'POST', url: '/classifiers', body: (c) => ({ 'training-job-id': c.trainingJob, specification: 'layer {}', scale: 'big', 'image-width': '28', 'image-height': '28' }), status: 400, code: 'ET_VALIDATION', message: /scale must be a number/ },
    { name: 'classify with no urls', method: 'POST', url: (c) => `/classifiers/${c.classifier}/classify`, body: () => ({ urls: [] }), status: 400, code: 'ET_VALIDATION', message: /body\.urls/ },
    { name: 'classify a missing classifier', method: 'POST', url: '/classifiers/ffffffffffffffffffffffffffffffff/classify', body: () => ({ urls: ['https://example.com/a.png'] }), status: 404, code: 'ET_NOT_FOUND', message: /classifier/ },
    { name: 'invalid id in path', method: 'GET', url: '/datafiles/..%2F..%2Fetc', status: 400, code: 'ET_VALIDATION', message: /params\.id/ },
    { name: 'id too long', method: 'GET', url: `/datafiles/${'a'.repeat(300)}`, status: 414, code: 'ET_URI_TOO_LONG', message: /longer than 200 characters/ },
    { name: 'limit out of range', method: 'GET', url: '/datafiles?limit=100000', status: 400, code: 'ET_VALIDATION', message: /querystring\.limit/ },
    { name: 'unknown query parameter', method: 'GET', url: '/datafiles?owner=bob', status: 400, code: 'ET_VALIDATION', message: /owner/ },
    { name: 'garbage cursor', method: 'GET', url: '/datafiles?cursor=%%%', status: 400, code: 'ET_VALIDATION', message: /cursor/ },
    { name: 'unknown route', method: 'GET', url: '/nope', status: 404, code: 'ET_ROUTE_NOT_FOUND', message: /GET \/nope/ },
    { name: 'bad username at sign-up', method: 'POST', url: '/users', auth: 'none', body: () => ({ username: 'Bob Smith', email: 'b@example.com', password: 'long enough pw' }), status: 400, code: 'ET_VALIDATION', message: /body\.username: may contain only lowercase/ },
    { name: 'short password', method: 'POST', url: '/users', auth: 'none', body: () => ({ username: 'bob', email: 'b@example.com', password: 'bar' }), status: 400, code: 'ET_VALIDATION', message: /body\.password: must be at least 8 characters/ },
    { name: 'bad email', method: 'POST', url: '/users', auth: 'none', body: () => ({ username: 'bob', email: 'not-an-email', password: 'long enough pw' }), status: 400, code: 'ET_VALIDATION', message: /body\.email/ },
    { name: 'duplicate user', method: 'POST', url: '/users', auth: 'none', body: () => ({ username: 'alice', email: 'a@example.com', password: 'another password' }), status: 409, code: 'ET_CONFLICT', message: /username 'alice' is taken/ },
    { name: 'delete a job being processed', method: 'DELETE', url: (c) => `/training-jobs/${c.trainingJob}`, status: 409, code: 'ET_CONFLICT', message: /being processed; cancel it first/ }
  ]

  for (const c of cases) {
    it(`${c.name} → ${c.status} ${c.code}`, async () => {
      if (c.name === 'delete a job being processed') {
        const raw = await t.deps.couch.get(chain.trainingJob) as Record<string, unknown> & { _id: string }
        await t.deps.couch.put({ ...raw, 'processing-state': 'processing' })
      }
      const headers: Record<string, string> = {}
      if (c.auth === undefined || c.auth === 'ok') headers.authorization = auth
      if (c.auth === 'wrong') headers.authorization = basic('alice', 'not the password')
      if (c.auth === 'garbage') headers.authorization = 'Basic %%%not-base64'
      const body = typeof c.body === 'function' ? JSON.stringify(c.body(chain)) : c.body
      if (body !== undefined) headers['content-type'] = c.contentType ?? 'application/json'
      const res = await t.app.inject({ method: c.method, url: typeof c.url === 'function' ? c.url(chain) : c.url, headers, ...(body === undefined ? {} : { payload: body }) })
      expect(res.statusCode, res.body).toBe(c.status)
      const json = res.json()
      expect(Object.keys(json).sort()).toEqual(expect.arrayContaining(['code', 'error', 'message', 'statusCode']))
      expect(json.statusCode).toBe(c.status)
      expect(json.code).toBe(c.code)
      expect(json.message).toMatch(c.message)
      if (c.status === 401) expect(res.headers['www-authenticate']).toMatch(/^Basic realm="elastic-thought"/)
      // The server is still up and serving after every bad request.
      const health = await t.app.inject({ url: '/health' })
      expect(health.statusCode).toBe(200)
    })
  }

  it('validation errors list every issue with its field path in details', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/users', payload: { username: 'X', email: 'nope', password: 'x' } })
    expect(res.statusCode).toBe(400)
    const paths = (res.json().details.issues as Array<{ path: string }>).map((i) => i.path).sort()
    expect(paths).toEqual(['body.email', 'body.password', 'body.username', 'body.username'])
  })
})
