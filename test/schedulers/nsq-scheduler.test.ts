import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { NsqScheduler } from '../../schedulers/nsq-scheduler.js'
import { NsqSchedulerConfig } from '../../schedulers/scheduler-config.js'
import type { SchedulerConfigInput } from '../../schedulers/scheduler-config.js'
import type { JobOutcome } from '../../schedulers/scheduler.js'
import { UnavailableError } from '../../src/lib/errors.js'
import { NsqPeer } from '../helpers/nsq-peer.js'
import { NsqLookupdPeer } from '../helpers/nsqlookupd-peer.js'
import { sleep, waitFor } from './wait-for.js'

type NsqInput = Extract<SchedulerConfigInput, { kind: 'nsq' }>
const done: JobOutcome = { kind: 'done' }

describe('NsqScheduler (against the NSQ protocol test peer)', () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  const startPeer = async (): Promise<NsqPeer> => {
    const peer = await NsqPeer.start()
    cleanups.push(async () => await peer.stop())
    return peer
  }
  const scheduler = (input: Omit<NsqInput, 'kind'>): NsqScheduler => {
    const s = new NsqScheduler(NsqSchedulerConfig.parse({
      kind: 'nsq',
      msgTimeoutMs: 1_000,
      heartbeatIntervalMs: 1_000,
      discoveryIntervalMs: 1_000,
      retryBaseMs: 50,
      ...input
    }))
    cleanups.push(async () => await s.close())
    return s
  }

  it.each([
    { shape: 'nsqlookupd ≥ 1.0 {producers}', legacy: false },
    { shape: 'legacy {status_code, data: {producers}}', legacy: true }
  ])('discovers nsqd through lookupd ($shape)', async ({ legacy }) => {
    const peer = await startPeer()
    const lookupd = await NsqLookupdPeer.start({ producers: [peer], legacyResponses: legacy })
    cleanups.push(async () => await lookupd.stop())
    const producer = scheduler({ nsqd: [peer.address], lookupd: [] })
    await producer.schedule({ 'doc-id-to-process': 'found-by-lookup' })
    // The worker knows only lookupd (one address as host:port, one as a URL), not nsqd.
    const worker = scheduler({ nsqd: [], lookupd: [lookupd.address, `${lookupd.url}/lookup`] })
    const seen: string[] = []
    const consumer = worker.startConsumer(async (msg) => {
      seen.push(msg['doc-id-to-process'])
      return done
    })
    await consumer.ready
    await waitFor(() => peer.counters.finished === 1, 'the message via lookupd')
    expect(seen).toEqual(['found-by-lookup'])
    expect(lookupd.counters.lookups).toBeGreaterThanOrEqual(1)
  })

  it('TOUCHes a long-running handler so it is not redelivered, and answers heartbeats meanwhile', async () => {
    const peer = await startPeer()
    const s = scheduler({ nsqd: [peer.address] })
    let deliveries = 0
    const consumer = s.startConsumer(async () => {
      deliveries++
      await sleep(2_500)
      return done
    })
    await consumer.ready
    await s.schedule({ 'doc-id-to-process': 'long' })
    await waitFor(() => peer.counters.finished === 1, 'the FIN after 2.5 s', 5_000)
    expect(deliveries).toBe(1)
    expect(peer.counters.timedOut).toBe(0)
    expect(peer.counters.touched).toBeGreaterThanOrEqual(4)
    expect(peer.counters.heartbeatsSent).toBeGreaterThanOrEqual(2)
    expect(peer.counters.nopsReceived).toBeGreaterThanOrEqual(2)
    expect(peer.counters.heartbeatTimeouts).toBe(0)
  })

  it('without auto-touch, a handler that never touches is redelivered after the msg timeout; one that calls touch() is not', async () => {
    const peer = await startPeer()
    // Three slots: when 'silent' times out its first handler is still running, and the runtime
    // refuses deliveries beyond `concurrency` (the broker believes that slot is free again).
    // A 2 s timeout and a 3.2 s first run leave room for timers that slip on a loaded machine:
    // touches every 300 ms still land well inside each timeout window.
    const s = scheduler({ nsqd: [peer.address], autoTouch: false, concurrency: 3, msgTimeoutMs: 2_000 })
    const attempts: Record<string, number[]> = {}
    const consumer = s.startConsumer(async (msg, d) => {
      const id = msg['doc-id-to-process']
      ;(attempts[id] ??= []).push(d.attempts)
      const touching = id === 'touches' ? setInterval(() => d.touch(), 300) : undefined
      await sleep(d.attempts === 1 ? 3_200 : 10)
      clearInterval(touching)
      return done
    })
    await consumer.ready
    await s.schedule({ 'doc-id-to-process': 'silent' })
    await s.schedule({ 'doc-id-to-process': 'touches' })
    await waitFor(() => consumer.running === 0 && (attempts.silent?.length ?? 0) === 2, 'both handlers', 10_000)
    expect(attempts).toEqual({ silent: [1, 2], touches: [1] })
    expect(peer.counters.timedOut).toBe(1)
    // The late FIN of the timed-out delivery is refused by nsqd (E_FIN_FAILED), the redelivery's
    // is not. A handler counts as done when its FIN is written, not when the peer has read it.
    await waitFor(() => peer.counters.finished >= 2 && peer.counters.errorsSent >= 1, 'the FINs and the E_FIN_FAILED for the stale one')
    expect(peer.counters.finished).toBe(2)
    expect(peer.counters.errorsSent).toBe(1)
    expect(peer.clients().filter((c) => c.state === 'subscribed')).toHaveLength(1)
  })

  it('reconnects producer and consumer after nsqd restarts', async () => {
    const peer = await startPeer()
    const s = scheduler({ nsqd: [peer.address] })
    const seen: string[] = []
    const consumer = s.startConsumer(async (msg) => {
      seen.push(msg['doc-id-to-process'])
      return done
    })
    await consumer.ready
    await s.schedule({ 'doc-id-to-process': 'before' })
    // Wait for the FIN itself: a restart before it arrives would rightly redeliver 'before'.
    await waitFor(() => peer.counters.finished === 1, 'the first FIN')
    await peer.restart(100)
    await s.schedule({ 'doc-id-to-process': 'after' })
    await waitFor(() => seen.length === 2, 'the message published after the restart', 5_000)
    expect(seen).toEqual(['before', 'after'])
    expect(peer.clients().filter((c) => c.state === 'subscribed')).toHaveLength(1)
  })

  it('fails fast with a clear UnavailableError when nsqd is down, and recovers once it is up', async () => {
    const probe = net.createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const address = probe.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const s = scheduler({ nsqd: [`127.0.0.1:${address.port}`] })
    const t0 = performance.now()
    const err: unknown = await s.schedule({ 'doc-id-to-process': 'nowhere' }).catch((e: unknown) => e)
    expect(performance.now() - t0).toBeLessThan(1_000)
    expect(err).toBeInstanceOf(UnavailableError)
    expect(err).toMatchObject({ code: 'ET_UNAVAILABLE', statusCode: 503 })
    expect((err as Error).message).toContain(`nsqd 127.0.0.1:${address.port}`)
    expect((err as Error).message).toContain('ECONNREFUSED')

    const peer = await NsqPeer.start({ port: address.port })
    cleanups.push(async () => await peer.stop())
    await s.schedule({ 'doc-id-to-process': 'now-reachable' })
    expect(peer.counters.published).toBe(1)
  })

  it('falls back to the next nsqd when the first is unreachable', async () => {
    const peer = await startPeer()
    const s = scheduler({ nsqd: ['127.0.0.1:1', peer.address] })
    await s.schedule({ 'doc-id-to-process': 'fallback' })
    expect(peer.counters.published).toBe(1)
  })

  it('publishes every message over one long-lived connection', async () => {
    const peer = await startPeer()
    const s = scheduler({ nsqd: [peer.address] })
    await Promise.all(Array.from({ length: 20 }, async (_, i) => await s.schedule({ 'doc-id-to-process': `doc-${i}` })))
    expect(peer.counters.published).toBe(20)
    expect(peer.counters.connections).toBe(1)
    expect(peer.clients()[0]?.userAgent).toMatch(/^nsqjs\//)
  })

  it('tells the handler about attempts past maxAttempts instead of dropping the message (nsqjs would auto-FIN it)', async () => {
    const peer = await startPeer()
    const s = scheduler({ nsqd: [peer.address], maxAttempts: 2 })
    const seen: Array<[number, number | undefined]> = []
    const consumer = s.startConsumer(async (_msg, d) => {
      seen.push([d.attempts, d.maxAttempts])
      return d.attempts <= 2 ? { kind: 'retry', delayMs: 0, reason: 'not yet' } : done
    })
    await consumer.ready
    await s.schedule({ 'doc-id-to-process': 'stubborn' })
    await waitFor(() => peer.counters.finished === 1, 'the FIN on attempt 3')
    expect(seen).toEqual([[1, 2], [2, 2], [3, 2]])
    expect(peer.counters.requeued).toBe(2)
  })

  it('subscribes to the default topic and channel with RDY = concurrency, and leaves with RDY 0 then CLS', async () => {
    const peer = await startPeer()
    const s = scheduler({ nsqd: [peer.address], concurrency: 3, msgTimeoutMs: 4_000 })
    const consumer = s.startConsumer(async () => done)
    await consumer.ready
    await waitFor(() => peer.clients().some((c) => c.rdy === 3), 'RDY 3')
    expect(peer.channelNames('elastic-thought')).toEqual(['elastic-thought-worker'])
    expect(peer.clients()[0]).toMatchObject({ state: 'subscribed', msgTimeoutMs: 4_000, heartbeatIntervalMs: 1_000 })
    await consumer.close()
    await waitFor(() => peer.clientCount === 0, 'the consumer connection to close')
    const log = peer.commandLog
    expect(log.lastIndexOf('RDY 0')).toBeGreaterThan(log.indexOf('SUB elastic-thought elastic-thought-worker'))
    expect(log.at(-1)).toBe('CLS')
  })

  it('keeps the broker within RDY under load: no overflow requeues', async () => {
    const peer = await startPeer()
    const s = scheduler({ nsqd: [peer.address], concurrency: 3 })
    let handled = 0
    const consumer = s.startConsumer(async () => {
      await sleep(5)
      handled++
      return done
    })
    await consumer.ready
    for (let i = 0; i < 40; i++) await s.schedule({ 'doc-id-to-process': `doc-${i}` })
    await waitFor(() => handled === 40 && peer.counters.finished === 40, 'all forty')
    expect(peer.counters.maxClientInFlight).toBe(3)
    expect(peer.counters.requeued).toBe(0)
  })

  it('consumes from several nsqd at once and reports ready (the nsqjs Reader ready event stays silent then)', async () => {
    const a = await startPeer()
    const b = await startPeer()
    const worker = scheduler({ nsqd: [a.address, b.address], concurrency: 2 })
    const seen: string[] = []
    const consumer = worker.startConsumer(async (msg) => {
      seen.push(msg['doc-id-to-process'])
      return done
    })
    await consumer.ready
    a.publish('elastic-thought', JSON.stringify({ 'doc-id-to-process': 'from-a' }))
    b.publish('elastic-thought', JSON.stringify({ 'doc-id-to-process': 'from-b' }))
    await waitFor(() => seen.length === 2, 'a message from each nsqd')
    expect(seen.sort()).toEqual(['from-a', 'from-b'])
  })

  it('closes promptly a consumer that never reached nsqd, rejecting its ready promise', async () => {
    const peer = await startPeer()
    await peer.stop()
    const worker = scheduler({ nsqd: [peer.address] })
    const consumer = worker.startConsumer(async () => done)
    await sleep(50)
    const t0 = performance.now()
    await consumer.close({ graceMs: 5_000 })
    expect(performance.now() - t0).toBeLessThan(500)
    await expect(consumer.ready).rejects.toThrow('consumer closed before it subscribed')
  })
})
