import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { casUpdate } from '../../src/db/cas-update.js'
import { CouchDatabase } from '../../src/db/couch.js'
import { ConflictError, NotFoundError } from '../../src/lib/errors.js'

interface Counter { [field: string]: unknown, _id: string, _rev?: string | undefined, type: string, count: number, tags: string[] }

describe('casUpdate against a real CouchDB-protocol server', () => {
  const db = new CouchDatabase({ serverUrl: inject('couchUrl'), dbName: `test_${randomUUID().replaceAll('-', '')}` })
  beforeAll(async () => { await db.ensureExists() })
  afterAll(async () => {
    await db.server.db.destroy(db.name)
    await db.close()
  })

  const read = async (id: string) => await db.get(id) as Counter
  const write = async (doc: Counter) => await db.put(doc)

  it('never loses an update when many writers race on one document', async () => {
    await db.put({ _id: 'race', type: 'counter', count: 0, tags: [] })
    await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      await casUpdate(async () => await read('race'), write, (doc) => ({ ...doc, count: doc.count + 1, tags: [...doc.tags, `w${i}`] }), { maxAttempts: 50 })
    }))
    const final = await read('race')
    expect(final.count).toBe(12)
    expect(final.tags.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `w${i}`).sort())
  })

  it('returns the written document with its new _rev, and a no-op when the change returns null', async () => {
    await db.put({ _id: 'noop', type: 'counter', count: 1, tags: [] })
    const written = await casUpdate(async () => await read('noop'), write, (doc) => ({ ...doc, count: 2 }))
    expect(written.written).toBe(true)
    expect(written.doc._rev).toMatch(/^2-/)
    const noop = await casUpdate(async () => await read('noop'), write, () => null)
    expect(noop).toEqual({ written: false, doc: expect.objectContaining({ count: 2, _rev: written.doc._rev }) })
  })

  it('surfaces a persistent conflict as ConflictError (409), never a 500', async () => {
    await db.put({ _id: 'stale', type: 'counter', count: 0, tags: [] })
    const first = await read('stale')
    await db.put({ ...first, count: 1 })
    // Always reads the old copy, so every write conflicts.
    await expect(casUpdate(async () => first, write, (doc) => ({ ...doc, count: 5 }), { maxAttempts: 3 })).rejects.toBeInstanceOf(ConflictError)
  })

  it('maps a missing document to NotFoundError', async () => {
    await expect(db.get('does-not-exist')).rejects.toBeInstanceOf(NotFoundError)
  })
})
