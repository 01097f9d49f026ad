import { Readable } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { inspectArchive } from '../../../src/jobs/archive/inspect-archive.js'
import type { ImagesInspection } from '../../../src/jobs/archive/inspect-archive.js'
import { splitArchive } from '../../../src/jobs/archive/split-archive.js'
import { archiveErrorOf, collect, imageSpecs, listTar, streamOf, targz, tinyPng } from './archive-fixtures.js'
import type { TarSpec } from './archive-fixtures.js'

async function inspectImages (buf: Buffer): Promise<ImagesInspection> {
  const r = await inspectArchive(streamOf(buf))
  if (r.format !== 'images-tar-gz') throw new Error(`expected images, got ${r.format}`)
  return r
}

async function split (gz: Buffer, trainingFraction: number, chunk?: number): Promise<{ training: Buffer, test: Buffer, report: Awaited<ReturnType<typeof splitArchive>['done']> }> {
  const inspection = await inspectImages(gz)
  const s = splitArchive(streamOf(gz, chunk), { inspection, trainingFraction })
  const [training, test, report] = await Promise.all([collect(s.training), collect(s.test), s.done])
  return { training, test, report }
}

const paths = async (buf: Buffer): Promise<string[]> => (await listTar(buf)).map((e) => e.path)

describe('splitArchive', () => {
  it('splits 80/20 like the original: foo 1/1, bar 4/1, with modes and owners kept', async () => {
    const specs: TarSpec[] = [{ path: 'foo/' }, ...imageSpecs({ foo: ['1', '2'] }), { path: 'bar/' }, ...imageSpecs({ bar: ['1', '2', '3', '4', '5'] })]
      .map((s) => ({ ...s, uid: 100, gid: 101, mode: s.path.endsWith('/') ? 0o755 : 0o640 }))
    const gz = targz(specs)
    const { training, test, report } = await split(gz, 0.8)
    expect({ ...report.training.counts }).toEqual({ foo: 1, bar: 4 })
    expect({ ...report.test.counts }).toEqual({ foo: 1, bar: 1 })
    expect(report.training.imageCount).toBe(5)
    expect(report.test.imageCount).toBe(2)
    expect(report.labels).toEqual(['bar', 'foo'])
    const tr = await listTar(training)
    const te = await listTar(test)
    expect(tr.map((e) => e.path)).toEqual(['foo/1', 'bar/1', 'bar/3', 'bar/4', 'bar/5'])
    expect(te.map((e) => e.path)).toEqual(['foo/2', 'bar/2'])
    for (const e of [...tr, ...te]) {
      expect(e).toMatchObject({ type: 'File', uid: 100, gid: 101, mode: 0o640 })
    }
    // Bodies travel unchanged.
    const original = new Map((await listTar(gunzipSync(gz))).map((e) => [e.path, e.body]))
    for (const e of [...tr, ...te]) expect(e.body.equals(original.get(e.path) as Buffer)).toBe(true)
    expect(report.training.bytes).toBe(gunzipSync(training).length)
  })

  it('stratifies: each of 36 labels is split 4/1 and appears on both sides', async () => {
    const labels = [...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ']
    const fonts = ['Arial', 'ComicSansMS', 'CourierNew', 'TimesNewRoman', 'Verdana']
    const tree = Object.fromEntries(labels.map((l) => [l, fonts.map((f) => `${f}-5-0.png`)]))
    const { training, test, report } = await split(targz(imageSpecs(tree)), 0.8)
    for (const l of labels) {
      expect(report.training.counts[l], l).toBe(4)
      expect(report.test.counts[l], l).toBe(1)
    }
    expect((await inspectImages(training)).labels).toEqual(labels)
    expect((await inspectImages(test)).labels).toEqual(labels)
    expect(await paths(test)).toEqual(labels.map((l) => `${l}/ComicSansMS-5-0.png`))
  })

  it('is deterministic: byte-identical outputs, and the same assignment whatever the archive order', async () => {
    const names = Array.from({ length: 23 }, (_, i) => `img${i}.png`)
    const specs = imageSpecs({ cat: names, dog: names.slice(0, 11), owl: ['a.png', 'b.png'] })
    const gz = targz(specs)
    const a = await split(gz, 0.7)
    const b = await split(gz, 0.7, 1000)
    expect(a.training.equals(b.training)).toBe(true)
    expect(a.test.equals(b.test)).toBe(true)
    // Reverse and interleave the entries: the same files must land on the same sides.
    const shuffled = [...specs].reverse().sort((x, y) => (x.path.length % 3) - (y.path.length % 3))
    const c = await split(targz(shuffled), 0.7)
    expect((await paths(c.training)).sort()).toEqual((await paths(a.training)).sort())
    expect((await paths(c.test)).sort()).toEqual((await paths(a.test)).sort())
    expect({ ...a.report.training.counts }).toEqual({ cat: 16, dog: 8, owl: 1 })
  })

  it('re-emits normalised <label>/<file> names: wrapper, ./ and junk dropped', async () => {
    const gz = targz([
      { path: './' }, { path: './mnist/' }, { path: './mnist/0/' },
      ...imageSpecs({ 0: ['a.png', 'b.png'], 1: ['c.png', 'd.png'] }, './mnist/'),
      { path: './mnist/0/._a.png', body: 'junk' }, { path: '__MACOSX/mnist/0/._a.png', body: 'junk' }
    ])
    const { training, test } = await split(gz, 0.5)
    expect(await paths(training)).toEqual(['0/a.png', '1/c.png'])
    expect(await paths(test)).toEqual(['0/b.png', '1/d.png'])
  })

  it('treats labels named like Object properties as plain labels', async () => {
    const specs = [...imageSpecs({ constructor: ['1', '2'] }), { path: '__proto__/1', body: tinyPng(7) }, { path: '__proto__/2', body: tinyPng(8) }]
    const { training, report } = await split(targz(specs), 0.5)
    expect(report.labels).toEqual(['__proto__', 'constructor'])
    expect(Object.entries(report.training.counts).sort()).toEqual([['__proto__', 1], ['constructor', 1]])
    expect(await paths(training)).toEqual(['constructor/1', '__proto__/1'])
  })

  it('clears setuid, setgid and sticky bits', async () => {
    const { training } = await split(targz([{ path: 'a/1.png', body: tinyPng(), mode: 0o6755 }, { path: 'a/2.png', body: tinyPng(2), mode: 0o1644 }]), 0.5)
    expect((await listTar(training))[0]?.mode).toBe(0o755)
  })

  it('fails the pass and both outputs on a bad entry', async () => {
    const good = targz(imageSpecs({ a: ['1', '2', '3'] }))
    const inspection = await inspectImages(good)
    const bad = targz([...imageSpecs({ a: ['1', '2'] }), { path: 'a/3', type: 'SymbolicLink', linkpath: '/etc/shadow' }])
    const s = splitArchive(streamOf(bad), { inspection, trainingFraction: 0.5 })
    const results = await Promise.allSettled([collect(s.training), collect(s.test)])
    const err = await archiveErrorOf(s.done)
    expect(err.problem).toBe('link')
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
  })

  it('notices when the archive is not the one that was inspected', async () => {
    const inspection = await inspectImages(targz(imageSpecs({ a: ['1', '2', '3'] })))
    const other = splitArchive(streamOf(targz(imageSpecs({ a: ['1', '2', '4'] }))), { inspection, trainingFraction: 0.5 })
    collect(other.training).catch(() => {})
    collect(other.test).catch(() => {})
    const err = await archiveErrorOf(other.done)
    expect(err.problem).toBe('changed')
    expect(err.message).toContain("'a/4'")
    const fewer = splitArchive(streamOf(targz(imageSpecs({ a: ['1', '2'] }))), { inspection, trainingFraction: 0.5 })
    collect(fewer.training).catch(() => {})
    collect(fewer.test).catch(() => {})
    expect((await archiveErrorOf(fewer.done)).message).toContain("label 'a' has 2 images instead of 3")
  })

  it('throws at once for a fraction that was not normalised', async () => {
    const inspection = await inspectImages(targz(imageSpecs({ a: ['1', '2'] })))
    expect(() => splitArchive(streamOf(Buffer.alloc(0)), { inspection, trainingFraction: 70 })).toThrow(RangeError)
  })

  it('does not hang when a consumer gives up on its output', async () => {
    const names = Array.from({ length: 400 }, (_, i) => `${i}.png`)
    const gz = targz(names.map((n, i) => ({ path: `a/${n}`, body: Buffer.concat([tinyPng(i), Buffer.alloc(8192, i)]) })))
    const inspection = await inspectImages(gz)
    const s = splitArchive(streamOf(gz), { inspection, trainingFraction: 0.5 })
    collect(s.test).catch(() => {})
    s.training.destroy(new Error('blob store went away'))
    await expect(s.done).rejects.toThrow(/blob store went away|closed before/)
  })

  it('works with a caller that only attaches to the outputs later', async () => {
    const gz = targz(imageSpecs({ a: ['1', '2', '3', '4'] }))
    const inspection = await inspectImages(gz)
    const s = splitArchive(Readable.from([gz]), { inspection, trainingFraction: 0.5 })
    await new Promise((resolve) => setTimeout(resolve, 20))
    const [tr, te] = await Promise.all([collect(s.training), collect(s.test)])
    await s.done
    expect(await paths(tr)).toEqual(['a/1', 'a/3'])
    expect(await paths(te)).toEqual(['a/2', 'a/4'])
  })
})
