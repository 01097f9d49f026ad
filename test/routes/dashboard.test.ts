import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildWeb } from '../../scripts/build-web.js'
import { buildApp } from '../../src/app.js'
import { startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'

describe('dashboard at /', () => {
  let t: TestApp
  let app: FastifyInstance
  let dir: string

  beforeAll(async () => {
    // The test builds its own copy: it must not depend on (or race) a dist/ build.
    dir = await mkdtemp(path.join(tmpdir(), 'et-web-'))
    const root = await buildWeb({ outDir: path.join(dir, 'web') })
    t = await startTestApp()
    app = await buildApp(t.deps.services, { registration: 'open', maxUploadBytes: 1024, logger: false, dashboard: { root } })
  }, 120_000)
  afterAll(async () => {
    await app.close()
    await t.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves index.html with a strict Content-Security-Policy and no inline script or style', async () => {
    const res = await app.inject({ url: '/' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    const csp = String(res.headers['content-security-policy'])
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.body).toContain('<script type="module" src="/assets/app.js"></script>')
    // Every script has a src, no style element, no inline handlers: all of them would be blocked.
    expect(res.body).not.toMatch(/<script(?![^>]*\bsrc=)/)
    expect(res.body).not.toMatch(/<style|\son[a-z]+=/i)
    // No address outside this server (no CDN).
    expect(res.body).not.toMatch(/(src|href)="(https?:)?\/\//)
  })

  it('serves the bundled script and stylesheet, with uPlot inside', async () => {
    const js = await app.inject({ url: '/assets/app.js' })
    expect(js.statusCode).toBe(200)
    expect(js.headers['content-type']).toMatch(/javascript/)
    expect(js.body).toContain('/events')
    expect(js.body).not.toMatch(/from\s*["'](https?:)?\/\//)
    const css = await app.inject({ url: '/assets/app.css' })
    expect(css.statusCode).toBe(200)
    expect(css.headers['content-type']).toMatch(/^text\/css/)
    expect(css.body).toContain('.uplot')
    const licenses = await app.inject({ url: '/assets/third-party-licenses.txt' })
    expect(licenses.body).toContain('MIT')
  })

  it('leaves the API, its documentation and the 404 shape as they were', async () => {
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
    expect((await app.inject({ url: '/documentation/json' })).json()).toMatchObject({ openapi: expect.any(String) })
    const missing = await app.inject({ url: '/no-such-page' })
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toMatchObject({ code: 'ET_ROUTE_NOT_FOUND' })
    expect((await app.inject({ url: '/assets/missing.js' })).json()).toMatchObject({ code: 'ET_ROUTE_NOT_FOUND' })
  })

  it('leaves out WWW-Authenticate on a 401 only for the dashboard\'s own requests', async () => {
    const plain = await app.inject({ url: '/datafiles' })
    expect(plain.statusCode).toBe(401)
    expect(plain.headers['www-authenticate']).toMatch(/^Basic/)
    const fromDashboard = await app.inject({ url: '/datafiles', headers: { 'x-elastic-thought-client': 'dashboard', authorization: `Basic ${Buffer.from('nobody:wrong password').toString('base64')}` } })
    expect(fromDashboard.statusCode).toBe(401)
    expect(fromDashboard.headers['www-authenticate']).toBeUndefined()
    expect(fromDashboard.json()).toMatchObject({ code: 'ET_UNAUTHORIZED' })
  })

  it('answers 503 naming the build command when the dashboard was never built', async () => {
    const bare = await buildApp(t.deps.services, { registration: 'open', maxUploadBytes: 1024, logger: false, documentation: false, dashboard: { root: path.join(dir, 'not-built') } })
    try {
      const res = await bare.inject({ url: '/' })
      expect(res.statusCode).toBe(503)
      expect(res.body).toContain('npm run build')
      expect((await bare.inject({ url: '/health' })).statusCode).toBe(200)
    } finally {
      await bare.close()
    }
  })
})
