import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createKvWriter, openKvReader } from '../../../src/engine/data/kv-store.js'
import type { Backend } from '../../../src/engine/data/backend.js'
import { parseBackend } from '../../../src/engine/data/backend.js'
import { DatabaseError, LmdbFormatError } from '../../../src/engine/data/errors.js'

let tmp: string
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'et-kv-')) })
afterAll(() => { rmSync(tmp, { recursive: true, force: true }) })

const key = (i: number): Buffer => Buffer.from(`${String(i).padStart(8, '0')}_img${i}.png`)
const value = (i: number): Buffer => Buffer.alloc(10 + (i % 700), i & 255)

describe.each<Backend>(['LMDB', 'LEVELDB'])('%s key/value store', (backend) => {
  const dir = (name: string): string => join(tmp, `${backend}-${name}`)

  it('writes records and reads them back in key order with count, get, first/next and seek', async () => {
    const path = dir('rt')
    const w = await createKvWriter(path, backend)
    for (let i = 0; i < 2500; i++) await w.put(key(i), value(i))
    await w.close()
    const r = await openKvReader(path, backend)
    expect(r.backend).toBe(backend)
    expect(await r.count()).toBe(2500)
    const c = r.cursor()
    let n = 0
    for (let ok = await c.first(); ok; ok = await c.next()) {
      if (!Buffer.from(c.key).equals(key(n)) || !Buffer.from(c.value).equals(value(n))) throw new Error(`record ${n} differs`)
      n++
    }
    expect(n).toBe(2500)
    expect(await c.next()).toBe(false)
    expect(await c.seek(Buffer.from('00001234'))).toBe(true)
    expect(Buffer.from(c.key).toString()).toBe('00001234_img1234.png')
    expect(await c.next()).toBe(true)
    expect(Buffer.from(c.key).toString()).toBe('00001235_img1235.png')
    expect(await c.seek(Buffer.from('zzz'))).toBe(false)
    expect(await c.first()).toBe(true)
    expect(Buffer.from(c.key).toString()).toBe('00000000_img0.png')
    expect(Buffer.from((await r.get(key(77))) ?? []).equals(value(77))).toBe(true)
    expect(await r.get(Buffer.from('nope'))).toBeUndefined()
    await c.close()
    await r.close()
  })

  it('refuses to create over an existing database and to open a missing one', async () => {
    const path = dir('exists')
    const w = await createKvWriter(path, backend)
    await w.put(Buffer.from('a'), Buffer.from('1'))
    await w.close()
    await expect(createKvWriter(path, backend)).rejects.toThrow(DatabaseError)
    await expect(openKvReader(dir('missing'), backend)).rejects.toThrow(DatabaseError)
    await expect(openKvReader(dir('missing'), backend)).rejects.toThrow(/missing: no such file or directory/)
  })

  it('lets two readers of one path in the same process work side by side', async () => {
    const path = dir('shared')
    const w = await createKvWriter(path, backend)
    for (let i = 0; i < 10; i++) await w.put(key(i), value(i))
    await w.close()
    const a = await openKvReader(path, backend)
    const b = await openKvReader(path, backend)
    const ca = a.cursor()
    const cb = b.cursor()
    expect(await ca.first()).toBe(true)
    expect(await ca.next()).toBe(true)
    expect(await cb.first()).toBe(true)
    expect(Buffer.from(ca.key).toString()).toBe('00000001_img1.png')
    expect(Buffer.from(cb.key).toString()).toBe('00000000_img0.png')
    await ca.close()
    await a.close()
    expect(await cb.next()).toBe(true)
    expect(await b.count()).toBe(10)
    await cb.close()
    await b.close()
  })

  it('removes a database whose writing was aborted', async () => {
    const path = dir('aborted')
    const w = await createKvWriter(path, backend)
    await w.put(Buffer.from('a'), Buffer.from('1'))
    await w.abort()
    await expect(openKvReader(path, backend)).rejects.toThrow(DatabaseError)
  })
})

describe('backend selection', () => {
  it('parses the spellings of --backend and DataParameter.backend', () => {
    expect(parseBackend('lmdb')).toBe('LMDB')
    expect(parseBackend('LEVELDB')).toBe('LEVELDB')
    expect(() => parseBackend('rocksdb')).toThrow('Unknown db backend rocksdb')
  })

  it('says which backend a directory is not', async () => {
    const path = join(tmp, 'level-for-lmdb')
    const w = await createKvWriter(path, 'LEVELDB')
    await w.put(Buffer.from('a'), Buffer.from('1'))
    await w.close()
    await expect(openKvReader(path, 'LMDB')).rejects.toThrow(LmdbFormatError)
    await expect(openKvReader(path, 'LMDB')).rejects.toThrow(/not an LMDB database: .*contains no data\.mdb/)
    const plain = join(tmp, 'plain-dir')
    mkdirSync(plain)
    await expect(openKvReader(plain, 'LEVELDB')).rejects.toThrow(/cannot open LevelDB database .*plain-dir/)
  })
})
