import { readdir } from 'node:fs/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { TenantId } from '../../models/common.js'
import type { JobOutcome } from '../../schedulers/index.js'
import { retryDelayMs } from '../../src/jobs/job-handler.js'
import { PermanentJobError } from '../../src/lib/errors.js'
import type { HandlerFixture, TestDb } from './life-cycle-fixtures.js'
import {
  TENANT, blockingRun, createDatafileJob, fakeDelivery, inProcessScheduler, makeHandler, openTestDb, patchDoc,
  quickRun, rawDoc, recordingRunners, sleep, waitFor
} from './life-cycle-fixtures.js'

const LEASE_MS = 300
const tenant = TenantId.parse(TENANT)

describe('job handler against a real CouchDB-protocol server', () => {
  let db: TestDb
  const cleanups: Array<() => Promise<void>> = []
  const track = (fixture: HandlerFixture): HandlerFixture => {
    cleanups.push(fixture.cleanup)
    return fixture
  }

  beforeAll(async () => { db = await openTestDb() })
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn()
  })
  afterAll(async () => { await db.drop() })

  describe('duplicates', () => {
    it('runs a job once when the same message is delivered twice in a row', async () => {
      const rec = recordingRunners(quickRun)
      const { handler, ended } = track(await makeHandler(db.store, rec.runners))
      const id = await createDatafileJob(db.docs)
      expect(await handler({ 'doc-id-to-process': id }, fakeDelivery())).toEqual({ kind: 'done' })
      expect(await handler({ 'doc-id-to-process': id }, fakeDelivery())).toEqual({ kind: 'done' })
      expect(rec.calls).toHaveLength(1)
      expect(ended).toEqual([`${id}:finished_successfully`])
      expect(await db.store.readJob(id)).toMatchObject({ 'processing-state': 'finished_successfully', attempts: 1, size: 1 })
    })

    it('runs a job once when two workers get the same message at the same time', async () => {
      const rec = recordingRunners(async () => { await sleep(50); return (doc) => ({ ...doc, size: 3 }) })
      const a = track(await makeHandler(db.store, rec.runners, { workerId: 'worker-a' }))
      const b = track(await makeHandler(db.store, rec.runners, { workerId: 'worker-b' }))
      for (let round = 0; round < 5; round++) {
        const id = await createDatafileJob(db.docs)
        const outcomes = await Promise.all([a.handler({ 'doc-id-to-process': id }, fakeDelivery()), b.handler({ 'doc-id-to-process': id }, fakeDelivery())])
        expect(outcomes).toEqual([{ kind: 'done' }, { kind: 'done' }])
        const runs = rec.calls.filter((c) => c.jobId === id)
        expect(runs, `round ${round}`).toHaveLength(1)
        expect(await db.store.readJob(id)).toMatchObject({ 'processing-state': 'finished_successfully', attempts: 1, 'worker-id': runs[0]?.workerId })
      }
    })

    it('runs a job once through a real scheduler with two consumers and repeated messages', async () => {
      const gate = blockingRun()
      const rec = recordingRunners(gate.run)
      const a = track(await makeHandler(db.store, rec.runners, { workerId: 'worker-a' }))
      const b = track(await makeHandler(db.store, rec.runners, { workerId: 'worker-b' }))
      const scheduler = inProcessScheduler(2)
      cleanups.push(async () => { await scheduler.close() })
      const outcomes: string[] = []
      const wrap = (h: HandlerFixture['handler']): HandlerFixture['handler'] => async (msg, d) => {
        const outcome = await h(msg, d)
        outcomes.push(outcome.kind)
        return outcome
      }
      scheduler.startConsumer(wrap(a.handler))
      scheduler.startConsumer(wrap(b.handler))
      const id = await createDatafileJob(db.docs)
      for (let i = 0; i < 3; i++) await scheduler.schedule({ 'doc-id-to-process': id })
      await waitFor(() => rec.calls.length === 1, 'the job to start')
      // More copies while it runs: each finds the job processing and is acknowledged.
      for (let i = 0; i < 3; i++) await scheduler.schedule({ 'doc-id-to-process': id })
      await waitFor(() => outcomes.length >= 1, 'a duplicate to be acknowledged')
      gate.release()
      await waitFor(async () => (await db.store.readJob(id))['processing-state'] === 'finished_successfully', 'the job to finish')
      expect(rec.calls).toHaveLength(1)
    })
  })

  describe('lease', () => {
    it('keeps renewing the lease of a long job and touches the delivery; the reaper leaves it alone', async () => {
      const gate = blockingRun()
      const rec = recordingRunners(gate.run)
      const { handler } = track(await makeHandler(db.store, rec.runners, { leaseMs: LEASE_MS }))
      const id = await createDatafileJob(db.docs)
      const delivery = fakeDelivery()
      const running = handler({ 'doc-id-to-process': id }, delivery)
      await waitFor(() => rec.calls.length === 1, 'the runner to start')
      const leases: number[] = []
      const reaped: string[] = []
      // Four lease lengths: without renewal the lease would have expired three times over.
      for (let i = 0; i < 8; i++) {
        await sleep(LEASE_MS / 2)
        const job = await db.store.readJob(id)
        expect(job['processing-state']).toBe('processing')
        const lease = Date.parse(job['lease-expires-at'] ?? '')
        expect(lease).toBeGreaterThan(Date.now())
        leases.push(lease)
        for (const r of await db.store.reapExpired(3)) reaped.push(r.id)
      }
      expect(reaped).not.toContain(id)
      expect(leases[leases.length - 1]).toBeGreaterThan((leases[0] ?? 0) + LEASE_MS)
      expect(delivery.touches()).toBeGreaterThanOrEqual(5)
      expect(rec.calls[0]?.signal.aborted).toBe(false)
      gate.release()
      expect(await running).toEqual({ kind: 'done' })
      expect(await db.store.readJob(id)).toMatchObject({ 'processing-state': 'finished_successfully', size: 2, 'lease-expires-at': null })
    })

    it('aborts the runner within about a third of a lease when the user cancels, and never overwrites the cancel', async () => {
      const gate = blockingRun()
      const rec = recordingRunners(gate.run)
      const { handler, ended } = track(await makeHandler(db.store, rec.runners, { leaseMs: LEASE_MS }))
      const id = await createDatafileJob(db.docs)
      const running = handler({ 'doc-id-to-process': id }, fakeDelivery())
      await waitFor(() => rec.calls.length === 1, 'the runner to start')
      await sleep(50)
      // As the cancel route does it: through the tenant's repository.
      const cancelled = await db.repo.update(tenant, 'datafile', id, (doc) => ({ ...doc, 'processing-state': 'cancelled', 'processing-log': 'cancelled by the user', 'lease-expires-at': null }))
      const cancelledAt = Date.now()
      expect(await running).toEqual({ kind: 'done' })
      const call = rec.calls[0]
      expect(call?.abortedAt).toBeDefined()
      // Renewal every lease/3 (100 ms) plus one database round trip; a loaded machine gets slack.
      if (process.env.ET_TEST_MEASURE !== undefined) process.stdout.write(`cancel → abort: ${(call?.abortedAt ?? 0) - cancelledAt} ms\n`)
      expect((call?.abortedAt ?? Infinity) - cancelledAt).toBeLessThan(LEASE_MS)
      expect(call?.ended).toBe('threw')
      await sleep(LEASE_MS)
      const after = await rawDoc(db.couch, id)
      expect(after._rev).toBe(cancelled._rev)
      expect(after['processing-state']).toBe('cancelled')
      expect(ended).toEqual([])
    })

    it('does not save the result of a runner that ignores its signal after a cancel', async () => {
      const rec = recordingRunners(async () => {
        await sleep(LEASE_MS * 2)
        return (doc) => ({ ...doc, size: 99 })
      })
      const { handler, ended } = track(await makeHandler(db.store, rec.runners, { leaseMs: LEASE_MS }))
      const id = await createDatafileJob(db.docs)
      const running = handler({ 'doc-id-to-process': id }, fakeDelivery())
      await waitFor(() => rec.calls.length === 1, 'the runner to start')
      await patchDoc(db.docs, id, { 'processing-state': 'cancelled' })
      const cancelledRev = (await rawDoc(db.couch, id))._rev
      expect(await running).toEqual({ kind: 'done' })
      expect(rec.calls[0]?.signal.aborted).toBe(true)
      expect(rec.calls[0]?.ended).toBe('returned')
      const after = await rawDoc(db.couch, id)
      expect(after).toMatchObject({ 'processing-state': 'cancelled', _rev: cancelledRev })
      expect(after.size).toBeNull()
      expect(ended).toEqual([])
    })

    it('stops when another worker takes the job over, and its late result is not saved', async () => {
      const rec = recordingRunners(async (ctx) => {
        // Bounded, so a handler that never aborts fails the assertions below instead of timing out.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, LEASE_MS * 5)
          ctx.signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
        })
        // Finishes anyway, as a runner that does not check its signal at the end would.
        return (doc) => ({ ...doc, size: 42 })
      })
      const { handler } = track(await makeHandler(db.store, rec.runners, { leaseMs: LEASE_MS }))
      const id = await createDatafileJob(db.docs)
      const running = handler({ 'doc-id-to-process': id }, fakeDelivery())
      await waitFor(() => rec.calls.length === 1, 'the runner to start')
      await patchDoc(db.docs, id, { 'worker-id': 'worker-thief' })
      const stolenAt = Date.now()
      const stolenRev = (await rawDoc(db.couch, id))._rev
      expect(await running).toEqual({ kind: 'done' })
      expect((rec.calls[0]?.abortedAt ?? Infinity) - stolenAt).toBeLessThan(LEASE_MS)
      const after = await rawDoc(db.couch, id)
      expect(after).toMatchObject({ 'processing-state': 'processing', 'worker-id': 'worker-thief', _rev: stolenRev })
      expect(after.size).toBeNull()
    })
  })

  describe('failures', () => {
    it('returns a job that threw to pending with a backoff, answers retry until then, and runs attempt 2 after', async () => {
      let fail = true
      const rec = recordingRunners(async () => {
        if (fail) throw new Error('connection reset by peer')
        return (doc) => ({ ...doc, size: 5 })
      })
      const { handler, ended } = track(await makeHandler(db.store, rec.runners, { leaseMs: LEASE_MS }))
      const id = await createDatafileJob(db.docs)
      const before = Date.now()
      expect(await handler({ 'doc-id-to-process': id }, fakeDelivery())).toEqual({ kind: 'done' })
      const released = await db.store.readJob(id)
      expect(released).toMatchObject({ 'processing-state': 'pending', attempts: 1, 'worker-id': null, 'lease-expires-at': null, 'processing-log': 'attempt 1 failed: connection reset by peer' })
      const retryAt = Date.parse(released['retry-at'] ?? '')
      expect(retryAt).toBeGreaterThanOrEqual(before + retryDelayMs(1))
      expect(retryAt).toBeLessThanOrEqual(Date.now() + retryDelayMs(1))
      expect(ended).toEqual([])

      // Delivered again before retry-at: not run, told how long to wait.
      const early = await handler({ 'doc-id-to-process': id }, fakeDelivery())
      expect(early.kind).toBe('retry')
      const delay = early.kind === 'retry' ? early.delayMs : 0
      expect(delay).toBeGreaterThan(retryAt - Date.now() - 50)
      expect(delay).toBeLessThanOrEqual(retryAt - before)
      expect(rec.calls).toHaveLength(1)
      expect(await db.store.readJob(id)).toMatchObject({ _rev: released._rev })

      // Time passes (moved forward in the document rather than waiting 5 s).
      await patchDoc(db.docs, id, { 'retry-at': new Date(Date.now() + 150).toISOString() })
      const soon = await handler({ 'doc-id-to-process': id }, fakeDelivery())
      expect(soon.kind).toBe('retry')
      expect(soon.kind === 'retry' ? soon.delayMs : -1).toBeLessThanOrEqual(150)
      await sleep(200)
      fail = false
      expect(await handler({ 'doc-id-to-process': id }, fakeDelivery())).toEqual({ kind: 'done' })
      expect(rec.calls.map((c) => c.attempt)).toEqual([1, 2])
      expect(await db.store.readJob(id)).toMatchObject({ 'processing-state': 'finished_successfully', attempts: 2, size: 5, 'processing-log': '' })
      expect(ended).toEqual([`${id}:finished_successfully`])
    })

    it('fails at once on PermanentJobError, with its message', async () => {
      const rec = recordingRunners(async () => { throw new PermanentJobError('archive entry ../etc/passwd escapes the work dir') })
      const { handler, ended } = track(await makeHandler(db.store, rec.runners))
      const id = await createDatafileJob(db.docs)
      expect(await handler({ 'doc-id-to-process': id }, fakeDelivery())).toEqual({ kind: 'done' })
      expect(await db.store.readJob(id)).toMatchObject({ 'processing-state': 'failed', attempts: 1, 'processing-log': 'archive entry ../etc/passwd escapes the work dir' })
      expect(ended).toEqual([`${id}:failed`])
      expect(await handler({ 'doc-id-to-process': id }, fakeDelivery())).toEqual({ kind: 'done' })
      expect(rec.calls).toHaveLength(1)
    })

    it('gives up when the last allowed attempt throws', async () => {
      const rec = recordingRunners(async () => { throw new Error('out of memory') })
      const { handler, ended } = track(await makeHandler(db.store, rec.runners, { maxAttempts: 2 }))
      const id = await createDatafileJob(db.docs, { attempts: 1 })
      await handler({ 'doc-id-to-process': id }, fakeDelivery())
      expect(await db.store.readJob(id)).toMatchObject({ 'processing-state': 'failed', attempts: 2, 'processing-log': 'gave up after 2 attempts: attempt 2 failed: out of memory' })
      expect(ended).toEqual([`${id}:failed`])
    })

    it('does not claim a job whose inputs are not ready, and fails one whose inputs failed', async () => {
      let readiness: 'wait' | 'fail' = 'wait'
      const rec = recordingRunners(quickRun, async () => readiness === 'wait' ? { kind: 'wait', delayMs: 250, reason: 'datafile still processing' } : { kind: 'fail', reason: 'datafile x failed: 404' })
      const { handler, ended } = track(await makeHandler(db.store, rec.runners))
      const id = await createDatafileJob(db.docs)
      const before = await rawDoc(db.couch, id)
      expect(await handler({ 'doc-id-to-process': id }, fakeDelivery())).toEqual({ kind: 'retry', delayMs: 250, reason: 'datafile still processing' })
      expect(await rawDoc(db.couch, id)).toEqual(before)
      readiness = 'fail'
      expect(await handler({ 'doc-id-to-process': id }, fakeDelivery())).toEqual({ kind: 'done' })
      expect(await db.store.readJob(id)).toMatchObject({ 'processing-state': 'failed', 'processing-log': 'datafile x failed: 404' })
      expect(rec.calls).toHaveLength(0)
      expect(ended).toEqual([`${id}:failed`])
    })

    it('drops a message for a document that does not exist or is not a job', async () => {
      const { handler } = track(await makeHandler(db.store, recordingRunners(quickRun).runners))
      expect((await handler({ 'doc-id-to-process': 'nothing-here' }, fakeDelivery())).kind).toBe('drop')
    })

    it('returns the job (and stops renewing its lease) when its work dir cannot be made', async () => {
      const rec = recordingRunners(quickRun)
      const { handler } = track(await makeHandler(db.store, rec.runners, { leaseMs: LEASE_MS, workRoot: '/dev/null/not-a-dir' }))
      const id = await createDatafileJob(db.docs)
      let outcome: JobOutcome | Error
      try {
        outcome = await handler({ 'doc-id-to-process': id }, fakeDelivery())
      } catch (err) {
        outcome = err as Error
      }
      expect(outcome).toEqual({ kind: 'done' })
      expect(rec.calls).toHaveLength(0)
      const job = await db.store.readJob(id)
      expect(job['processing-state']).toBe('pending')
      expect(job['processing-log']).toMatch(/^attempt 1 failed: .*ENOTDIR/)
      // Nothing keeps writing to the document afterwards.
      const rev = (await rawDoc(db.couch, id))._rev
      await sleep(LEASE_MS)
      expect((await rawDoc(db.couch, id))._rev).toBe(rev)
    })

    it('removes the work dir whatever the outcome', async () => {
      let n = 0
      const rec = recordingRunners(async () => {
        n++
        if (n === 1) throw new PermanentJobError('bad')
        return (doc) => doc
      })
      const fixture = track(await makeHandler(db.store, rec.runners))
      await fixture.handler({ 'doc-id-to-process': await createDatafileJob(db.docs) }, fakeDelivery())
      await fixture.handler({ 'doc-id-to-process': await createDatafileJob(db.docs) }, fakeDelivery())
      expect(rec.calls).toHaveLength(2)
      expect(await readdir(fixture.workRoot)).toEqual([])
    })
  })

  describe('shutdown', () => {
    it('aborts a running job past the grace period and returns it to pending without spending an attempt', async () => {
      const gate = blockingRun()
      const rec = recordingRunners(gate.run)
      const { handler } = track(await makeHandler(db.store, rec.runners, { leaseMs: LEASE_MS, workerId: 'worker-leaving' }))
      const scheduler = inProcessScheduler(1)
      cleanups.push(async () => { await scheduler.close() })
      const consumer = scheduler.startConsumer(handler)
      const id = await createDatafileJob(db.docs, { attempts: 1 })
      await scheduler.schedule({ 'doc-id-to-process': id })
      await waitFor(() => rec.calls.length === 1, 'the runner to start')
      expect((await db.store.readJob(id)).attempts).toBe(2)
      const closing = Date.now()
      await consumer.close({ graceMs: 100 })
      expect(rec.calls[0]?.abortedAt).toBeGreaterThanOrEqual(closing + 90)
      const job = await db.store.readJob(id)
      expect(job).toMatchObject({ 'processing-state': 'pending', attempts: 1, 'worker-id': null, 'lease-expires-at': null })
      expect(job['processing-log']).toBe('worker worker-leaving shut down during attempt 2; the job was returned to the queue')
      expect(consumer.running).toBe(0)
    })

    it('lets a job that ends within the grace period finish normally', async () => {
      const rec = recordingRunners(async () => { await sleep(150); return (doc) => ({ ...doc, size: 8 }) })
      const { handler } = track(await makeHandler(db.store, rec.runners))
      const scheduler = inProcessScheduler(1)
      cleanups.push(async () => { await scheduler.close() })
      const consumer = scheduler.startConsumer(handler)
      const id = await createDatafileJob(db.docs)
      await scheduler.schedule({ 'doc-id-to-process': id })
      await waitFor(() => rec.calls.length === 1, 'the runner to start')
      await consumer.close({ graceMs: 2000 })
      expect(rec.calls[0]?.signal.aborted).toBe(false)
      expect(await db.store.readJob(id)).toMatchObject({ 'processing-state': 'finished_successfully', size: 8 })
    })
  })
})
