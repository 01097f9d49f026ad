import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { TenantId } from '../../models/common.js'
import { CouchDatabase } from '../../src/db/couch.js'
import { Documents } from '../../src/db/documents.js'
import { JobStore, LeaseLostError } from '../../src/jobs/job-store.js'
import { NotFoundError } from '../../src/lib/errors.js'
import type { TestDb } from './life-cycle-fixtures.js'
import { TENANT, createDatafileJob, openTestDb, patchDoc, rawDoc, sleep } from './life-cycle-fixtures.js'

describe('JobStore against a real CouchDB-protocol server', () => {
  let db: TestDb
  // A second "worker process": its own client and connection pool over the same database.
  let otherCouch: CouchDatabase
  let other: JobStore

  beforeAll(async () => {
    db = await openTestDb()
    otherCouch = new CouchDatabase({ serverUrl: inject('couchUrl'), dbName: db.couch.name })
    other = new JobStore(new Documents(otherCouch))
  })
  afterAll(async () => {
    await otherCouch.close()
    await db.drop()
  })

  describe('claim', () => {
    it('lets exactly one of several concurrent workers claim a pending job; the rest skip', async () => {
      const stores = [db.store, other, new JobStore(db.docs), new JobStore(new Documents(otherCouch))]
      for (let round = 0; round < 8; round++) {
        const id = await createDatafileJob(db.docs)
        const results = await Promise.all(stores.map(async (store, i) => await store.claim(id, `worker-${i}`, 5000, 3)))
        const claimed = results.flatMap((r, i) => r.kind === 'claimed' ? [{ worker: `worker-${i}`, job: r.job }] : [])
        expect(claimed, `round ${round}`).toHaveLength(1)
        expect(results.filter((r) => r.kind === 'skipped').map((r) => r.kind === 'skipped' ? r.state : '')).toEqual(['processing', 'processing', 'processing'])
        const winner = claimed[0]
        const stored = await db.store.readJob(id)
        expect(stored['worker-id']).toBe(winner?.worker)
        expect(stored.attempts).toBe(1)
        expect(stored._rev).toBe(winner?.job._rev)
        expect(stored._rev).toMatch(/^2-/)
      }
    })

    it('records worker, attempt, lease and start time, and clears retry-at', async () => {
      const id = await createDatafileJob(db.docs, { attempts: 1, 'retry-at': new Date(Date.now() - 1000).toISOString() })
      const before = Date.now()
      const result = await db.store.claim(id, 'worker-x', 60_000, 3)
      expect(result.kind).toBe('claimed')
      const job = await db.store.readJob(id)
      expect(job['processing-state']).toBe('processing')
      expect(job['worker-id']).toBe('worker-x')
      expect(job.attempts).toBe(2)
      expect(job['retry-at']).toBeNull()
      const lease = Date.parse(job['lease-expires-at'] ?? '')
      expect(lease).toBeGreaterThanOrEqual(before + 60_000)
      expect(lease).toBeLessThanOrEqual(Date.now() + 60_000)
      expect(Date.parse(job['started-at'] ?? '')).toBeGreaterThanOrEqual(before - 5)
    })

    it('never claims a job that has ended or was cancelled, and leaves it untouched', async () => {
      for (const state of ['finished_successfully', 'failed', 'cancelled', 'processing'] as const) {
        const id = await createDatafileJob(db.docs, { 'processing-state': state, attempts: 1, 'worker-id': state === 'processing' ? 'someone' : null })
        const before = await rawDoc(db.couch, id)
        const result = await db.store.claim(id, 'worker-late', 5000, 3)
        expect(result).toEqual({ kind: 'skipped', state })
        expect(await rawDoc(db.couch, id)).toEqual(before)
      }
    })

    it('fails a job that has used up its attempts instead of running it again', async () => {
      const id = await createDatafileJob(db.docs, { attempts: 3, 'processing-log': 'attempt 3 failed: connection reset' })
      const result = await db.store.claim(id, 'worker-a', 5000, 3)
      expect(result.kind).toBe('exhausted')
      const job = await db.store.readJob(id)
      expect(job['processing-state']).toBe('failed')
      expect(job['processing-log']).toBe('gave up after 3 attempts: attempt 3 failed: connection reset')
      expect(job.attempts).toBe(3)
      expect(job['worker-id']).toBeNull()
      expect(job['finished-at']).not.toBeNull()
      if (result.kind === 'exhausted') expect(result.job._rev).toBe(job._rev)
      // A later message for the same job finds it failed.
      expect(await other.claim(id, 'worker-b', 5000, 3)).toEqual({ kind: 'skipped', state: 'failed' })

      const single = await createDatafileJob(db.docs, { attempts: 1 })
      await db.store.claim(single, 'worker-a', 5000, 1)
      // (the claim above is exhausted: max 1 and one attempt spent)
      expect((await db.store.readJob(single))['processing-log']).toBe('gave up after 1 attempt: no attempt finished')
    })

    it('reports a missing or non-job document as NotFoundError', async () => {
      await expect(db.store.claim('no-such-job', 'w', 1000, 3)).rejects.toBeInstanceOf(NotFoundError)
      await db.docs.write({ _id: 'a-solver', type: 'solver' })
      await expect(db.store.readJob('a-solver')).rejects.toBeInstanceOf(NotFoundError)
    })
  })

  describe('owner-checked changes', () => {
    it('renews only the holder’s lease; a stolen or cancelled job raises LeaseLostError', async () => {
      const id = await createDatafileJob(db.docs)
      const claimed = await db.store.claim(id, 'worker-a', 1000, 3)
      expect(claimed.kind).toBe('claimed')
      const first = (await db.store.readJob(id))['lease-expires-at'] ?? ''
      await sleep(20)
      const renewed = await db.store.renew(id, 'worker-a', 1000)
      expect(Date.parse(renewed['lease-expires-at'] ?? '')).toBeGreaterThan(Date.parse(first))

      await expect(other.renew(id, 'worker-b', 1000)).rejects.toBeInstanceOf(LeaseLostError)
      await patchDoc(db.docs, id, { 'worker-id': 'worker-b' })
      const stolen = await db.store.renew(id, 'worker-a', 1000).catch((err: unknown) => err)
      expect(stolen).toBeInstanceOf(LeaseLostError)
      expect((stolen as LeaseLostError).state).toBe('processing')

      await patchDoc(db.docs, id, { 'worker-id': 'worker-a', 'processing-state': 'cancelled' })
      const cancelled = await db.store.renew(id, 'worker-a', 1000).catch((err: unknown) => err)
      expect(cancelled).toBeInstanceOf(LeaseLostError)
      expect((cancelled as LeaseLostError).state).toBe('cancelled')
      expect((cancelled as Error).message).toBe(`job ${id} was cancelled`)
    })

    it('never lets a finish, fail or release overwrite a job another worker holds or that was cancelled', async () => {
      const id = await createDatafileJob(db.docs)
      await db.store.claim(id, 'worker-a', 5000, 3)
      await db.repo.update(TENANT_ID, 'datafile', id, (doc) => ({ ...doc, 'processing-state': 'cancelled', 'processing-log': 'cancelled by the user' }))
      const before = await rawDoc(db.couch, id)
      await expect(db.store.finish(id, 'worker-a', (doc) => doc)).rejects.toBeInstanceOf(LeaseLostError)
      await expect(db.store.fail(id, 'worker-a', 'boom')).rejects.toBeInstanceOf(LeaseLostError)
      await expect(db.store.release(id, 'worker-a', 'boom', null, 3)).rejects.toBeInstanceOf(LeaseLostError)
      await expect(db.store.unclaim(id, 'worker-a', 'bye')).rejects.toBeInstanceOf(LeaseLostError)
      expect(await rawDoc(db.couch, id)).toEqual(before)
    })

    it('merges a worker update with a concurrent write instead of dropping either', async () => {
      const id = await createDatafileJob(db.docs)
      await db.store.claim(id, 'worker-a', 5000, 3)
      await Promise.all([
        db.store.update(id, 'worker-a', (doc) => ({ ...doc, size: 10 })),
        other.update(id, 'worker-a', (doc) => ({ ...doc, name: 'renamed' })),
        db.store.renew(id, 'worker-a', 5000)
      ])
      const job = await db.store.readJob(id)
      expect(job).toMatchObject({ size: 10, name: 'renamed', 'processing-state': 'processing', 'worker-id': 'worker-a' })
    })

    it('finishes, fails, releases with backoff (or gives up at the limit), and unclaims without spending an attempt', async () => {
      const finished = await createDatafileJob(db.docs)
      await db.store.claim(finished, 'w', 5000, 3)
      const done = await db.store.finish(finished, 'w', (doc) => ({ ...doc, size: 7 }))
      expect(done).toMatchObject({ 'processing-state': 'finished_successfully', size: 7, 'lease-expires-at': null, 'processing-log': '' })
      expect(await db.store.claim(finished, 'w2', 5000, 3)).toEqual({ kind: 'skipped', state: 'finished_successfully' })

      const failed = await createDatafileJob(db.docs)
      await db.store.claim(failed, 'w', 5000, 3)
      expect(await db.store.fail(failed, 'w', 'not a tar archive')).toMatchObject({ 'processing-state': 'failed', 'processing-log': 'not a tar archive' })

      const retried = await createDatafileJob(db.docs)
      await db.store.claim(retried, 'w', 5000, 3)
      const retryAt = new Date(Date.now() + 5000)
      const released = await db.store.release(retried, 'w', 'attempt 1 failed: timeout', retryAt, 3)
      expect(released).toMatchObject({ 'processing-state': 'pending', attempts: 1, 'worker-id': null, 'lease-expires-at': null, 'retry-at': retryAt.toISOString(), 'processing-log': 'attempt 1 failed: timeout' })

      const last = await createDatafileJob(db.docs, { attempts: 2 })
      await db.store.claim(last, 'w', 5000, 3)
      const gaveUp = await db.store.release(last, 'w', 'attempt 3 failed: timeout', new Date(), 3)
      expect(gaveUp).toMatchObject({ 'processing-state': 'failed', attempts: 3, 'processing-log': 'gave up after 3 attempts: attempt 3 failed: timeout' })

      const returned = await createDatafileJob(db.docs, { attempts: 1 })
      await db.store.claim(returned, 'w', 5000, 3)
      expect((await db.store.readJob(returned)).attempts).toBe(2)
      expect(await db.store.unclaim(returned, 'w', 'shutting down')).toMatchObject({ 'processing-state': 'pending', attempts: 1, 'worker-id': null, 'lease-expires-at': null })
    })
  })

  describe('reaper', () => {
    it('returns a dead worker’s expired job to pending, naming the worker and keeping the attempt count', async () => {
      const id = await createDatafileJob(db.docs)
      await db.store.claim(id, 'worker-dead', 60, 3)
      // The worker "dies": it never renews.
      await sleep(100)
      const reaped = await db.store.reapExpired(3)
      expect(reaped).toContainEqual({ id, state: 'pending' })
      const job = await db.store.readJob(id)
      expect(job).toMatchObject({ 'processing-state': 'pending', attempts: 1, 'worker-id': null, 'lease-expires-at': null })
      expect(job['processing-log']).toBe('worker-dead stopped responding during attempt 1 (its lease expired); the job was returned to the queue')
      // The next claim is attempt 2; the dead worker's late finish is refused.
      expect((await other.claim(id, 'worker-b', 5000, 3)).kind).toBe('claimed')
      expect((await db.store.readJob(id)).attempts).toBe(2)
      await expect(db.store.finish(id, 'worker-dead', (doc) => doc)).rejects.toBeInstanceOf(LeaseLostError)
    })

    it('fails a job whose last allowed attempt expired', async () => {
      const id = await createDatafileJob(db.docs, { attempts: 2 })
      await db.store.claim(id, 'worker-dead', 40, 3)
      await sleep(80)
      expect(await db.store.reapExpired(3)).toContainEqual({ id, state: 'failed' })
      const job = await db.store.readJob(id)
      expect(job).toMatchObject({ 'processing-state': 'failed', attempts: 3, 'worker-id': null })
      expect(job['processing-log']).toBe('worker-dead stopped responding during attempt 3 of 3 (its lease expired); giving up')
    })

    it('never reaps a live lease, and a renewed lease is no longer expired', async () => {
      const live = await createDatafileJob(db.docs)
      await db.store.claim(live, 'worker-live', 60_000, 3)
      const renewedId = await createDatafileJob(db.docs)
      await db.store.claim(renewedId, 'worker-slow', 80, 3)
      await sleep(40)
      await db.store.renew(renewedId, 'worker-slow', 60_000)
      await sleep(60)
      const before = [await rawDoc(db.couch, live), await rawDoc(db.couch, renewedId)]
      const reaped = await db.store.reapExpired(3)
      expect(reaped.map((r) => r.id)).not.toContain(live)
      expect(reaped.map((r) => r.id)).not.toContain(renewedId)
      expect([await rawDoc(db.couch, live), await rawDoc(db.couch, renewedId)]).toEqual(before)
    })

    it('is safe to run from two servers at once: each expired job is returned exactly once', async () => {
      const ids: string[] = []
      for (let i = 0; i < 6; i++) {
        const id = await createDatafileJob(db.docs)
        await db.store.claim(id, `dead-${i}`, 30, 3)
        ids.push(id)
      }
      await sleep(60)
      const [a, b] = await Promise.all([db.store.reapExpired(3), other.reapExpired(3)])
      const mine = [...a, ...b].filter((r) => ids.includes(r.id))
      expect(mine.map((r) => r.id).sort()).toEqual([...ids].sort())
      for (const id of ids) {
        const job = await db.store.readJob(id)
        expect(job['processing-state']).toBe('pending')
        expect(job.attempts).toBe(1)
        // One reaper write: claim made rev 2, the reap rev 3.
        expect(job._rev).toMatch(/^3-/)
      }
    })
  })

  it('lists job ids by state', async () => {
    const pending = await createDatafileJob(db.docs)
    const processing = await createDatafileJob(db.docs)
    await db.store.claim(processing, 'w', 60_000, 3)
    const pendingIds = (await db.store.idsInState('pending')).map((r) => r.id)
    const processingRows = await db.store.idsInState('processing', ['datafile'])
    expect(pendingIds).toContain(pending)
    expect(pendingIds).not.toContain(processing)
    expect(processingRows.find((r) => r.id === processing)).toMatchObject({ type: 'datafile', leaseExpiresAt: (await db.store.readJob(processing))['lease-expires-at'] })
  })
})

const TENANT_ID = TenantId.parse(TENANT)
