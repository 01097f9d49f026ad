import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { ChangesFeed } from '../../src/changes/changes-feed.js'
import type { Change, ChangesFeedOptions } from '../../src/changes/changes-feed.js'
import { CouchDatabase } from '../../src/db/couch.js'
import type { TestDb } from '../jobs/life-cycle-fixtures.js'
import { openTestDb, sleep, testLogger, waitFor } from '../jobs/life-cycle-fixtures.js'
import { startTcpProxy } from './tcp-proxy.js'
import type { TcpProxy } from './tcp-proxy.js'

describe('changes feed against a real CouchDB-protocol server', () => {
  let db: TestDb
  const cleanups: Array<() => Promise<void>> = []
  beforeAll(async () => { db = await openTestDb() })
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn()
  })
  afterAll(async () => { await db.drop() })

  /** A feed over `couch` that records changes and live transitions. */
  const follow = (couch: CouchDatabase, options: Partial<ChangesFeedOptions> = {}): { feed: ChangesFeed, changes: Change[], live: boolean[] } => {
    const changes: Change[] = []
    const live: boolean[] = []
    const feed = new ChangesFeed(couch, {
      since: 'now',
      includeDocs: true,
      heartbeatMs: 100,
      logger: testLogger,
      onChange: (c) => changes.push(c),
      onLive: (l) => live.push(l),
      ...options
    })
    feed.start()
    cleanups.push(async () => { await feed.stop() })
    return { feed, changes, live }
  }

  /** The same database reached through a proxy the test can break. */
  const throughProxy = async (): Promise<{ proxy: TcpProxy, couch: CouchDatabase }> => {
    const proxy = await startTcpProxy(inject('couchUrl'))
    const couch = new CouchDatabase({ serverUrl: proxy.url, dbName: db.couch.name })
    cleanups.push(async () => { await couch.close(); await proxy.close() })
    return { proxy, couch }
  }

  const put = async (id: string): Promise<void> => { await db.couch.put({ _id: id, n: id }) }
  const ids = (changes: Change[], prefix: string): string[] => changes.map((c) => c.id).filter((id) => id.startsWith(prefix))

  it('delivers changes in order with their documents, from a given sequence', async () => {
    const { feed, changes } = follow(db.couch)
    await waitFor(() => feed.isLive, 'the feed to connect')
    for (let i = 0; i < 5; i++) await put(`order-${i}`)
    await waitFor(() => ids(changes, 'order-').length === 5, 'five changes')
    expect(ids(changes, 'order-')).toEqual(['order-0', 'order-1', 'order-2', 'order-3', 'order-4'])
    expect(changes.find((c) => c.id === 'order-2')?.doc).toMatchObject({ _id: 'order-2', n: 'order-2' })

    // A second feed from the sequence of order-2 sees only what came after it.
    const from = changes.find((c) => c.id === 'order-2')?.seq
    const later = follow(db.couch, { since: from, includeDocs: false })
    await waitFor(() => ids(later.changes, 'order-').length >= 2, 'the later changes')
    await sleep(100)
    expect(ids(later.changes, 'order-')).toEqual(['order-3', 'order-4'])
    expect(later.changes[0]?.doc).toBeUndefined()
    expect(later.feed.lastSeq).toEqual(changes.find((c) => c.id === 'order-4')?.seq)
  })

  it('stays connected while idle: the server’s heartbeats keep the watchdog quiet', async () => {
    const { proxy, couch } = await throughProxy()
    const { feed, live } = follow(couch)
    await waitFor(() => feed.isLive, 'the feed to connect')
    const connected = proxy.connections
    // Five watchdog periods (3 × 100 ms heartbeat) without a change.
    await sleep(1500)
    expect(live).toEqual([true])
    expect(proxy.connections).toBe(connected)
  })

  it('reconnects after the connection is cut and resumes where it was: nothing lost, nothing repeated', async () => {
    const { proxy, couch } = await throughProxy()
    const { feed, changes, live } = follow(couch)
    await waitFor(() => feed.isLive, 'the feed to connect')
    await put('cut-a')
    await waitFor(() => ids(changes, 'cut-').length === 1, 'the first change')
    proxy.refuse(true)
    proxy.cut()
    await waitFor(() => !feed.isLive, 'the feed to notice')
    // Written while the feed is away.
    await put('cut-b')
    await put('cut-c')
    await sleep(300)
    proxy.refuse(false)
    await waitFor(() => ids(changes, 'cut-').length === 3, 'the missed changes', 8000)
    await put('cut-d')
    await waitFor(() => ids(changes, 'cut-').length === 4, 'a change after the reconnect')
    await sleep(200)
    expect(ids(changes, 'cut-')).toEqual(['cut-a', 'cut-b', 'cut-c', 'cut-d'])
    expect(live[0]).toBe(true)
    expect(live).toContain(false)
    expect(live[live.length - 1]).toBe(true)
  })

  it('loses nothing when the first connection drops before any change arrived (since: now)', async () => {
    const { proxy, couch } = await throughProxy()
    const { feed, changes } = follow(couch, { since: 'now' })
    await waitFor(() => feed.isLive, 'the feed to connect')
    proxy.refuse(true)
    proxy.cut()
    await waitFor(() => !feed.isLive, 'the feed to notice')
    await put('early-a')
    proxy.refuse(false)
    await waitFor(() => ids(changes, 'early-').length === 1, 'the change made while the feed was away', 5000)
  })

  it('starts its backoff over once a connection has been healthy', async () => {
    const { proxy, couch } = await throughProxy()
    proxy.refuse(true)
    const { feed } = follow(couch)
    // Attempts at about 0, 0.25, 0.75 and 1.75 s: the next wait has grown to 2 s.
    await sleep(1900)
    proxy.refuse(false)
    await waitFor(() => feed.isLive, 'the feed to connect', 5000)
    await sleep(1100)
    proxy.cut()
    await waitFor(() => !feed.isLive, 'the feed to notice')
    const cutAt = Date.now()
    await waitFor(() => feed.isLive, 'the feed to reconnect', 5000)
    expect(Date.now() - cutAt).toBeLessThan(1000)
  })

  it('backs off while the database cannot be reached instead of hammering it', async () => {
    const { proxy, couch } = await throughProxy()
    proxy.refuse(true)
    const { feed } = follow(couch)
    await sleep(2000)
    // Backoff 0.25 + 0.5 + 1 s: four attempts in two seconds, not hundreds.
    expect(proxy.connections).toBeGreaterThanOrEqual(2)
    expect(proxy.connections).toBeLessThanOrEqual(6)
    expect(feed.isLive).toBe(false)
    proxy.refuse(false)
    await waitFor(() => feed.isLive, 'the feed to connect once the database is back', 5000)
  })

  it('treats a silent connection as dead after three missed heartbeats and reconnects', async () => {
    const { proxy, couch } = await throughProxy()
    const { feed, changes, live } = follow(couch)
    await waitFor(() => feed.isLive, 'the feed to connect')
    proxy.stall(true)
    const stalledAt = Date.now()
    await waitFor(() => !feed.isLive, 'the watchdog to fire', 3000)
    // Three heartbeats (300 ms) after the last one received, which came up to one heartbeat
    // before the stall: never sooner than 200 ms after it.
    expect(Date.now() - stalledAt).toBeGreaterThanOrEqual(195)
    await put('stall-a')
    proxy.stall(false)
    await waitFor(() => ids(changes, 'stall-').length === 1, 'the change made during the stall', 5000)
    expect(live).toEqual([true, false, true])
  })

  it('backs off when the server keeps ending the feed at once', async () => {
    // A server (or proxy) that answers every continuous feed with an immediate end.
    let requests = 0
    const server: Server = createServer((req, res) => {
      requests++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"last_seq":"7"}\n')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    const couch = new CouchDatabase({ serverUrl: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`, dbName: 'x' })
    cleanups.push(async () => { await couch.close(); await new Promise<void>((resolve) => server.close(() => resolve())) })
    const { feed } = follow(couch, { since: 0 })
    await sleep(1000)
    expect(requests).toBeGreaterThanOrEqual(2)
    expect(requests).toBeLessThanOrEqual(8)
    // It kept the position the server gave it.
    expect(feed.lastSeq).toBe('7')
  })

  it('stops promptly, even while waiting to reconnect', async () => {
    const { proxy, couch } = await throughProxy()
    proxy.refuse(true)
    const { feed } = follow(couch)
    // Refused attempts back off 0.25, 0.5, 1 then 2 s: at 1.9 s the feed is about 1.85 s away
    // from its next try, so a stop that waited for it could not pass the bound below, which
    // leaves room for a loaded CI machine.
    await sleep(1900)
    const started = Date.now()
    await feed.stop()
    expect(Date.now() - started).toBeLessThan(1000)
    const before = proxy.connections
    await sleep(600)
    expect(proxy.connections).toBe(before)
  })
})
