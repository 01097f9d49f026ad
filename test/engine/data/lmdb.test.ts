import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { openLmdb } from '../../../src/engine/data/lmdb/lmdb-reader.js'
import type { LmdbReader } from '../../../src/engine/data/lmdb/lmdb-reader.js'
import { createLmdbWriter } from '../../../src/engine/data/lmdb/lmdb-writer.js'
import { DatabaseError, LmdbFormatError, LmdbUnsupportedError } from '../../../src/engine/data/errors.js'
import { fixtureRecords } from './lmdb-fixture-spec.js'

const fixtures = new URL('../../fixtures/lmdb/', import.meta.url).pathname
let tmp: string

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'et-lmdb-'))
})
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true })
})

let seq = 0
function fixtureDir (name: string): string {
  const dir = join(tmp, `${name}-${seq++}`)
  mkdirSync(dir)
  writeFileSync(join(dir, 'data.mdb'), gunzipSync(readFileSync(join(fixtures, `${name}.mdb.gz`))))
  return dir
}

function scan (r: LmdbReader): Array<{ key: Buffer, value: Buffer }> {
  const out: Array<{ key: Buffer, value: Buffer }> = []
  const c = r.cursor()
  for (let ok = c.first(); ok; ok = c.next()) out.push({ key: Buffer.from(c.key), value: Buffer.from(c.value) })
  return out
}

/** Deterministic records with sizes around the inline/overflow boundary and a few large ones. */
function makeRecords (n: number, seed = 1): Array<{ key: Buffer, value: Buffer }> {
  let s = seed
  const rand = (): number => {
    s = (s * 1103515245 + 12345) & 0x7fffffff
    return s / 0x80000000
  }
  const out: Array<{ key: Buffer, value: Buffer }> = []
  for (let i = 0; i < n; i++) {
    const key = Buffer.from(`${String(i).padStart(8, '0')}_dir/img${i}.png`)
    const r = rand()
    const len = r < 0.02 ? 2000 + Math.floor(rand() * 30000) : r < 0.1 ? 2010 + Math.floor(rand() * 30) : Math.floor(rand() * 900)
    const value = Buffer.alloc(len)
    for (let j = 0; j < len; j++) value[j] = (i + j * 13) & 255
    out.push({ key, value })
  }
  return out
}

function writeDb (dir: string, records: Array<{ key: Buffer, value: Buffer }>): void {
  const w = createLmdbWriter(dir)
  for (const r of records) w.put(r.key, r.value)
  w.close()
}

describe('LMDB reader on a database written by liblmdb (mdb_load)', () => {
  it('iterates every record in key order with the exact bytes', () => {
    const r = openLmdb(fixtureDir('plain'))
    const expected = fixtureRecords()
    expect(r.count).toBe(expected.length)
    expect(r.stat()).toMatchObject({ pageSize: 4096, depth: 2, branchPages: 1, overflowPages: 2, entries: 60 })
    const got = scan(r)
    expect(got.length).toBe(expected.length)
    got.forEach((rec, i) => {
      expect(rec.key.toString()).toBe(expected[i]?.key.toString())
      expect(rec.value.equals(expected[i]?.value as Buffer)).toBe(true)
    })
    expect(got[3]?.value.length).toBe(0)
    expect(got[7]?.value.length).toBe(5000)
    r.close()
  })

  it('gets by key and seeks to the first key at or after a target', () => {
    const r = openLmdb(fixtureDir('plain'))
    const expected = fixtureRecords()
    expect(Buffer.from(r.get(Buffer.from('00000007_rec')) ?? []).equals(expected[7]?.value as Buffer)).toBe(true)
    expect(Buffer.from(r.get(Buffer.from('00000042_rec')) ?? []).equals(expected[42]?.value as Buffer)).toBe(true)
    expect(r.get(Buffer.from('00000042_re'))).toBeUndefined()
    expect(r.get(Buffer.from('zzz'))).toBeUndefined()
    const c = r.cursor()
    expect(c.seek(Buffer.from('00000031'))).toBe(true)
    expect(Buffer.from(c.key).toString()).toBe('00000031_rec')
    expect(c.next()).toBe(true)
    expect(Buffer.from(c.key).toString()).toBe('00000032_rec')
    expect(c.seek(Buffer.from('0'))).toBe(true)
    expect(Buffer.from(c.key).toString()).toBe('00000000_rec')
    expect(c.seek(Buffer.from('00000059_rec\0'))).toBe(false)
    // Every key and every point between keys, across the leaf boundary.
    for (let i = 0; i < 60; i++) {
      expect(c.seek(Buffer.from(`${String(i).padStart(8, '0')}`))).toBe(true)
      expect(Buffer.from(c.key).toString()).toBe(`${String(i).padStart(8, '0')}_rec`)
    }
    r.close()
  })

  it('rejects sorted-duplicate and named sub-databases with a clear message', () => {
    expect(() => openLmdb(fixtureDir('dupsort'))).toThrow(LmdbUnsupportedError)
    expect(() => openLmdb(fixtureDir('dupsort'))).toThrow(/dupsort/)
    const r = openLmdb(fixtureDir('subdb'))
    expect(() => r.cursor().first()).toThrow(/named sub-databases are not supported \(found sub-database "sub"\)/)
    r.close()
  })
})

describe('LMDB writer', () => {
  it('round-trips records through a multi-level tree with overflow pages', () => {
    const dir = join(tmp, 'rt')
    const records = makeRecords(9000)
    writeDb(dir, records)
    const r = openLmdb(dir)
    const st = r.stat()
    expect(st.entries).toBe(9000)
    expect(st.depth).toBeGreaterThanOrEqual(3)
    expect(st.overflowPages).toBeGreaterThan(0)
    const got = scan(r)
    expect(got.length).toBe(records.length)
    for (let i = 0; i < records.length; i++) {
      if (!got[i]?.key.equals(records[i]?.key as Buffer) || !got[i]?.value.equals(records[i]?.value as Buffer)) {
        throw new Error(`record ${i} differs`)
      }
    }
    for (const i of [0, 1, 4321, 8999]) {
      expect(Buffer.from(r.get(records[i]?.key as Buffer) ?? []).equals(records[i]?.value as Buffer)).toBe(true)
    }
    // The file is exactly the pages the meta page accounts for: nothing leaked, nothing missing.
    expect(statSync(join(dir, 'data.mdb')).size).toBe((st.lastPage + 1) * 4096)
    expect(st.lastPage + 1).toBe(2 + st.branchPages + st.leafPages + st.overflowPages)
    r.close()
  })

  it('puts the data of a record on overflow pages exactly when liblmdb does (node > 2038 bytes)', () => {
    const dir = join(tmp, 'threshold')
    const w = createLmdbWriter(dir)
    w.put(Buffer.from('00000000'), Buffer.alloc(2022, 1))
    w.put(Buffer.from('00000001'), Buffer.alloc(2023, 2))
    const st = w.close()
    expect(st.overflowPages).toBe(1)
    const r = openLmdb(dir)
    expect(scan(r).map((x) => x.value.length)).toEqual([2022, 2023])
    r.close()
  })

  it('writes an empty database that reads as empty', () => {
    const dir = join(tmp, 'empty')
    const st = createLmdbWriter(dir).close()
    expect(st).toMatchObject({ entries: 0, depth: 0, lastPage: 1 })
    const r = openLmdb(dir)
    expect(r.count).toBe(0)
    expect(r.cursor().first()).toBe(false)
    expect(r.cursor().seek(Buffer.from('a'))).toBe(false)
    expect(r.get(Buffer.from('a'))).toBeUndefined()
    r.close()
  })

  it('writes a single data file with noSubdir', () => {
    const file = join(tmp, 'single.mdb')
    const w = createLmdbWriter(file, { noSubdir: true })
    w.put(Buffer.from('k'), Buffer.from('v'))
    w.close()
    const r = openLmdb(file)
    expect(scan(r).map((x) => `${x.key.toString()}=${x.value.toString()}`)).toEqual(['k=v'])
    r.close()
  })

  it('rejects keys out of order, duplicate, empty or too long, and an existing database', () => {
    const dir = join(tmp, 'bad-keys')
    const w = createLmdbWriter(dir)
    w.put(Buffer.from('b'), Buffer.from('1'))
    expect(() => w.put(Buffer.from('a'), Buffer.from('2'))).toThrow(/increasing order/)
    expect(() => w.put(Buffer.from('b'), Buffer.from('2'))).toThrow(/increasing order/)
    expect(() => w.put(Buffer.alloc(0), Buffer.from('2'))).toThrow(/key length 0/)
    expect(() => w.put(Buffer.alloc(512, 0x7a), Buffer.from('2'))).toThrow(/key length 512/)
    w.put(Buffer.from('ba'), Buffer.from('3'))
    w.close()
    expect(() => createLmdbWriter(dir)).toThrow(DatabaseError)
    const r = openLmdb(dir)
    expect(scan(r).map((x) => x.key.toString())).toEqual(['b', 'ba'])
    r.close()
  })

  it('leaves no valid database behind when aborted or not closed', () => {
    const dir = join(tmp, 'unfinished')
    const w = createLmdbWriter(dir)
    for (const rec of makeRecords(500)) w.put(rec.key, rec.value)
    expect(() => openLmdb(dir)).toThrow(/not an LMDB database: .*meta page 0/)
    w.abort()
    expect(() => openLmdb(dir)).toThrow(/contains no data\.mdb/)
  })
})

describe('LMDB reader on bad input', () => {
  it('names the problem for paths and files that are not LMDB', () => {
    expect(() => openLmdb(join(tmp, 'nope'))).toThrow(DatabaseError)
    const empty = join(tmp, 'emptydir')
    mkdirSync(empty)
    expect(() => openLmdb(empty)).toThrow(`not an LMDB database: ${empty}: directory contains no data.mdb`)
    const text = join(tmp, 'text.txt')
    writeFileSync(text, 'name: "LeNet"\nlayer { type: "Data" }\n'.repeat(200))
    expect(() => openLmdb(text)).toThrow(/^not an LMDB database: .*text\.txt: bad magic/)
    const zero = join(tmp, 'zero.mdb')
    writeFileSync(zero, '')
    expect(() => openLmdb(zero)).toThrow(/file is empty/)
    const small = join(tmp, 'small.mdb')
    writeFileSync(small, 'x')
    expect(() => openLmdb(small)).toThrow(LmdbFormatError)
  })

  it('reports truncation instead of reading past the end', () => {
    const dir = join(tmp, 'trunc')
    writeDb(dir, makeRecords(3000, 7))
    const file = join(dir, 'data.mdb')
    const size = statSync(file).size
    truncateSync(file, Math.floor(size / 4096 / 2) * 4096)
    // The root is written last, so opening already fails; a cut mid-file fails at the first missing page.
    expect(() => scan(openLmdb(dir))).toThrow(/not an LMDB database: .*truncated: page \d+ ends at byte \d+ but the file has \d+ bytes/)
  })

  it('falls back to the other meta page and picks the newest valid one', () => {
    const dir = join(tmp, 'metas')
    writeDb(dir, makeRecords(50))
    const file = join(dir, 'data.mdb')
    expect(openLmdb(dir).count).toBe(50)
    const bytes = readFileSync(file)
    // Meta 0 (txn 0, empty) becomes the newest: txnid at byte 144 of page 0.
    const newer = Buffer.from(bytes)
    newer.writeUInt32LE(5, 144)
    writeFileSync(file, newer)
    expect(openLmdb(dir).count).toBe(0)
    // Meta 1 damaged: meta 0 is the only valid one.
    const damaged = Buffer.from(bytes)
    damaged.writeUInt32LE(0x12345678, 4096 + 16)
    writeFileSync(file, damaged)
    expect(openLmdb(dir).count).toBe(0)
    // Both damaged.
    damaged.writeUInt32LE(0x12345678, 16)
    writeFileSync(file, damaged)
    expect(() => openLmdb(dir)).toThrow(/not an LMDB database: .*bad magic 0x12345678 in meta page 0/)
  })

  it('rejects data format version 2 and big-endian files as unsupported', () => {
    const dir = join(tmp, 'v2')
    writeDb(dir, makeRecords(5))
    const file = join(dir, 'data.mdb')
    const bytes = readFileSync(file)
    const v2 = Buffer.from(bytes)
    v2.writeUInt32LE(2, 20)
    v2.writeUInt32LE(2, 4096 + 20)
    writeFileSync(file, v2)
    expect(() => openLmdb(dir)).toThrow(/unsupported LMDB database: .*data format version 2/)
    const be = Buffer.from(bytes)
    be.writeUInt32BE(0xBEEFC0DE, 16)
    be.writeUInt32BE(0xBEEFC0DE, 4096 + 16)
    writeFileSync(file, be)
    expect(() => openLmdb(dir)).toThrow(/big-endian/)
  })

  it('never hangs or crashes on corrupted pages: every failure is a typed LMDB error', () => {
    const dir = join(tmp, 'fuzz-src')
    writeDb(dir, makeRecords(400, 3))
    const clean = readFileSync(join(dir, 'data.mdb'))
    let s = 42
    const rand = (n: number): number => {
      s = (s * 1103515245 + 12345) & 0x7fffffff
      return s % n
    }
    const file = join(tmp, 'fuzz.mdb')
    let failures = 0
    for (let round = 0; round < 150; round++) {
      const b = Buffer.from(clean)
      // Damage page headers and node tables (beyond the metas) where it hurts most.
      for (let k = 0; k < 4; k++) {
        const page = 2 + rand(clean.length / 4096 - 2)
        b[page * 4096 + rand(64)] = rand(256)
      }
      writeFileSync(file, b)
      try {
        const r = openLmdb(file)
        const c = r.cursor()
        let n = 0
        for (let ok = c.first(); ok; ok = c.next()) {
          if (c.value.length < 0) throw new Error('negative length')
          if (++n > 100_000) throw new Error('runaway iteration')
        }
        for (let i = 0; i < 20; i++) r.get(Buffer.from(String(rand(400)).padStart(8, '0')))
        r.close()
      } catch (err) {
        if (!(err instanceof LmdbFormatError) && !(err instanceof LmdbUnsupportedError)) throw err
        failures++
      }
    }
    expect(failures).toBeGreaterThan(10)
  })
})
