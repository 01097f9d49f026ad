import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { createChangeHub } from '../../src/services/change-hub.js'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'

interface Frame { event: string, data: string, comment: boolean, id?: string }

/** A raw reader of one text/event-stream response: frames as they arrive, split on blank lines. */
class StreamReader {
  readonly frames: Frame[] = []
  readonly status: number
  readonly headers: Headers
  private readonly controller: AbortController
  private waiters: Array<() => void> = []
  ended = false

  private constructor (res: Response, controller: AbortController) {
    this.status = res.status
    this.headers = res.headers
    this.controller = controller
    if (res.body !== null) this.pump(res.body).catch(() => {})
  }

  static async open (base: string, auth: string | undefined, lastEventId?: string): Promise<StreamReader> {
    const controller = new AbortController()
    const headers: Record<string, string> = {}
    if (auth !== undefined) headers.authorization = auth
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId
    const res = await fetch(`${base}/events`, { headers, signal: controller.signal })
    return new StreamReader(res, controller)
  }

  /** The id a client would send back: that of the last frame that had one. */
  get lastEventId (): string | undefined {
    return this.frames.findLast((f) => f.id !== undefined)?.id
  }

  private async pump (body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const lines = block.split('\n')
          const comment = lines.every((line) => line.startsWith(':'))
          const event = lines.find((line) => line.startsWith('event: '))?.slice(7) ?? 'message'
          const data = lines.filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n')
          const id = lines.find((line) => line.startsWith('id: '))?.slice(4)
          this.frames.push({ event, data, comment, ...(id === undefined ? {} : { id }) })
        }
        this.wake()
      }
    } finally {
      this.ended = true
      this.wake()
    }
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  /** Resolves with the first frame matching `test`, or rejects after `ms`. */
  async next (test: (frame: Frame) => boolean, ms = 5000): Promise<Frame> {
    const deadline = Date.now() + ms
    for (;;) {
      const found = this.frames.find(test)
      if (found !== undefined) return found
      if (this.ended) throw new Error('stream ended')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no matching frame within ${ms} ms; got ${JSON.stringify(this.frames)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  changes (): Array<{ id: string, type: string, state: string | null, deleted: boolean, doc: Record<string, unknown> | null }> {
    return this.frames.filter((f) => f.event === 'change').map((f) => JSON.parse(f.data))
  }

  close (): void {
    this.controller.abort()
  }
}

async function waitFor (check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('GET /events', () => {
  let t: TestApp
  let base: string
  let alice: string
  let bob: string

  beforeAll(async () => {
    t = await startTestApp()
    await t.app.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
    alice = await signUp(t.app, 'alice')
    bob = await signUp(t.app, 'bob')
  })
  afterAll(async () => { await t.close() })

  it('requires authentication', async () => {
    const res = await fetch(`${base}/events`)
    expect(res.status).toBe(401)
    expect(await res.json()).toMatchObject({ code: 'ET_UNAUTHORIZED' })
  })

  it('streams the caller\'s own changes, with the document as the API shows it, and never another tenant\'s', async () => {
    const a = await StreamReader.open(base, alice)
    const b = await StreamReader.open(base, bob)
    try {
      expect(a.status).toBe(200)
      expect(a.headers.get('content-type')).toMatch(/^text\/event-stream/)
      const ready = await a.next((f) => f.event === 'ready')
      expect(JSON.parse(ready.data)['heartbeat-ms']).toBe(15_000)
      await b.next((f) => f.event === 'ready')

      const created = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: alice }, payload: { url: 'https://example.com/a.tar.gz', name: 'alice-data' } })
      expect(created.statusCode).toBe(201)
      const aliceId: string = created.json().id
      const change = await a.next((f) => f.event === 'change' && JSON.parse(f.data).id === aliceId)
      const event = JSON.parse(change.data)
      expect(event).toMatchObject({ id: aliceId, type: 'datafile', state: 'pending', deleted: false })
      expect(event.doc).toMatchObject({ id: aliceId, _id: aliceId, name: 'alice-data', 'user-id': 'user:alice', 'processing-state': 'pending' })
      // The same shape GET shows.
      const shown = (await t.app.inject({ url: `/datafiles/${aliceId}`, headers: { authorization: alice } })).json()
      expect(Object.keys(event.doc).sort()).toEqual(Object.keys(shown).sort())

      // Bob's own change reaches Bob after Alice's was published, so had Alice's been sent to
      // him it would already be in his stream.
      const bobs = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: bob }, payload: { url: 'https://example.com/b.tar.gz' } })
      const bobId: string = bobs.json().id
      await b.next((f) => f.event === 'change' && JSON.parse(f.data).id === bobId)
      expect(b.changes().map((c) => c.id)).not.toContain(aliceId)
      expect(b.changes().every((c) => c.doc?.['user-id'] === 'user:bob')).toBe(true)
      expect(a.changes().map((c) => c.id)).not.toContain(bobId)

      // A deletion carries no owner in the database; it still reaches only the owner.
      const deleted = await t.app.inject({ method: 'DELETE', url: `/datafiles/${aliceId}`, headers: { authorization: alice } })
      expect(deleted.statusCode).toBe(204)
      const gone = await a.next((f) => f.event === 'change' && JSON.parse(f.data).deleted === true)
      expect(JSON.parse(gone.data)).toEqual({ id: aliceId, type: 'datafile', state: null, deleted: true, doc: null })
      await t.app.inject({ method: 'DELETE', url: `/datafiles/${bobId}`, headers: { authorization: bob } })
      await b.next((f) => f.event === 'change' && JSON.parse(f.data).deleted === true)
      expect(b.changes().filter((c) => c.deleted).map((c) => c.id)).toEqual([bobId])
    } finally {
      a.close()
      b.close()
    }
  })

  it('never sends user documents (password hashes), even the caller\'s own', async () => {
    const a = await StreamReader.open(base, alice)
    try {
      await a.next((f) => f.event === 'ready')
      await signUp(t.app, 'carol')
      // A later change of Alice's proves the user document had its chance to arrive first.
      const res = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: alice }, payload: { url: 'https://example.com/c.tar.gz' } })
      await a.next((f) => f.event === 'change' && JSON.parse(f.data).id === res.json().id)
      expect(a.frames.some((f) => f.data.includes('user:carol') || f.data.includes('scrypt'))).toBe(false)
    } finally {
      a.close()
    }
  })

  it('cleans up when the client disconnects', async () => {
    const hub = t.deps.services.changeHub
    // The streams the earlier tests closed are gone too.
    await waitFor(() => hub.stats.subscribers === 0)
    const a = await StreamReader.open(base, alice)
    await a.next((f) => f.event === 'ready')
    expect(hub.stats.subscribers).toBe(1)
    a.close()
    await waitFor(() => hub.stats.subscribers === 0)
    expect(hub.stats.dropped).toBe(0)
  })

  it('resumes from Last-Event-ID: the changes missed while away, latest state once per document, none of another tenant\'s', async () => {
    const post = async (auth: string, name: string): Promise<string> => {
      const res = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth }, payload: { url: 'https://example.com/r.tar.gz', name } })
      expect(res.statusCode).toBe(201)
      return res.json().id
    }
    const first = await StreamReader.open(base, alice)
    const ready = await first.next((f) => f.event === 'ready')
    expect(JSON.parse(ready.data)).toEqual({ 'heartbeat-ms': 15_000, resumed: false })
    // A fresh stream's ready frame already has an id, so even a client that saw no change can resume.
    expect(ready.id).toMatch(/^\S+$/)
    const before = await post(alice, 'seen')
    await first.next((f) => f.event === 'change' && JSON.parse(f.data).id === before)
    const last = first.lastEventId
    first.close()

    // While away: a new document, a second change to it (a worker taking it), and one of Bob's.
    const missed = await post(alice, 'missed')
    const raw = await t.deps.documents.read(missed) as Record<string, unknown> & { _id: string }
    await t.deps.documents.write({ ...raw, 'processing-state': 'processing' })
    const other = await post(alice, 'other')
    const bobs = await post(bob, 'bobs')

    const again = await StreamReader.open(base, alice, last)
    try {
      const resumed = await again.next((f) => f.event === 'ready')
      expect(JSON.parse(resumed.data)).toEqual({ 'heartbeat-ms': 15_000, resumed: true })
      await again.next(() => again.changes().some((c) => c.id === other))
      const replayed = again.changes()
      expect(replayed.map((c) => c.id)).toEqual([missed, other])
      expect(replayed[0]?.state).toBe('processing')
      expect(replayed.map((c) => c.id)).not.toContain(bobs)
      expect(replayed.map((c) => c.id)).not.toContain(before)
      // Then live as usual, with the resume position moving on.
      const live = await post(alice, 'live')
      await again.next((f) => f.event === 'change' && JSON.parse(f.data).id === live)
      expect(again.lastEventId).not.toBe(last)
    } finally {
      again.close()
    }
    // A client that saw nothing but the ready frame resumes from its id.
    const quiet = await StreamReader.open(base, bob)
    const quietReady = await quiet.next((f) => f.event === 'ready')
    quiet.close()
    const whileQuiet = await post(bob, 'while-quiet')
    const back = await StreamReader.open(base, bob, quietReady.id)
    try {
      expect(JSON.parse((await back.next((f) => f.event === 'ready')).data).resumed).toBe(true)
      await back.next((f) => f.event === 'change')
      expect(back.changes().map((c) => c.id)).toEqual([whileQuiet])
    } finally {
      back.close()
    }
  })

  it('asks the client to reload when it is too far behind, and refuses a malformed Last-Event-ID', async () => {
    const hub = createChangeHub({ history: { position: async () => await t.deps.couch.updateSeq(), read: async (since, limit) => await t.deps.couch.changesSince(since, limit) }, maxReplay: 3 })
    const app = await buildApp({ ...t.deps.services, changeHub: hub }, { registration: 'open', maxUploadBytes: 1024, logger: false, documentation: false, dashboard: false })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const own = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    try {
      const s = await StreamReader.open(own, alice)
      const ready = await s.next((f) => f.event === 'ready')
      s.close()
      for (let i = 0; i < 5; i++) {
        const res = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: alice }, payload: { url: 'https://example.com/r.tar.gz' } })
        expect(res.statusCode).toBe(201)
      }
      const behind = await StreamReader.open(own, alice, ready.id)
      try {
        const reload = await behind.next((f) => f.event === 'ready')
        expect(JSON.parse(reload.data).resumed).toBe(false)
        // A fresh position to resume from next time, past the changes it was told to reload.
        expect(reload.id).toBeDefined()
        expect(reload.id).not.toBe(ready.id)
        expect(behind.changes()).toEqual([])
      } finally {
        behind.close()
      }
      const bad = await fetch(`${own}/events`, { headers: { authorization: alice, 'last-event-id': 'has spaces in it' } })
      expect(bad.status).toBe(400)
      expect(await bad.json()).toMatchObject({ code: 'ET_VALIDATION', message: expect.stringContaining('last-event-id') })
    } finally {
      hub.close()
      await app.close()
    }
  })

  it('sends a heartbeat comment when idle, and server close ends open streams', async () => {
    // Its own app over the same services, with a hub beating every 100 ms.
    const hub = createChangeHub({ heartbeatMs: 100 })
    const app = await buildApp({ ...t.deps.services, changeHub: hub }, { registration: 'open', maxUploadBytes: 1024, logger: false, documentation: false, dashboard: false })
    await app.listen({ host: '127.0.0.1', port: 0 })
    // The hub beats on one timer for all streams, so the first beat may come at any moment after
    // subscribing; only the spacing between beats is fixed. Three beats, all sent after `opened`,
    // span two intervals (less a millisecond of timer rounding each).
    const opened = Date.now()
    const s = await StreamReader.open(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, alice)
    try {
      await s.next((f) => f.event === 'ready')
      await s.next(() => s.frames.filter((g) => g.comment).length >= 3)
      expect(Date.now() - opened).toBeGreaterThanOrEqual(198)
      expect(s.frames.find((f) => f.comment)).toEqual({ event: 'message', data: '', comment: true })
      const closing = Date.now()
      await app.close()
      expect(Date.now() - closing).toBeLessThan(2000)
      await waitFor(() => s.ended)
      expect(hub.stats.subscribers).toBe(0)
    } finally {
      s.close()
      hub.close()
      await app.close()
    }
  })

  it('drops a client that stops reading once its unsent output passes the bound, and keeps one that reads', async () => {
    const hub = createChangeHub({ maxPendingBytes: 256 * 1024 })
    const app = await buildApp({ ...t.deps.services, changeHub: hub }, { registration: 'open', maxUploadBytes: 1024, logger: false, documentation: false, dashboard: false })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const reader = await StreamReader.open(`http://127.0.0.1:${port}`, alice)
    // A raw client that sends its request and then never reads: the kernel's socket buffers
    // fill first, then the response's own buffer grows.
    const socket = connect(port, '127.0.0.1')
    socket.pause()
    const closed = new Promise<void>((resolve) => { socket.once('close', () => { resolve() }) })
    socket.on('error', () => {})
    socket.write(`GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: ${alice}\r\n\r\n`)
    try {
      await waitFor(() => hub.stats.subscribers === 2)
      const now = new Date().toISOString()
      const doc = { _id: 'big', type: 'datafile', 'user-id': 'user:alice', 'created-at': now, 'updated-at': now, 'processing-state': 'processing', 'processing-log': 'x'.repeat(16_000), url: null }
      let sent = 0
      while (hub.stats.dropped === 0 && sent < 5000) {
        hub.publish({ seq: sent, id: 'big', doc })
        sent++
        // One change per turn of the event loop, as a live feed delivers them.
        await new Promise((resolve) => setImmediate(resolve))
      }
      expect(hub.stats).toEqual({ subscribers: 1, dropped: 1 })
      // The stalled client was given more than the bound (the kernel took some) before the cut.
      expect(sent * 16_000).toBeGreaterThan(256 * 1024)
      // Reading again, the stalled client finds its connection cut.
      socket.resume()
      await closed
      // The reading client got every change.
      await waitFor(() => reader.changes().length === sent, 10_000)
    } finally {
      socket.destroy()
      reader.close()
      hub.close()
      await app.close()
    }
  })

  it('refuses more than the per-user number of open streams with 429', async () => {
    const hub = createChangeHub({ maxPerTenant: 2 })
    const app = await buildApp({ ...t.deps.services, changeHub: hub }, { registration: 'open', maxUploadBytes: 1024, logger: false, documentation: false, dashboard: false })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const open = [await StreamReader.open(url, alice), await StreamReader.open(url, alice)]
    try {
      const third = await fetch(`${url}/events`, { headers: { authorization: alice } })
      expect(third.status).toBe(429)
      expect(await third.json()).toMatchObject({ code: 'ET_TOO_MANY_STREAMS' })
      // Another user is not affected by Alice's streams.
      const other = await StreamReader.open(url, bob)
      open.push(other)
      expect(other.status).toBe(200)
    } finally {
      for (const s of open) s.close()
      hub.close()
      await app.close()
    }
  })
})
