import { mkdtemp, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'
import { readFileSync } from 'node:fs'
import { ClassicLevel } from 'classic-level'
import { create as createTar } from 'tar'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { extractArchive } from '../../../src/jobs/archive/extract-archive.js'
import { archiveErrorOf, collect, imageSpecs, streamOf, tarBytes, targz, tinyPng } from './archive-fixtures.js'
import type { TarSpec } from './archive-fixtures.js'

const lmdbBytes = gunzipSync(readFileSync(new URL('../../fixtures/lmdb/plain.mdb.gz', import.meta.url)))

let root: string
let target: string

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'et-extract-'))
  target = path.join(root, 'work', 'training-data')
  await mkdir(path.join(root, 'work'))
  await writeFile(path.join(root, 'work', 'solver.prototxt'), 'net: "x"\n')
})

afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

/** Every path under dir (relative), with size and mode: a fingerprint of a directory tree. */
async function snapshot (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const name of await readdir(dir, { recursive: true })) {
    const st = await stat(path.join(dir, name)).catch(() => undefined)
    out.push(`${name} ${st?.isDirectory() === true ? 'dir' : st?.size ?? 'dangling'} ${(st?.mode ?? 0).toString(8)}`)
  }
  return out.sort()
}

describe('extractArchive: images', () => {
  it('writes <label>/<file> under the target and returns the sorted relative paths', async () => {
    const specs = [{ path: 'mnist/' }, ...imageSpecs({ b: ['2.png', '1.png'], a: ['x.png'], 'a-b': ['y.png'] }, 'mnist/'), { path: 'mnist/a/._x.png', body: 'junk' }, { path: '.DS_Store', body: 'junk' }]
    const r = await extractArchive(streamOf(targz(specs)), target)
    expect(r.format).toBe('images-tar-gz')
    if (r.format !== 'images-tar-gz') return
    expect(r.labels).toEqual(['a', 'a-b', 'b'])
    expect(r.files).toEqual(['a-b/y.png', 'a/x.png', 'b/1.png', 'b/2.png'])
    expect((await readdir(target)).sort()).toEqual(['a', 'a-b', 'b'])
    expect(await readdir(path.join(target, 'a'))).toEqual(['x.png'])
    for (const s of specs) {
      if (s.body === undefined || s.path.includes('._') || s.path.includes('DS_Store')) continue
      const rel = s.path.replace(/^mnist\//, '')
      expect((await readFile(path.join(target, rel))).equals(Buffer.from(s.body))).toBe(true)
    }
  })

  it('sanitises modes: no setuid/setgid/sticky, no group or world write, owner can read and write', async () => {
    await extractArchive(streamOf(targz([
      { path: 'a/suid.png', body: tinyPng(1), mode: 0o4777 },
      { path: 'a/ro.png', body: tinyPng(2), mode: 0o400 },
      { path: 'a/plain.png', body: tinyPng(3), mode: 0o644 }
    ])), target)
    const mode = async (f: string): Promise<number> => (await stat(path.join(target, 'a', f))).mode & 0o7777
    expect(await mode('suid.png')).toBe(0o755 & ~process.umask())
    expect(await mode('ro.png')).toBe(0o600)
    expect(await mode('plain.png')).toBe(0o644 & ~process.umask())
  })

  it('streams files bigger than the small-file buffer to disk', async () => {
    const big = Buffer.concat([tinyPng(9), Buffer.alloc(3 * 1024 * 1024, 7)])
    const r = await extractArchive(streamOf(targz([{ path: 'a/big.png', body: big }, { path: 'a/small.png', body: tinyPng() }]), 4096), target)
    expect(r.files).toEqual(['a/big.png', 'a/small.png'])
    expect((await readFile(path.join(target, 'a', 'big.png'))).equals(big)).toBe(true)
  })

  it('extracts what tar@7 packs from a real directory, and round-trips a split output', async () => {
    const src = path.join(root, 'src')
    for (const [label, n] of [['cat', 3], ['dog', 2]] as const) {
      await mkdir(path.join(src, 'pets', label), { recursive: true })
      for (let i = 0; i < n; i++) await writeFile(path.join(src, 'pets', label, `${i}.png`), tinyPng(i))
    }
    const gz = await collect(createTar({ gzip: true, cwd: src, portable: true }, ['pets']))
    const r = await extractArchive(streamOf(gz), target)
    expect(r.files).toEqual(['cat/0.png', 'cat/1.png', 'cat/2.png', 'dog/0.png', 'dog/1.png'])
  })
})

describe('extractArchive: databases', () => {
  it('puts an LMDB directly in the target, whatever folder it came in', async () => {
    const r = await extractArchive(streamOf(targz([{ path: 'mnist_train_lmdb/' }, { path: 'mnist_train_lmdb/data.mdb', body: lmdbBytes }, { path: 'mnist_train_lmdb/lock.mdb', body: Buffer.alloc(8192) }])), target)
    expect(r).toMatchObject({ format: 'lmdb', files: ['data.mdb', 'lock.mdb'] })
    expect((await readFile(path.join(target, 'data.mdb'))).equals(lmdbBytes)).toBe(true)
    expect((await readdir(target)).sort()).toEqual(['data.mdb', 'lock.mdb'])
  })

  it('round-trips a real LevelDB written by classic-level', async () => {
    const dbDir = path.join(root, 'src', 'train_leveldb')
    await mkdir(path.dirname(dbDir), { recursive: true })
    const db = new ClassicLevel<string, string>(dbDir)
    for (let i = 0; i < 50; i++) await db.put(`${String(i).padStart(8, '0')}`, `datum-${i}`)
    await db.close()
    const gz = await collect(createTar({ gzip: true, cwd: path.dirname(dbDir), portable: true }, ['train_leveldb']))
    const r = await extractArchive(streamOf(gz), target)
    expect(r.format).toBe('leveldb')
    expect(r.files).toContain('CURRENT')
    const copy = new ClassicLevel<string, string>(target)
    try {
      expect(await copy.get('00000042')).toBe('datum-42')
      expect((await copy.keys().all()).length).toBe(50)
    } finally {
      await copy.close()
    }
  })
})

describe('extractArchive: never writes outside the target', () => {
  const attacks: Array<[string, string, TarSpec[]]> = [
    ['../ entries', 'unsafe-path', [...imageSpecs({ a: ['1.png'] }), { path: '../escaped.png', body: tinyPng() }, { path: 'a/../../../escaped2.png', body: tinyPng() }]],
    ['an absolute path', 'unsafe-path', [...imageSpecs({ a: ['1.png'] }), { path: `${'/tmp'}/et-escaped.png`, body: tinyPng() }]],
    ['a symlink, then a file through it', 'link', [{ path: 'a/', type: 'Directory' }, { path: 'a/link', type: 'SymbolicLink', linkpath: '../..' }, { path: 'a/link/escaped.png', body: tinyPng() }]],
    ['a hard link to a file outside', 'link', [...imageSpecs({ a: ['1.png'] }), { path: 'a/2.png', type: 'Link', linkpath: '../../work/solver.prototxt' }]],
    ['a device', 'special-file', [...imageSpecs({ a: ['1.png'] }), { path: 'a/null', type: 'CharacterDevice' }]],
    ['a non-image', 'not-an-image', [...imageSpecs({ a: ['1.png', '2.png'] }), { path: 'a/evil.sh', body: '#!/bin/sh\nrm -rf ~\n', mode: 0o755 }]],
    ['a truncated download', 'truncated', []],
    ['a decompression bomb', 'compression-ratio', []]
  ]

  it.each(attacks)('%s: fails (%s), leaves the target empty and the parent untouched', async (name, problem, specs) => {
    let gz = targz(specs)
    if (name === 'a truncated download') gz = targz(imageSpecs({ a: ['1.png', '2.png', '3.png'] })).subarray(0, 200)
    if (name === 'a decompression bomb') gz = targz([{ path: 'a/1.png', body: tinyPng() }, { path: 'a/2.png', body: Buffer.concat([tinyPng(), Buffer.alloc(40 * 1024 * 1024)]) }])
    const before = await snapshot(root)
    const err = await archiveErrorOf(extractArchive(streamOf(gz, 8192), target))
    expect(err.problem).toBe(problem)
    expect(await readdir(target)).toEqual([])
    const after = await snapshot(root)
    expect(after.filter((p) => !p.startsWith(path.join('work', 'training-data')))).toEqual(before)
    await expect(stat('/tmp/et-escaped.png')).rejects.toThrow()
  })

  it('refuses a target that is not empty, and writes nothing', async () => {
    await mkdir(target)
    await writeFile(path.join(target, 'keep.txt'), 'x')
    await expect(extractArchive(streamOf(targz(imageSpecs({ a: ['1.png'] }))), target)).rejects.toThrow(/not empty/)
    expect(await readdir(target)).toEqual(['keep.txt'])
  })

  it('refuses a target that is a symbolic link', async () => {
    const elsewhere = path.join(root, 'elsewhere')
    await mkdir(elsewhere)
    await symlink(elsewhere, target)
    await expect(extractArchive(streamOf(targz(imageSpecs({ a: ['1.png'] }))), target)).rejects.toThrow(/not a directory/)
    expect(await readdir(elsewhere)).toEqual([])
  })

  it('cleans up after a failure found only at the end (an empty label)', async () => {
    const err = await archiveErrorOf(extractArchive(streamOf(tarBytes([...imageSpecs({ a: ['1.png', '2.png'] }), { path: 'b/' }])), target))
    expect(err.problem).toBe('empty-label')
    expect(await readdir(target)).toEqual([])
  })
})
