import { Writable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { backoffDelayMs } from '../../schedulers/consumer-runtime.js'
import { createScheduler, SchedulerConfig } from '../../schedulers/index.js'
import type { SchedulerLogger } from '../../schedulers/index.js'
import { InProcessScheduler } from '../../schedulers/in-process-scheduler.js'
import { NsqScheduler } from '../../schedulers/nsq-scheduler.js'
import { waitFor } from './wait-for.js'

describe('SchedulerConfig', () => {
  it('fills the documented defaults', () => {
    expect(SchedulerConfig.parse({ kind: 'in-process' })).toMatchObject({ kind: 'in-process', concurrency: 1, maxAttempts: 0 })
    expect(SchedulerConfig.parse({ kind: 'nsq' })).toMatchObject({
      kind: 'nsq',
      nsqd: ['127.0.0.1:4150'],
      lookupd: [],
      topic: 'elastic-thought',
      channel: 'elastic-thought-worker',
      concurrency: 1,
      maxAttempts: 5,
      msgTimeoutMs: 60_000,
      autoTouch: true
    })
  })

  it('accepts lookupd as host:port or http(s) URL and rejects what nsqd would refuse, with the issue path', () => {
    expect(SchedulerConfig.parse({ kind: 'nsq', lookupd: ['nsqlookupd:4161', 'https://lookup.example/lookup'] })).toBeTruthy()
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ kind: 'nsq', topic: 'bad topic' }, 'topic'],
      [{ kind: 'nsq', channel: 'x'.repeat(65) }, 'channel'],
      [{ kind: 'nsq', nsqd: ['no-port'] }, 'nsqd.0'],
      [{ kind: 'nsq', lookupd: ['ftp://x:1'] }, 'lookupd.0'],
      [{ kind: 'nsq', msgTimeoutMs: 500 }, 'msgTimeoutMs'],
      [{ kind: 'nsq', nsqd: [], lookupd: [] }, 'nsqd'],
      [{ kind: 'in-process', concurrency: 0 }, 'concurrency'],
      [{ kind: 'in-process', nsqd: ['a:1'] }, ''],
      [{ kind: 'rabbit' }, 'kind']
    ]
    for (const [input, path] of cases) {
      const result = SchedulerConfig.safeParse(input)
      expect(result.success, JSON.stringify(input)).toBe(false)
      expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(path)
    }
  })
})

describe('createScheduler', () => {
  it('builds the implementation named by kind', async () => {
    const a = createScheduler(SchedulerConfig.parse({ kind: 'in-process' }))
    const b = createScheduler(SchedulerConfig.parse({ kind: 'nsq' }))
    expect(a).toBeInstanceOf(InProcessScheduler)
    expect(b).toBeInstanceOf(NsqScheduler)
    expect([a.kind, b.kind]).toEqual(['in-process', 'nsq'])
    await Promise.all([a.close(), b.close()])
  })

  it('logs through a pino logger: a dropped garbage body is a warn line with its reason', async () => {
    const lines: Array<Record<string, unknown>> = []
    const sink = new Writable({
      write (chunk: Buffer, _enc, callback) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
        callback()
      }
    })
    const logger: SchedulerLogger = pino({ level: 'debug' }, sink)
    const s = createScheduler(SchedulerConfig.parse({ kind: 'in-process' }), logger)
    if (!(s instanceof InProcessScheduler)) throw new Error('expected the in-process scheduler')
    s.startConsumer(async () => ({ kind: 'done' }))
    s.publishRaw('{"doc-id-to-process": 42}')
    await waitFor(() => lines.some((l) => l.msg === 'invalid job message dropped'), 'the warn line')
    const line = lines.find((l) => l.msg === 'invalid job message dropped')
    expect(line).toMatchObject({ level: 40, scheduler: 'in-process', messageId: '1' })
    expect(String(line?.reason)).toContain('doc-id-to-process')
    await s.close()
  })
})

describe('backoffDelayMs', () => {
  it('doubles from the base and stops at the ceiling', () => {
    expect([1, 2, 3, 4, 10, 1000].map((a) => backoffDelayMs(a, 100, 1_000))).toEqual([100, 200, 400, 800, 1_000, 1_000])
  })
})
