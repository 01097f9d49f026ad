import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Scheduler } from '../../schedulers/index.js'
import { JobDispatcher } from '../../src/changes/job-dispatcher.js'
import type { JobDispatcherOptions } from '../../src/changes/job-dispatcher.js'
import type { Change } from '../../src/changes/changes-feed.js'
import { CouchDatabase } from '../../src/db/couch.js'
import { installDesign } from '../../src/db/design.js'
import { Documents } from '../../src/db/documents.js'
import { startEmbeddedCouch } from '../../src/db/embedded-couch.js'
import { JobStore } from '../../src/jobs/job-store.js'
import { UnavailableError } from '../../src/lib/errors.js'
import type { TestDb } from '../jobs/life-cycle-fixtures.js'
import {
  TENANT, createDatafileJob, createDatasetJob, inProcessScheduler, openTestDb, patchDoc, rawDoc, recordingScheduler, sleep, testLogger, waitFor
} from '../jobs/life-cycle-fixtures.js'

type Recording = Scheduler & { scheduled: string[] }

describe('job dispatcher against a real CouchDB-protocol server', () => {
  let db: TestDb
  const cleanups: Array<() => Promise<void>> = []
  beforeAll(async () => { db = await openTestDb() })
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn()
  })
  afterAll(async () => { await db.drop() })

  /** A recording wrapper over a real in-process scheduler whose consumer acknowledges every message. */
  const scheduler = (): Recording & { delivered: string[] } => {
    const inner = inProcessScheduler(4)
    const recording = recordingScheduler(inner)
    const delivered: string[] = []
    inner.startConsumer(async (msg) => {
      delivered.push(msg['doc-id-to-process'])
      return { kind: 'done' }
    })
    cleanups.push(async () => { await inner.close() })
    return Object.assign(recording, { delivered })
  }

  const dispatcher = (options: Partial<JobDispatcherOptions> & { scheduler: Scheduler }, target: TestDb = db): JobDispatcher => {
    const d = new JobDispatcher({ couch: target.couch, store: target.store, logger: testLogger, maxAttempts: 3, name: `t-${Math.random().toString(36).slice(2)}`, ...options })
    cleanups.push(async () => { await d.stop() })
    return d
  }

  it('schedules jobs left pending before it started (the sweep), and only those', async () => {
    const pending = await createDatafileJob(db.docs)
    const finished = await createDatafileJob(db.docs, { 'processing-state': 'finished_successfully' })
    const processing = await createDatafileJob(db.docs)
    await db.store.claim(processing, 'w', 60_000, 3)
    const s = scheduler()
    await dispatcher({ scheduler: s }).start()
    // start() resolves after the sweep.
    expect(s.scheduled).toContain(pending)
    expect(s.scheduled).not.toContain(finished)
    expect(s.scheduled).not.toContain(processing)
    await waitFor(() => s.delivered.includes(pending), 'the message to reach the consumer')
  })

  it('schedules a job created while it runs within about 100 ms', async () => {
    const s = scheduler()
    const d = dispatcher({ scheduler: s })
    await d.start()
    const latencies: number[] = []
    for (let i = 0; i < 5; i++) {
      const id = await createDatafileJob(db.docs)
      const written = Date.now()
      await waitFor(() => s.scheduled.includes(id), 'the new job to be scheduled', 2000)
      latencies.push(Date.now() - written)
    }
    latencies.sort((a, b) => a - b)
    if (process.env.ET_TEST_MEASURE !== undefined) process.stdout.write(`dispatch latencies (ms): ${latencies.join(', ')}\n`)
    expect(latencies[2]).toBeLessThan(100)
    expect(latencies[4]).toBeLessThan(500)
  })

  it('misses no job created while it is starting on a database it has never seen', async () => {
    const s = scheduler()
    const d = dispatcher({ scheduler: s })
    const created: string[] = []
    const state = { starting: true }
    // Jobs written back to back across the start: before the feed, between feed and sweep, after.
    const writer = (async () => {
      while (state.starting || created.length < 40) created.push(await createDatafileJob(db.docs))
    })()
    await sleep(20)
    await d.start()
    state.starting = false
    await writer
    await waitFor(() => created.every((id) => s.scheduled.includes(id)), 'every job to be scheduled', 5000)
      .catch(() => { throw new Error(`not scheduled: ${created.filter((id) => !s.scheduled.includes(id)).join(', ')}`) })
  })

  it('saves its checkpoint and, restarted, resumes from it instead of replaying old changes', async () => {
    const name = 'checkpoint-test'
    const first = scheduler()
    const d1 = dispatcher({ scheduler: first, name })
    await d1.start()
    const old = [await createDatafileJob(db.docs), await createDatafileJob(db.docs)]
    await waitFor(() => old.every((id) => first.scheduled.includes(id)), 'the old jobs to be scheduled')
    // Saved by the periodic checkpoint (every second), without a stop.
    await waitFor(async () => await db.couch.get(`_local/elastic-thought-dispatcher-${name}`).then(() => true, () => false), 'the checkpoint document', 3000)
    for (const id of old) await patchDoc(db.docs, id, { 'processing-state': 'finished_successfully' })
    await sleep(100)
    await d1.stop()
    const checkpoint = await db.couch.get(`_local/elastic-thought-dispatcher-${name}`) as { since: unknown }
    expect(checkpoint.since).toEqual(await db.couch.updateSeq())

    // Changes while no dispatcher runs: they must be picked up from the checkpoint.
    const whileDown = await createDatafileJob(db.docs)
    await db.docs.write({ _id: 'not-a-job-while-down', type: 'note' })

    const second = scheduler()
    const seen: Change[] = []
    const d2 = dispatcher({ scheduler: second, name, onChange: (c) => seen.push(c) })
    await d2.start()
    await waitFor(() => seen.some((c) => c.id === 'not-a-job-while-down'), 'the change made while down')
    await sleep(200)
    expect(seen.map((c) => c.id).filter((id) => old.includes(id))).toEqual([])
    for (const id of old) expect(count(second.scheduled, id)).toBe(0)
    // Once from the sweep and once from its change in the feed: duplicates are harmless by design.
    expect(count(second.scheduled, whileDown)).toBeGreaterThanOrEqual(1)
    expect(count(second.scheduled, whileDown)).toBeLessThanOrEqual(2)
    expect(seen.map((c) => c.id)).toContain(whileDown)
  })

  it('wakes a job waiting for another when that one ends', async () => {
    const s = scheduler()
    const d = dispatcher({ scheduler: s })
    const datafile = await createDatafileJob(db.docs)
    await db.store.claim(datafile, 'worker-a', 60_000, 3)
    const dataset = await createDatasetJob(db.docs, datafile)
    await d.start()
    await waitFor(() => s.scheduled.includes(dataset), 'the dataset to be scheduled by the sweep')
    const before = count(s.scheduled, dataset)
    await sleep(100)
    expect(count(s.scheduled, dataset)).toBe(before)
    // The datafile ends; the dataset document itself does not change.
    const datasetRev = (await rawDoc(db.couch, dataset))._rev
    await db.store.finish(datafile, 'worker-a', (doc) => doc)
    await waitFor(() => count(s.scheduled, dataset) > before, 'the dataset to be woken', 2000)
    expect((await rawDoc(db.couch, dataset))._rev).toBe(datasetRev)
    // A dependent that is not pending is not woken.
    const other = await createDatafileJob(db.docs)
    await db.store.claim(other, 'worker-a', 60_000, 3)
    const cancelledDataset = await createDatasetJob(db.docs, other)
    await patchDoc(db.docs, cancelledDataset, { 'processing-state': 'cancelled' })
    await sleep(100)
    const was = count(s.scheduled, cancelledDataset)
    await db.store.fail(other, 'worker-a', 'bad')
    await sleep(300)
    expect(count(s.scheduled, cancelledDataset)).toBe(was)
  })

  it('wakes a job that waits through a document that is not a job (training job → solver → dataset)', async () => {
    const s = scheduler()
    const d = dispatcher({ scheduler: s })
    const datafile = await createDatafileJob(db.docs)
    const dataset = await createDatasetJob(db.docs, datafile)
    await db.store.claim(dataset, 'worker-a', 60_000, 3)
    const now = new Date().toISOString()
    const solver = `solver-${Date.now()}`
    await db.docs.write({ _id: solver, type: 'solver', 'user-id': TENANT, 'created-at': now, 'updated-at': now, 'dataset-id': dataset, 'specification-url': 'cbfs://s/solver.prototxt', 'specification-net-url': 'cbfs://s/net.prototxt' })
    const training = `training-${Date.now()}`
    await db.docs.write({ _id: training, type: 'training-job', 'user-id': TENANT, 'created-at': now, 'updated-at': now, 'solver-id': solver, 'processing-state': 'pending' })
    await d.start()
    await waitFor(() => s.scheduled.includes(training), 'the training job to be scheduled by the sweep')
    const before = count(s.scheduled, training)
    await db.store.finish(dataset, 'worker-a', (doc) => doc)
    await waitFor(() => count(s.scheduled, training) > before, 'the training job to be woken through its solver', 2000)
  })

  it('reaps expired leases on its interval, and the returned job is scheduled again', async () => {
    const s = scheduler()
    const d = dispatcher({ scheduler: s, reapIntervalMs: 100 })
    await d.start()
    const id = await createDatafileJob(db.docs)
    await waitFor(() => s.scheduled.includes(id), 'the job to be scheduled')
    await db.store.claim(id, 'worker-dead', 100, 3)
    await waitFor(() => count(s.scheduled, id) === 2, 'the reaped job to be scheduled again', 3000)
    expect(await db.store.readJob(id)).toMatchObject({ 'processing-state': 'pending', attempts: 1, 'worker-id': null })
  })

  it('stops within its grace while a change is stuck in scheduling, and handles that change again at the next start', async () => {
    const name = `stuck-${Date.now()}`
    const inner = scheduler()
    const stuckId = `stuck-${Date.now()}`
    const hanging: Recording = {
      ...inner,
      kind: inner.kind,
      scheduled: inner.scheduled,
      // A broker that accepted the connection and never answers.
      schedule: async (msg) => { if (msg['doc-id-to-process'] === stuckId) await new Promise<never>(() => {}); else await inner.schedule(msg) }
    }
    const d1 = dispatcher({ scheduler: hanging, name, stopGraceMs: 300 })
    await d1.start()
    const before = await createDatafileJob(db.docs)
    await waitFor(() => inner.scheduled.includes(before), 'a job before the stuck one')
    await createDatafileJob(db.docs, { _id: stuckId })
    await sleep(1500) // past a periodic checkpoint save
    const started = Date.now()
    await d1.stop()
    expect(Date.now() - started).toBeLessThan(3000)

    const seen: string[] = []
    const second = scheduler()
    const d2 = dispatcher({ scheduler: second, name, onChange: (c) => seen.push(c.id) })
    await d2.start()
    await waitFor(() => seen.includes(stuckId), 'the stuck change, replayed from the checkpoint')
    expect(seen).not.toContain(before)
  })

  it('does not lose a pending job whose scheduling failed (broker briefly down)', async () => {
    const inner = scheduler()
    const failing = `flaky-${Date.now()}`
    let failures = 0
    const flaky: Recording = {
      ...inner,
      kind: inner.kind,
      scheduled: inner.scheduled,
      schedule: async (msg) => {
        if (msg['doc-id-to-process'] === failing && failures < 2) {
          failures++
          throw new UnavailableError('the broker cannot be reached')
        }
        await inner.schedule(msg)
      }
    }
    const d = dispatcher({ scheduler: flaky })
    await d.start()
    const id = await createDatafileJob(db.docs, { _id: failing })
    await waitFor(() => failures === 2, 'the failed attempts')
    const later = await createDatafileJob(db.docs)
    await waitFor(() => inner.scheduled.includes(later), 'a later job to be scheduled')
    await waitFor(() => inner.scheduled.includes(id), 'the job whose scheduling failed to be scheduled', 5000)
  })

  it('starts even when the broker is down, and schedules what is pending once it is back', async () => {
    const inner = scheduler()
    let down = true
    const broker: Recording = {
      ...inner,
      kind: inner.kind,
      scheduled: inner.scheduled,
      schedule: async (msg) => {
        if (down) throw new UnavailableError('the broker cannot be reached')
        await inner.schedule(msg)
      }
    }
    const id = await createDatafileJob(db.docs)
    const d = dispatcher({ scheduler: broker })
    await d.start()
    down = false
    await waitFor(() => inner.scheduled.includes(id), 'the pending job to be scheduled', 5000)
  })
})

describe('job dispatcher across a database crash', () => {
  it('keeps scheduling after the database process is killed and restarted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'et-dispatch-crash-'))
    const couchServer = await startEmbeddedCouch({ dataDir: dir, restart: true })
    const couch = new CouchDatabase({ serverUrl: couchServer.serverUrl, dbName: 'jobs', ...(couchServer.socketPath === undefined ? {} : { socketPath: couchServer.socketPath }) })
    const inner = inProcessScheduler(2)
    const s = recordingScheduler(inner)
    let d: JobDispatcher | undefined
    try {
      await couch.ensureExists()
      await installDesign(couch)
      const docs = new Documents(couch)
      const target: TestDb = { couch, docs, store: new JobStore(docs), repo: undefined as never, drop: async () => {} }
      const live: boolean[] = []
      d = new JobDispatcher({ couch, store: target.store, scheduler: s, logger: testLogger, maxAttempts: 3, name: 'crash', onLive: (l) => live.push(l) })
      await d.start()
      await waitFor(() => d?.isLive === true, 'the feed to connect')
      const first = await createDatafileJob(docs)
      await waitFor(() => s.scheduled.includes(first), 'a job before the crash')

      // Written and acknowledged, then the database dies at once: the feed may or may not have
      // delivered it yet.
      const beforeKill = await createDatafileJob(docs)
      const pid = couchServer.pid
      process.kill(pid ?? 0, 'SIGKILL')
      await waitFor(() => couchServer.pid !== pid, 'the database to be restarted', 10_000)
      await waitFor(async () => await couch.get(beforeKill).then(() => true, () => false), 'the database to answer again', 10_000)
      const afterRestart = await createDatafileJob(docs)
      await waitFor(() => s.scheduled.includes(afterRestart), 'a job created after the restart', 10_000)
      await sleep(300)
      expect(live).toContain(false)
      expect(count(s.scheduled, afterRestart)).toBe(1)
      // Exactly once: the feed resumes from the last sequence it delivered, so a change seen
      // before the crash is not delivered again, and one not yet seen is delivered after it.
      expect(count(s.scheduled, beforeKill)).toBe(1)
      expect(count(s.scheduled, first)).toBe(1)
    } finally {
      await d?.stop()
      await inner.close()
      await couch.close()
      await couchServer.close()
      await rm(dir, { recursive: true, force: true })
    }
  }, 30_000)
})

function count (list: string[], id: string): number {
  return list.filter((x) => x === id).length
}
