import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { loggerOptions } from '../../src/lib/logger.js'
import { basic, signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'

describe('users and authentication', () => {
  let t: TestApp
  beforeAll(async () => { t = await startTestApp() })
  afterAll(async () => { await t.close() })

  it('stores a salted scrypt hash, never the password, and never returns the hash', async () => {
    const password = 'correct horse battery staple'
    const res = await t.app.inject({ method: 'POST', url: '/users', payload: { username: 'carol', email: 'carol@example.com', password } })
    expect(res.statusCode).toBe(201)
    expect(res.body).not.toContain('hash')
    expect(res.body).not.toContain(password)
    const raw = await t.deps.couch.get('user:carol') as Record<string, unknown>
    expect(JSON.stringify(raw)).not.toContain(password)
    expect(raw.password).toBeUndefined()
    expect(raw['password-hash']).toMatchObject({ algorithm: 'scrypt', N: 32768, r: 8, p: 1 })
    // Same password, another user: a different salt, so a different hash.
    await t.app.inject({ method: 'POST', url: '/users', payload: { username: 'dave', email: 'dave@example.com', password } })
    const other = await t.deps.couch.get('user:dave') as { 'password-hash': { salt: string, hash: string } }
    const mine = raw['password-hash'] as { salt: string, hash: string }
    expect(other['password-hash'].salt).not.toBe(mine.salt)
    expect(other['password-hash'].hash).not.toBe(mine.hash)
  })

  it('a cached verification stops working the moment the stored hash changes', async () => {
    const auth = await signUp(t.app, 'erin', 'first password 123')
    expect((await t.app.inject({ url: '/users/me', headers: { authorization: auth } })).statusCode).toBe(200)
    expect((await t.app.inject({ url: '/users/me', headers: { authorization: auth } })).statusCode).toBe(200)
    // Replace the hash behind the API's back (as a password change on another server would).
    const erin = await t.deps.couch.get('user:erin') as Record<string, unknown> & { _id: string }
    const other = await t.deps.couch.get('user:carol') as { 'password-hash': unknown }
    await t.deps.couch.put({ ...erin, 'password-hash': other['password-hash'] })
    let status = 0
    // The changes feed evicts the cached user document within a round trip.
    for (let i = 0; i < 50 && status !== 401; i++) {
      status = (await t.app.inject({ url: '/users/me', headers: { authorization: auth } })).statusCode
      if (status !== 401) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(status).toBe(401)
    expect((await t.app.inject({ url: '/users/me', headers: { authorization: basic('erin', 'correct horse battery staple') } })).statusCode).toBe(200)
  })

  it('an unknown user and a wrong password look the same', async () => {
    const unknown = await t.app.inject({ url: '/datafiles', headers: { authorization: basic('nobody', 'whatever pw 1') } })
    const wrong = await t.app.inject({ url: '/datafiles', headers: { authorization: basic('carol', 'whatever pw 1') } })
    expect(unknown.statusCode).toBe(401)
    expect(unknown.body).toBe(wrong.body)
  })

  it('never logs the password or the Authorization header', async () => {
    const lines: string[] = []
    const sink = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done() } })
    const logger = pino(loggerOptions('trace'), sink)
    const app = await buildApp(t.deps.services, { registration: 'open', maxUploadBytes: 1024, logger })
    const password = 'very secret password 42'
    await app.inject({ method: 'POST', url: '/users', payload: { username: 'frank', email: 'frank@example.com', password } })
    await app.inject({ url: '/users/me', headers: { authorization: basic('frank', password) } })
    await app.inject({ url: '/users/me', headers: { authorization: basic('frank', 'wrong wrong wrong') } })
    await app.close()
    const log = lines.join('')
    expect(lines.length).toBeGreaterThan(3)
    expect(log).not.toContain(password)
    expect(log).not.toContain(Buffer.from(`frank:${password}`).toString('base64'))
    expect(log).not.toContain('wrong wrong wrong')
  })

  it('username rules: 3–32 lowercase letters, digits, ".", "_", "-", starting with a letter or digit', async () => {
    const tryName = async (username: string) => (await t.app.inject({ method: 'POST', url: '/users', payload: { username, email: 'x@example.com', password: 'long enough pw' } })).statusCode
    expect(await tryName('ok.name_1-x')).toBe(201)
    for (const bad of ['ab', 'a'.repeat(33), 'Upper', '-dash', 'white space', 'user:colon', 'ünï', '../x']) {
      expect(await tryName(bad), bad).toBe(400)
    }
  })
})

describe('sign-in throttling', () => {
  let t: TestApp
  beforeAll(async () => { t = await startTestApp() })
  afterAll(async () => { await t.close() })
  const me = async (app: TestApp['app'], authorization: string, extra: { remoteAddress?: string, headers?: Record<string, string> } = {}) =>
    await app.inject({ url: '/users/me', headers: { authorization, ...extra.headers }, ...(extra.remoteAddress === undefined ? {} : { remoteAddress: extra.remoteAddress }) })

  it('after 10 failures for an account from one address answers 429 with Retry-After without checking; remembered sign-ins, other accounts and other addresses go on', async () => {
    const ivy = await signUp(t.app, 'ivy', 'ivy password 123')
    const jack = await signUp(t.app, 'jack', 'jack password 123')
    const lena = await signUp(t.app, 'lena', 'lena password 123')
    // Ivy signed in before: her verification is remembered. Jack never signed in.
    expect((await me(t.app, ivy)).statusCode).toBe(200)
    for (const name of ['ivy', 'jack']) {
      for (let i = 0; i < 10; i++) expect((await me(t.app, basic(name, `guess number ${i}`))).statusCode).toBe(401)
    }
    const refused = await me(t.app, basic('ivy', 'guess number 10'))
    expect(refused.statusCode).toBe(429)
    expect(refused.json()).toMatchObject({ code: 'ET_TOO_MANY_REQUESTS', message: expect.stringMatching(/^too many failed sign-ins for 'ivy' from this address; try again in \d+ s$/) })
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(800)
    // Jack's right password is refused as well: it is not even checked, so it could not pass.
    expect((await me(t.app, jack)).statusCode).toBe(429)
    // Ivy's was checked before and is remembered: no guess, no cost, so it goes through.
    expect((await me(t.app, ivy)).statusCode).toBe(200)
    expect((await me(t.app, lena)).statusCode).toBe(200)
    expect((await me(t.app, basic('jack', 'guess from elsewhere'), { remoteAddress: '10.1.2.3' })).statusCode).toBe(401)
    expect((await me(t.app, jack, { remoteAddress: '10.1.2.3' })).statusCode).toBe(200)
  })

  it('open registration: 20 accounts an hour from one address, then 429; other addresses go on', async () => {
    const signUpFrom = async (username: string, remoteAddress: string) => await t.app.inject({ method: 'POST', url: '/users', remoteAddress, payload: { username, email: `${username}@example.com`, password: 'long enough pw' } })
    for (let i = 0; i < 20; i++) expect((await signUpFrom(`bulk-${i}`, '192.0.2.50')).statusCode).toBe(201)
    const refused = await signUpFrom('bulk-20', '192.0.2.50')
    expect(refused.statusCode).toBe(429)
    expect(refused.json()).toMatchObject({ code: 'ET_TOO_MANY_REQUESTS', message: expect.stringMatching(/^too many accounts created from this address; try again in \d+ s$/) })
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(3000)
    // Nothing was written for the refused one.
    expect((await t.app.inject({ url: '/users/me', headers: { authorization: basic('bulk-20', 'long enough pw') }, remoteAddress: '192.0.2.51' })).statusCode).toBe(401)
    expect((await signUpFrom('bulk-21', '192.0.2.51')).statusCode).toBe(201)
  })

  it('counts the client behind a trusted proxy by X-Forwarded-For, and ignores that header from anyone else', async () => {
    await signUp(t.app, 'kate', 'kate password 123')
    const proxied = await buildApp(t.deps.services, { registration: 'open', maxUploadBytes: 1024, logger: false, trustProxy: ['127.0.0.1'] })
    try {
      for (let i = 0; i < 10; i++) expect((await me(proxied, basic('kate', `guess ${i}`), { headers: { 'x-forwarded-for': '203.0.113.7' } })).statusCode).toBe(401)
      expect((await me(proxied, basic('kate', 'guess 10'), { headers: { 'x-forwarded-for': '203.0.113.7' } })).statusCode).toBe(429)
      // Another client behind the same proxy is its own address.
      expect((await me(proxied, basic('kate', 'guess 11'), { headers: { 'x-forwarded-for': '203.0.113.8' } })).statusCode).toBe(401)
    } finally {
      await proxied.close()
    }
    // Not from a trusted proxy: rotating the header does not make a new client.
    for (let i = 0; i < 10; i++) expect((await me(t.app, basic('kate', `direct ${i}`), { remoteAddress: '198.51.100.1', headers: { 'x-forwarded-for': `203.0.113.${i}` } })).statusCode).toBe(401)
    expect((await me(t.app, basic('kate', 'direct 10'), { remoteAddress: '198.51.100.1', headers: { 'x-forwarded-for': '203.0.113.99' } })).statusCode).toBe(429)
  })
})

describe('closed registration', () => {
  let t: TestApp
  beforeAll(async () => { t = await startTestApp({ registration: 'closed', admin: { username: 'root', password: 'admin password 1' } }) })
  afterAll(async () => { await t.close() })

  it('only the configured admin may create users, and the admin owns no resources', async () => {
    const payload = { username: 'gina', email: 'gina@example.com', password: 'long enough pw' }
    expect((await t.app.inject({ method: 'POST', url: '/users', payload })).statusCode).toBe(401)
    expect((await t.app.inject({ method: 'POST', url: '/users', payload, headers: { authorization: basic('root', 'wrong password') } })).statusCode).toBe(401)
    const created = await t.app.inject({ method: 'POST', url: '/users', payload, headers: { authorization: basic('root', 'admin password 1') } })
    expect(created.statusCode).toBe(201)
    const asUser = await t.app.inject({ method: 'POST', url: '/users', payload: { ...payload, username: 'hank' }, headers: { authorization: basic('gina', 'long enough pw') } })
    expect(asUser.statusCode).toBe(403)
    const adminReads = await t.app.inject({ url: '/datafiles', headers: { authorization: basic('root', 'admin password 1') } })
    expect(adminReads.statusCode).toBe(403)
    expect((await t.app.inject({ method: 'POST', url: '/users', payload: { ...payload, username: 'root' }, headers: { authorization: basic('root', 'admin password 1') } })).statusCode).toBe(409)
  })
})
