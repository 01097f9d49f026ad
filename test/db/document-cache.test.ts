import { describe, expect, it } from 'vitest'
import { DocumentCache } from '../../src/db/document-cache.js'
import { signUp, startTestApp } from '../helpers/app.js'

describe('DocumentCache', () => {
  it('serves nothing until live, and empties when the feed is lost', () => {
    const cache = new DocumentCache()
    cache.fill('a', { _rev: '1-a' }, cache.begin())
    expect(cache.get('a')).toBeUndefined()
    cache.setLive(true)
    cache.fill('a', { _rev: '1-a' }, cache.begin())
    expect(cache.get('a')).toEqual({ _rev: '1-a' })
    cache.setLive(false)
    expect(cache.get('a')).toBeUndefined()
  })

  it('drops a fill that raced a newer change, so an old copy never comes back', () => {
    const cache = new DocumentCache()
    cache.setLive(true)
    const token = cache.begin()
    cache.invalidate('a', '3-ccc')
    cache.fill('a', { _rev: '2-bbb', v: 'old' }, token)
    expect(cache.get('a')).toBeUndefined()
    cache.fill('a', { _rev: '3-ccc', v: 'new' }, cache.begin())
    expect(cache.get('a')).toEqual({ _rev: '3-ccc', v: 'new' })
  })

  it('a slow read never overwrites a newer copy written meanwhile', () => {
    const cache = new DocumentCache()
    cache.setLive(true)
    const slowRead = cache.begin()
    cache.fill('a', { _rev: '3-ccc' }, cache.begin())
    cache.fill('a', { _rev: '2-bbb' }, slowRead)
    expect(cache.get('a')).toEqual({ _rev: '3-ccc' })
    // The feed catching up with an older change does not lower what is known either.
    cache.invalidate('a', '2-bbb')
    cache.fill('a', { _rev: '2-bbb' }, cache.begin())
    expect(cache.get('a')).toBeUndefined()
  })

  it('keeps a cached copy when the feed reports the very revision it holds (our own write)', () => {
    const cache = new DocumentCache()
    cache.setLive(true)
    cache.fill('a', { _rev: '1-aaa' }, cache.begin())
    cache.invalidate('a', '1-aaa')
    expect(cache.get('a')).toEqual({ _rev: '1-aaa' })
    cache.invalidate('a', '2-bbb')
    expect(cache.get('a')).toBeUndefined()
  })

  it('evicts the least recently used entry past its size', () => {
    const cache = new DocumentCache(2)
    cache.setLive(true)
    const doc = (v: number) => ({ _rev: `1-${v}`, v })
    cache.fill('a', doc(1), cache.begin())
    cache.fill('b', doc(2), cache.begin())
    expect(cache.get('a')).toEqual(doc(1))
    cache.fill('c', doc(3), cache.begin())
    expect(cache.get('b')).toBeUndefined()
    expect(cache.get('a')).toEqual(doc(1))
    expect(cache.get('c')).toEqual(doc(3))
  })

  it('sees a write made by another process through the changes feed', async () => {
    const t = await startTestApp()
    try {
      const auth = await signUp(t.app, 'ivy')
      const created = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth }, payload: { url: 'https://example.com/a.tar.gz', name: 'before' } })
      const id: string = created.json().id
      expect((await t.app.inject({ url: `/datafiles/${id}`, headers: { authorization: auth } })).json().name).toBe('before')
      expect(t.deps.documents.cache?.get(id)).toBeDefined()
      // Another writer: straight to the database, bypassing this process's cache.
      const raw = await t.deps.couch.get(id) as Record<string, unknown> & { _id: string }
      await t.deps.couch.put({ ...raw, name: 'after' })
      let name = 'before'
      for (let i = 0; i < 100 && name !== 'after'; i++) {
        name = (await t.app.inject({ url: `/datafiles/${id}`, headers: { authorization: auth } })).json().name
        if (name !== 'after') await new Promise((resolve) => setTimeout(resolve, 10))
      }
      expect(name).toBe('after')
    } finally {
      await t.close()
    }
  })
})
