import { afterEach, describe, expect, it } from 'vitest'
import { InProcessScheduler } from '../../schedulers/in-process-scheduler.js'
import { InProcessSchedulerConfig } from '../../schedulers/scheduler-config.js'
import type { JobOutcome } from '../../schedulers/scheduler.js'
import { gate, sleep, waitFor } from './wait-for.js'

const done: JobOutcome = { kind: 'done' }

describe('InProcessScheduler', () => {
  const open: InProcessScheduler[] = []
  const create = (concurrency = 1): InProcessScheduler => {
    const s = new InProcessScheduler(InProcessSchedulerConfig.parse({ kind: 'in-process', concurrency, retryBaseMs: 20 }))
    open.push(s)
    return s
  }
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close()
  })

  it('coalesces copies of a job that is still waiting, and runs it once', async () => {
    const s = create()
    for (let i = 0; i < 5; i++) await s.schedule({ 'doc-id-to-process': 'same' })
    await s.schedule({ 'doc-id-to-process': 'other' })
    expect(s.stats()).toMatchObject({ scheduled: 6, coalesced: 4, queued: 2 })
    const seen: string[] = []
    s.startConsumer(async (msg) => {
      seen.push(msg['doc-id-to-process'])
      return done
    })
    await waitFor(() => seen.length === 2, 'both jobs')
    await sleep(20)
    expect(seen).toEqual(['same', 'other'])
  })

  it('does not coalesce with a copy that is already running: it may have read the document too early', async () => {
    const s = create()
    const release = gate()
    let runs = 0
    s.startConsumer(async () => {
      runs++
      if (runs === 1) await release.promise
      return done
    })
    await s.schedule({ 'doc-id-to-process': 'changing' })
    await waitFor(() => runs === 1, 'the first run')
    await s.schedule({ 'doc-id-to-process': 'changing' })
    expect(s.stats().queued).toBe(1)
    release.open()
    await waitFor(() => runs === 2, 'the second run')
  })

  it('a fresh schedule wakes a copy that waits out a retry delay, instead of joining its wait', async () => {
    const s = create()
    const runs: number[] = []
    s.startConsumer(async () => {
      runs.push(Date.now())
      // The first delivery asks to be retried much later, like a job whose input is not ready.
      return runs.length === 1 ? { kind: 'retry', delayMs: 60_000, reason: 'input not ready' } : done
    })
    await s.schedule({ 'doc-id-to-process': 'waiting' })
    await waitFor(() => runs.length === 1 && s.stats().delayed === 1, 'the retry delay to start')
    const woken = Date.now()
    await s.schedule({ 'doc-id-to-process': 'waiting' })
    await waitFor(() => runs.length === 2, 'the second run, long before the delay ends', 2000)
    expect((runs[1] ?? 0) - woken).toBeLessThan(1000)
    expect(s.stats()).toMatchObject({ delayed: 0, coalesced: 1 })
  })

  it('delivers in FIFO order with one worker', async () => {
    const s = create(1)
    const seen: string[] = []
    const ids = ['a', 'b', 'c', 'd', 'e']
    for (const id of ids) await s.schedule({ 'doc-id-to-process': id })
    s.startConsumer(async (msg) => {
      seen.push(msg['doc-id-to-process'])
      await sleep(1)
      return done
    })
    await waitFor(() => seen.length === ids.length, 'all jobs')
    expect(seen).toEqual(ids)
  })

  it('returns from schedule() before any handler code runs', async () => {
    const s = create()
    let entered = false
    s.startConsumer(async () => {
      entered = true
      return done
    })
    const scheduling = s.schedule({ 'doc-id-to-process': 'x' })
    expect(entered).toBe(false)
    await scheduling
    await waitFor(() => entered, 'the handler')
  })

  it('shares one queue between consumers without exceeding either bound', async () => {
    const s = create()
    const perConsumer = [0, 0]
    let running = 0
    let peak = 0
    const handler = (index: 0 | 1) => async (): Promise<JobOutcome> => {
      running++
      peak = Math.max(peak, running)
      perConsumer[index] = (perConsumer[index] ?? 0) + 1
      await sleep(10)
      running--
      return done
    }
    s.startConsumer(handler(0), { concurrency: 2 })
    s.startConsumer(handler(1), { concurrency: 1 })
    for (let i = 0; i < 30; i++) await s.schedule({ 'doc-id-to-process': `doc-${i}` })
    await waitFor(() => (perConsumer[0] ?? 0) + (perConsumer[1] ?? 0) === 30, 'all jobs')
    expect(peak).toBe(3)
    expect(perConsumer[0]).toBeGreaterThan(0)
    expect(perConsumer[1]).toBeGreaterThan(0)
  })
})
