import { afterEach, describe, expect, it } from 'vitest'
import type { JobMessage } from '../../models/job-message.js'
import { InProcessScheduler } from '../../schedulers/in-process-scheduler.js'
import { NsqScheduler } from '../../schedulers/nsq-scheduler.js'
import { InProcessSchedulerConfig, NsqSchedulerConfig } from '../../schedulers/scheduler-config.js'
import { SchedulerClosedError } from '../../schedulers/scheduler.js'
import type { Consumer, Delivery, JobOutcome, Scheduler } from '../../schedulers/scheduler.js'
import { NsqPeer } from '../helpers/nsq-peer.js'
import { gate, sleep, waitFor } from './wait-for.js'

/** What the suite needs from each backend beyond the Scheduler interface. */
interface Fixture {
  scheduler: Scheduler
  /** Puts an arbitrary body on the queue, bypassing schedule()'s validation. */
  publishRaw: (body: string) => Promise<void>
  /** Makes a consumer vanish without acknowledging what it holds. */
  crash: (consumer: Consumer) => Promise<void>
  /** Messages acknowledged (FIN) so far. */
  acked: () => number
  /** Messages handed back (REQ) so far. */
  requeued: () => number
  /** Messages neither acknowledged nor dropped: queued, delayed or in flight. */
  outstanding: () => number
  close: () => Promise<void>
}

interface Harness {
  name: string
  create: (concurrency: number) => Promise<Fixture>
}

const RETRY = { retryBaseMs: 50, retryMaxMs: 400, maxAttempts: 5 }
let topicSeq = 0

const harnesses: Harness[] = [
  {
    name: 'in-process',
    create: async (concurrency) => {
      const scheduler = new InProcessScheduler(InProcessSchedulerConfig.parse({ kind: 'in-process', concurrency, ...RETRY }))
      return {
        scheduler,
        publishRaw: async (body) => scheduler.publishRaw(body),
        // A real in-process crash loses the whole queue (the changes listener's sweep recovers
        // it); the closest observable analogue is a consumer that goes away with no grace.
        crash: async (consumer) => await consumer.close({ graceMs: 0 }),
        acked: () => scheduler.stats().finished,
        requeued: () => scheduler.stats().requeued,
        outstanding: () => {
          const s = scheduler.stats()
          return s.queued + s.delayed + (s.delivered - s.finished - s.requeued)
        },
        close: async () => await scheduler.close()
      }
    }
  },
  {
    name: 'nsq (against the NSQ protocol test peer)',
    create: async (concurrency) => {
      const peer = await NsqPeer.start()
      const topic = `conformance-${++topicSeq}`
      const scheduler = new NsqScheduler(NsqSchedulerConfig.parse({
        kind: 'nsq',
        nsqd: [peer.address],
        topic,
        concurrency,
        msgTimeoutMs: 1_000,
        heartbeatIntervalMs: 1_000,
        discoveryIntervalMs: 1_000,
        ...RETRY
      }))
      return {
        scheduler,
        publishRaw: async (body) => peer.publish(topic, body),
        // Cut the consumer's sockets from the nsqd side, as a killed worker would leave them.
        crash: async (consumer) => {
          peer.dropClients((c) => c.channel !== undefined)
          await consumer.close({ graceMs: 0 })
        },
        acked: () => peer.counters.finished,
        requeued: () => peer.counters.requeued,
        outstanding: () => peer.depth(topic) + peer.inFlight(topic),
        close: async () => {
          await scheduler.close()
          await waitFor(() => peer.clientCount === 0, 'all nsqd connections closed', 2_000)
          await peer.stop()
        }
      }
    }
  }
]

const job = (id: string): JobMessage => ({ 'doc-id-to-process': id })
const done: JobOutcome = { kind: 'done' }

/** Resolves when the signal aborts. */
const aborted = async (signal: AbortSignal): Promise<void> => await new Promise((resolve) => {
  if (signal.aborted) resolve()
  else signal.addEventListener('abort', () => resolve(), { once: true })
})

describe.each(harnesses)('Scheduler conformance: $name', (harness) => {
  const fixtures: Fixture[] = []
  const open = async (concurrency = 1): Promise<Fixture> => {
    const f = await harness.create(concurrency)
    fixtures.push(f)
    return f
  }

  afterEach(async () => {
    for (const f of fixtures.splice(0)) await f.close()
  })

  it('delivers a scheduled message once, with attempts 1, and acknowledges it', async () => {
    const f = await open()
    const seen: Array<{ msg: JobMessage, attempts: number, maxAttempts: number | undefined }> = []
    const consumer = f.scheduler.startConsumer(async (msg, d) => {
      seen.push({ msg, attempts: d.attempts, maxAttempts: d.maxAttempts })
      return done
    })
    await consumer.ready
    await f.scheduler.schedule(job('doc-1'))
    await waitFor(() => f.acked() === 1, 'the FIN')
    await sleep(50)
    expect(seen).toEqual([{ msg: { 'doc-id-to-process': 'doc-1' }, attempts: 1, maxAttempts: 5 }])
    expect(f.outstanding()).toBe(0)
  })

  it('never runs more than `concurrency` handlers at once, and does reach it', async () => {
    const f = await open(3)
    let running = 0
    let peak = 0
    let finished = 0
    const consumer = f.scheduler.startConsumer(async () => {
      running++
      peak = Math.max(peak, running)
      await sleep(40)
      running--
      finished++
      return done
    })
    await consumer.ready
    for (let i = 0; i < 12; i++) await f.scheduler.schedule(job(`doc-${i}`))
    await waitFor(() => finished === 12, 'all twelve jobs')
    expect(peak).toBe(3)
  })

  it('redelivers a `retry` with attempts + 1 no sooner than its delay (milliseconds, not seconds)', async () => {
    const f = await open()
    const times: number[] = []
    const attempts: number[] = []
    const consumer = f.scheduler.startConsumer(async (_msg, d) => {
      times.push(performance.now())
      attempts.push(d.attempts)
      return d.attempts === 1 ? { kind: 'retry', delayMs: 300, reason: 'datafile not ready' } : done
    })
    await consumer.ready
    await f.scheduler.schedule(job('doc-retry'))
    await waitFor(() => attempts.length === 2 && f.acked() === 1, 'the redelivery')
    const gap = (times[1] ?? 0) - (times[0] ?? 0)
    expect(attempts).toEqual([1, 2])
    expect(gap).toBeGreaterThanOrEqual(290)
    expect(gap).toBeLessThan(3_000)
  })

  it('retries a handler that throws, with exponential backoff', async () => {
    const f = await open()
    const times: number[] = []
    const consumer = f.scheduler.startConsumer(async (_msg, d) => {
      times.push(performance.now())
      if (d.attempts < 3) throw new Error(`transient failure ${d.attempts}`)
      return done
    })
    await consumer.ready
    await f.scheduler.schedule(job('doc-throws'))
    await waitFor(() => times.length === 3 && f.acked() === 1, 'three attempts')
    const [t1 = 0, t2 = 0, t3 = 0] = times
    expect(t2 - t1).toBeGreaterThanOrEqual(45)
    expect(t3 - t2).toBeGreaterThanOrEqual(95)
  })

  it('treats a handler that returns no valid outcome as a failure and retries it', async () => {
    const f = await open()
    const attempts: number[] = []
    const consumer = f.scheduler.startConsumer(async (_msg, d) => {
      attempts.push(d.attempts)
      // Simulates untyped code returning garbage.
      return (d.attempts === 1 ? undefined : done) as unknown as JobOutcome
    })
    await consumer.ready
    await f.scheduler.schedule(job('doc-bad-outcome'))
    await waitFor(() => f.acked() === 1, 'the eventual FIN')
    expect(attempts).toEqual([1, 2])
  })

  it('acknowledges only after the handler resolves: a consumer that dies mid-job loses nothing', async () => {
    const f = await open()
    const started = gate()
    const release = gate()
    const first = f.scheduler.startConsumer(async (_msg, d) => {
      started.open()
      await Promise.race([release.promise, aborted(d.signal)])
      return done
    })
    await first.ready
    await f.scheduler.schedule(job('doc-crash'))
    await started.promise
    await sleep(100)
    expect(f.acked()).toBe(0)
    await f.crash(first)
    release.open()
    await sleep(20)
    expect(f.acked()).toBe(0)

    const redelivered: number[] = []
    const second = f.scheduler.startConsumer(async (msg, d) => {
      expect(msg['doc-id-to-process']).toBe('doc-crash')
      redelivered.push(d.attempts)
      return done
    })
    await second.ready
    await waitFor(() => f.acked() === 1, 'redelivery to the second consumer')
    expect(redelivered).toEqual([2])
  })

  it('drops bodies that are not job messages without crashing the consumer', async () => {
    const f = await open()
    const handled: string[] = []
    const consumer = f.scheduler.startConsumer(async (msg) => {
      handled.push(msg['doc-id-to-process'])
      return done
    })
    await consumer.ready
    for (const body of ['not json', '[]', '{"doc-id-to-process":""}', '{"doc-id-to-process":"x","extra":1}', '{"other":"y"}']) {
      await f.publishRaw(body)
    }
    await f.scheduler.schedule(job('doc-valid'))
    await waitFor(() => handled.length === 1 && f.acked() === 6, 'the valid job and five dropped bodies')
    expect(handled).toEqual(['doc-valid'])
    expect(f.outstanding()).toBe(0)
  })

  it('rejects an invalid message at schedule() time', async () => {
    const f = await open()
    await expect(f.scheduler.schedule({ 'doc-id-to-process': '' })).rejects.toMatchObject({ code: 'ET_VALIDATION' })
  })

  it('close() with a grace period lets a running handler finish and acknowledges it', async () => {
    const f = await open()
    const started = gate()
    const release = gate()
    let signal: AbortSignal | undefined
    const consumer = f.scheduler.startConsumer(async (_msg, d) => {
      signal = d.signal
      started.open()
      await release.promise
      return done
    })
    await consumer.ready
    await f.scheduler.schedule(job('doc-graceful'))
    await started.promise
    let closed = false
    const closing = consumer.close({ graceMs: 5_000 }).then(() => { closed = true })
    // Still waiting for the handler, which has not been told to stop.
    await sleep(150)
    expect(closed).toBe(false)
    expect(signal?.aborted).toBe(false)
    release.open()
    await closing
    expect(signal?.aborted).toBe(false)
    await waitFor(() => f.acked() === 1, 'the FIN sent during close')
    expect(consumer.running).toBe(0)
  })

  it('close() past the grace period aborts the handler signal and requeues its message', async () => {
    const f = await open()
    const started = gate()
    let reason: unknown
    const consumer = f.scheduler.startConsumer(async (_msg, d) => {
      started.open()
      await aborted(d.signal)
      reason = d.signal.reason
      return done
    })
    await consumer.ready
    await f.scheduler.schedule(job('doc-slow'))
    await started.promise
    const t0 = performance.now()
    const closing = consumer.close({ graceMs: 100 })
    expect(consumer.close({ graceMs: 5_000 })).toBe(closing)
    await closing
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95)
    expect(reason).toMatchObject({ name: 'AbortError' })
    expect(f.acked()).toBe(0)
    // Handed back explicitly, not left to time out at the broker.
    await waitFor(() => f.requeued() === 1, 'the REQ of the released message', 500)

    const attempts: number[] = []
    const next = f.scheduler.startConsumer(async (_msg, d) => {
      attempts.push(d.attempts)
      return done
    })
    await next.ready
    await waitFor(() => f.acked() === 1, 'the released message on a new consumer')
    expect(attempts).toEqual([2])
  })

  it('stops taking new messages as soon as close() starts', async () => {
    const f = await open(1)
    const started = gate()
    const handled: string[] = []
    const consumer = f.scheduler.startConsumer(async (msg) => {
      handled.push(msg['doc-id-to-process'])
      started.open()
      await sleep(200)
      return done
    })
    await consumer.ready
    await f.scheduler.schedule(job('doc-a'))
    await started.promise
    const closing = consumer.close({ graceMs: 2_000 })
    await f.scheduler.schedule(job('doc-b'))
    await closing
    expect(handled).toEqual(['doc-a'])
    expect(f.acked()).toBe(1)
    expect(f.outstanding()).toBe(1)
  })

  it('delivers duplicates, which a claim step makes harmless', async () => {
    const f = await open(2)
    const claimed = new Set<string>()
    let runs = 0
    let deliveries = 0
    const consumer = f.scheduler.startConsumer(async (msg) => {
      deliveries++
      const id = msg['doc-id-to-process']
      if (claimed.has(id)) return done
      claimed.add(id)
      runs++
      await sleep(30)
      return done
    })
    await consumer.ready
    for (let i = 0; i < 3; i++) await f.scheduler.schedule(job('doc-dup'))
    await waitFor(() => f.outstanding() === 0 && consumer.running === 0 && deliveries >= 1, 'all copies handled')
    await sleep(50)
    expect(runs).toBe(1)
    expect(f.acked()).toBe(deliveries)
  })

  it('schedule() does not wait for running work', async () => {
    const f = await open(1)
    const release = gate()
    const started = gate()
    const consumer = f.scheduler.startConsumer(async (_msg, d) => {
      started.open()
      await Promise.race([release.promise, aborted(d.signal)])
      return done
    })
    await consumer.ready
    await f.scheduler.schedule(job('doc-long'))
    await started.promise
    const t0 = performance.now()
    for (let i = 0; i < 5; i++) await f.scheduler.schedule(job(`doc-next-${i}`))
    expect(performance.now() - t0).toBeLessThan(500)
    release.open()
  })

  it('closes the consumer when its signal aborts, and Scheduler.close() refuses further use', async () => {
    const f = await open()
    const controller = new AbortController()
    const consumer = f.scheduler.startConsumer(async () => done, { signal: controller.signal, graceMs: 0 })
    await consumer.ready
    controller.abort()
    await consumer.close()
    await f.scheduler.close()
    await expect(f.scheduler.schedule(job('late'))).rejects.toBeInstanceOf(SchedulerClosedError)
    expect(() => f.scheduler.startConsumer(async () => done)).toThrow(SchedulerClosedError)
  })

  it('moves a few hundred messages quickly (throughput sanity)', async () => {
    const f = await open(4)
    const count = 300
    let handled = 0
    const consumer = f.scheduler.startConsumer(async (_msg: JobMessage, _d: Delivery) => {
      handled++
      return done
    })
    await consumer.ready
    const t0 = performance.now()
    for (let i = 0; i < count; i++) await f.scheduler.schedule(job(`doc-${i}`))
    await waitFor(() => handled === count && f.acked() === count, 'every message', 10_000)
    const ms = performance.now() - t0
    expect(ms).toBeLessThan(5_000)
    console.info(`[${harness.name}] ${count} messages scheduled and handled in ${ms.toFixed(0)} ms (${(count / ms * 1000).toFixed(0)}/s)`)
  })
})
