import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { gunzipSync, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { ArchiveError } from '../../../src/jobs/archive/archive-error.js'
import { PermanentJobError } from '../../../src/lib/errors.js'
import { inspectArchive } from '../../../src/jobs/archive/inspect-archive.js'
import type { ImagesInspection } from '../../../src/jobs/archive/inspect-archive.js'
import { archiveErrorOf, countingStream, imageSpecs, streamOf, tarBytes, targz, tinyPng } from './archive-fixtures.js'
import type { TarSpec } from './archive-fixtures.js'

const png = tinyPng(1)
const lmdbBytes = gunzipSync(readFileSync(new URL('../../fixtures/lmdb/plain.mdb.gz', import.meta.url)))

async function inspectImages (buf: Buffer, chunk?: number): Promise<ImagesInspection> {
  const r = await inspectArchive(streamOf(buf, chunk))
  if (r.format !== 'images-tar-gz') throw new Error(`expected images, got ${r.format}`)
  return r
}

async function problemOf (specs: TarSpec[], options: Parameters<typeof inspectArchive>[1] = {}): Promise<ArchiveError> {
  return await archiveErrorOf(inspectArchive(streamOf(targz(specs)), options))
}

describe('inspectArchive: images', () => {
  it('reports sorted labels, counts, image count and sizes of a <label>/<file> tar.gz', async () => {
    const gz = targz([{ path: 'foo/' }, ...imageSpecs({ foo: ['1.png', '2.png'] }), { path: 'bar/' }, ...imageSpecs({ bar: ['b.png', 'a.png', 'c.png'] })])
    const r = await inspectImages(gz)
    expect(r.labels).toEqual(['bar', 'foo'])
    expect({ ...r.counts }).toEqual({ bar: 3, foo: 2 })
    expect(r.imageCount).toBe(5)
    expect(r.wrapper).toBeUndefined()
    expect(r.files.get('bar')).toEqual(['a.png', 'b.png', 'c.png'])
    expect(r.compression).toBe('gzip')
    expect(r.compressedBytes).toBe(gz.length)
    expect(r.bytes).toBe(gunzipSync(gz).length)
    expect(r.imageFormats).toEqual({ png: 5 })
  })

  it('reads a plain .tar and gives the same answer whatever the chunking', async () => {
    const tar = tarBytes(imageSpecs({ a: ['1', '2', '3'], b: ['x'] }))
    const whole = await inspectImages(tar)
    expect(whole.compression).toBe('none')
    expect(whole.bytes).toBe(tar.length)
    for (const size of [1, 7, 511, 513]) {
      const r = await inspectImages(tar, size)
      expect(r.labels).toEqual(['a', 'b'])
      expect(r.imageCount).toBe(4)
    }
    const r = await inspectImages(gzipSync(tar), 3)
    expect(r.files.get('a')).toEqual(['1', '2', '3'])
  })

  it('strips one wrapper folder and a ./ prefix', async () => {
    const r = await inspectImages(targz([{ path: './' }, { path: './mnist/' }, { path: './mnist/0/' }, ...imageSpecs({ 0: ['a.png'], 1: ['b.png'] }, './mnist/')]))
    expect(r.wrapper).toBe('mnist')
    expect(r.labels).toEqual(['0', '1'])
  })

  it('does not take a lone label folder for a wrapper', async () => {
    const r = await inspectImages(targz(imageSpecs({ cats: ['1.png', '2.png'] })))
    expect(r.wrapper).toBeUndefined()
    expect(r.labels).toEqual(['cats'])
  })

  it('skips macOS and Windows junk instead of failing', async () => {
    const junk = Buffer.from('\x00\x05\x16\x07junk')
    const r = await inspectImages(targz([
      ...imageSpecs({ foo: ['1.png'] }),
      { path: 'foo/._1.png', body: junk },
      { path: '.DS_Store', body: junk },
      { path: 'foo/.DS_Store', body: junk },
      { path: '__MACOSX/' },
      { path: '__MACOSX/foo/._1.png', body: junk },
      { path: '__MACOSX/foo/evil', type: 'SymbolicLink', linkpath: '/etc/passwd' },
      { path: 'foo/Thumbs.db', body: junk }
    ]))
    expect(r.labels).toEqual(['foo'])
    expect(r.imageCount).toBe(1)
  })

  it('handles names longer than 100 bytes (pax) and non-ASCII names', async () => {
    const long = 'x'.repeat(180) + '.png'
    const r = await inspectImages(targz([{ path: `caf\u00e9/${long}`, body: png }, { path: 'caf\u00e9/\u00e9t\u00e9.png', body: png }]))
    expect(r.labels).toEqual(['caf\u00e9'])
    expect(r.files.get('caf\u00e9')).toEqual([long, '\u00e9t\u00e9.png'])
  })

  it('sniffs every supported image format by its magic bytes', async () => {
    const bmp = Buffer.alloc(40)
    bmp.write('BM')
    bmp.writeUInt32LE(40, 14)
    const heads: Record<string, Buffer> = {
      'a.png': png,
      'b.jpg': Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]),
      'c.gif': Buffer.from('GIF89a\x01\x00\x01\x00'),
      'd.bmp': bmp,
      'e.webp': Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 '),
      'f.pgm': Buffer.from('P5\n2 2\n255\n\x00\x01\x02\x03'),
      'g.ppm': Buffer.from('P6 1 1 255\n\x01\x02\x03'),
      'h.tif': Buffer.from('II*\x00\x08\x00\x00\x00'),
      'i.tif': Buffer.from('MM\x00*\x00\x00\x00\x08')
    }
    const r = await inspectImages(targz(Object.entries(heads).map(([name, body]) => ({ path: `l/${name}`, body }))))
    expect(r.imageFormats).toEqual({ png: 1, jpeg: 1, gif: 1, bmp: 1, webp: 1, pnm: 2, tiff: 2 })
    const err = await archiveErrorOf(inspectArchive(streamOf(targz([{ path: 'l/a.png', body: png }, { path: 'l/d.bmp', body: bmp }])), { imageFormats: ['png', 'jpeg'] }))
    expect(err.problem).toBe('not-an-image')
    expect(err.message).toContain("'l/d.bmp' is a BMP image, which is not accepted here")
  })

  it('reads the 36-label alphabet layout (0-9 then A-Z)', async () => {
    const labels = [...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ']
    const fonts = ['Arial', 'ComicSansMS', 'CourierNew', 'TimesNewRoman', 'Verdana']
    const specs: TarSpec[] = []
    for (const l of [...labels].reverse()) {
      specs.push({ path: `${l}/` })
      for (const f of fonts) specs.push({ path: `${l}/${f}-5-0.png`, body: png })
    }
    const r = await inspectImages(targz(specs))
    expect(specs.length).toBe(216)
    expect(r.labels).toEqual(labels)
    expect(r.imageCount).toBe(180)
  })
})

describe('inspectArchive: databases', () => {
  it('recognises an LMDB at the top level and one folder down', async () => {
    const top = await inspectArchive(streamOf(targz([{ path: 'data.mdb', body: lmdbBytes }, { path: 'lock.mdb', body: Buffer.alloc(8192) }])))
    expect(top).toMatchObject({ format: 'lmdb', root: '', files: ['data.mdb', 'lock.mdb'] })
    const nested = await inspectArchive(streamOf(targz([{ path: 'mnist_train_lmdb/' }, { path: 'mnist_train_lmdb/data.mdb', body: lmdbBytes }, { path: '._mnist_train_lmdb', body: 'x' }])))
    expect(nested).toMatchObject({ format: 'lmdb', root: 'mnist_train_lmdb', files: ['data.mdb'] })
  })

  it('recognises a LevelDB directory', async () => {
    const r = await inspectArchive(streamOf(targz(['CURRENT', 'LOCK', 'LOG', 'MANIFEST-000002', '000003.log', '000005.ldb'].map((n) => ({ path: `train_leveldb/${n}`, body: `${n}\n` })))))
    expect(r).toMatchObject({ format: 'leveldb', root: 'train_leveldb' })
    if (r.format !== 'leveldb') throw new Error('unreachable')
    expect(r.files).toEqual(['000003.log', '000005.ldb', 'CURRENT', 'LOCK', 'LOG', 'MANIFEST-000002'])
  })

  it('lets database files exceed the per-image size limit', async () => {
    const r = await inspectArchive(streamOf(targz([{ path: 'data.mdb', body: lmdbBytes }])), { limits: { maxFileBytes: 1024 } })
    expect(r.format).toBe('lmdb')
  })

  it('refuses stray files, two databases and databases nested too deep', async () => {
    expect((await problemOf([{ path: 'db/data.mdb', body: lmdbBytes }, { path: 'README', body: 'hi' }])).message).toContain("'README' does not belong in an archive holding an LMDB database")
    expect((await problemOf([{ path: 'a/data.mdb', body: lmdbBytes }, { path: 'b/data.mdb', body: lmdbBytes }])).message).toContain('more than one database')
    const deep = await problemOf([{ path: 'a/b/data.mdb', body: lmdbBytes }])
    expect(deep.problem).toBe('layout')
    expect(deep.message).toContain('nested too deep')
    const mixed = await problemOf([...imageSpecs({ foo: ['1.png'] }), { path: 'foo/data.mdb', body: lmdbBytes }])
    expect(mixed.problem).toBe('not-an-image')
    expect(mixed.message).toContain("'foo/data.mdb' is not an image")
  })
})

describe('inspectArchive: bad input', () => {
  it('explains HTML served instead of an archive', async () => {
    const err = await archiveErrorOf(inspectArchive(streamOf(Buffer.from('<!DOCTYPE html><html><body>Not Found</body></html>'))))
    expect(err).toBeInstanceOf(PermanentJobError)
    expect(err.code).toBe('ET_BAD_ARCHIVE')
    expect(err.problem).toBe('not-an-archive')
    expect(err.message).toBe('the file is not a .tar.gz archive (it starts with bytes 3c 21 44 4f, which looks like HTML — is the URL a web page?)')
  })

  it('names other wrong formats', async () => {
    const zip = await archiveErrorOf(inspectArchive(streamOf(Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(600)]))))
    expect(zip.message).toContain('ZIP archive')
    const idx = await archiveErrorOf(inspectArchive(streamOf(gzipSync(Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0xea, 0x60]), Buffer.alloc(2000)])))))
    expect(idx.problem).toBe('not-a-tar')
    expect(idx.message).toContain('gzip-compressed, but what is inside is not a tar archive')
    expect(idx.message).toContain('MNIST IDX')
    const twice = await archiveErrorOf(inspectArchive(streamOf(gzipSync(targz(imageSpecs({ a: ['1'] }))))))
    expect(twice.message).toContain('compressed twice')
    const single = await archiveErrorOf(inspectArchive(streamOf(png)))
    expect(single.message).toContain('single PNG image')
  })

  it('refuses an empty file, an empty archive and an archive of empty folders', async () => {
    expect((await archiveErrorOf(inspectArchive(streamOf(Buffer.alloc(0))))).message).toBe('the file is empty (0 bytes)')
    const empty = await archiveErrorOf(inspectArchive(streamOf(targz([]))))
    expect(empty.problem).toBe('empty')
    expect(empty.message).toContain('holds no files')
    expect((await problemOf([{ path: 'a/' }, { path: 'b/' }])).message).toContain('only empty folders')
    expect((await problemOf([{ path: 'junk/._x', body: 'x' }])).problem).toBe('empty')
  })

  it('refuses paths that climb out or are absolute', async () => {
    for (const path of ['../evil.png', 'foo/../../evil.png', '/etc/passwd', 'C:/x.png', 'foo\\..\\x.png']) {
      const err = await problemOf([...imageSpecs({ foo: ['1.png'] }), { path, body: png }])
      expect(err.problem, path).toBe('unsafe-path')
      expect(err.message).toContain(`'${path.replaceAll('\\', '\\\\')}'`)
    }
  })

  it('refuses links, devices and exotic entry types', async () => {
    const link = await problemOf([...imageSpecs({ foo: ['1.png'] }), { path: 'foo/2.png', type: 'SymbolicLink', linkpath: '../../etc/passwd' }])
    expect(link.problem).toBe('link')
    expect(link.message).toBe("'foo/2.png' is a symbolic link (to '../../etc/passwd'); archives may hold only files and folders")
    expect((await problemOf([{ path: 'foo/2.png', type: 'Link', linkpath: 'foo/1.png' }])).message).toContain('hard link')
    expect((await problemOf([{ path: 'foo/dev', type: 'CharacterDevice' }])).problem).toBe('special-file')
    expect((await problemOf([{ path: 'foo/fifo', type: 'FIFO' }])).problem).toBe('special-file')
    expect((await problemOf([{ path: 'foo/s.png', type: 'SparseFile', body: png }])).problem).toBe('unsupported-entry')
  })

  it('refuses entries deeper than <label>/<file> and files at the top level', async () => {
    const deep = await problemOf(imageSpecs({ 'a/b/c': ['1.png'] }))
    expect(deep.problem).toBe('too-deep')
    expect(deep.message).toContain("'a/b/c/1.png' is nested too deep")
    expect((await problemOf([...imageSpecs({ 'x/a': ['1.png'], 'y/b': ['1.png'] })])).problem).toBe('too-deep')
    expect((await problemOf([{ path: 'a/b/c/' }, ...imageSpecs({ a: ['1.png'] })])).problem).toBe('too-deep')
    const top = await problemOf([...imageSpecs({ a: ['1.png'] }), { path: 'extra.png', body: png }])
    expect(top.problem).toBe('top-level-file')
    expect(top.message).toContain("'extra.png' is not inside a label folder")
    expect((await problemOf([...imageSpecs({ 'w/a': ['1.png'] }), { path: 'w/readme.png', body: png }])).problem).toBe('top-level-file')
  })

  it('names the non-image, wherever it sits', async () => {
    const after = await problemOf([...imageSpecs({ foo: ['1.png'] }), { path: 'foo/notes.txt', body: 'hello' }, ...imageSpecs({ foo: ['2.png'] })])
    expect(after.problem).toBe('not-an-image')
    expect(after.message).toContain("'foo/notes.txt' is not an image (expected PNG, JPEG")
    const before = await problemOf([{ path: 'foo/notes.txt', body: 'hello' }, ...imageSpecs({ foo: ['1.png'] })])
    expect(before.message).toContain("'foo/notes.txt' is not an image")
    const only = await problemOf([{ path: 'foo/notes.txt', body: 'hello' }])
    expect(only.message).toContain('holds no LMDB')
  })

  it('refuses a label folder without images, duplicates and unusable names', async () => {
    const empty = await problemOf([...imageSpecs({ foo: ['1.png'] }), { path: 'bar/' }])
    expect(empty.problem).toBe('empty-label')
    expect(empty.message).toContain("label 'bar'")
    expect((await problemOf([...imageSpecs({ foo: ['1.png'] }), ...imageSpecs({ foo: ['1.png'] })])).problem).toBe('duplicate')
    expect((await problemOf([...imageSpecs({ foo: ['1.png'] }), { path: 'foo/1.png/' }])).problem).toBe('duplicate')
    const space = await problemOf(imageSpecs({ 'my cats': ['1.png'] }))
    expect(space.problem).toBe('bad-name')
    expect(space.message).toContain('whitespace')
    expect((await problemOf(imageSpecs({ foo: ['a\nb.png'] }))).problem).toBe('bad-name')
  })

  it('enforces the entry, size and per-file limits', async () => {
    const specs = imageSpecs({ a: ['1', '2', '3'], b: ['1', '2'] })
    const many = await problemOf(specs, { limits: { maxEntries: 4 } })
    expect(many.problem).toBe('too-many-entries')
    expect(many.message).toContain('more than 4 entries')
    const big = await problemOf(specs, { limits: { maxBytes: 2048 } })
    expect(big.problem).toBe('too-large')
    expect(big.message).toContain('more than 2 KiB')
    // The header alone claims 100 MiB: refused before a body byte is read.
    const huge = await problemOf([{ path: 'a/huge.png', body: png, size: 100 * 1024 * 1024 }], {})
    expect(huge.problem).toBe('file-too-large')
    expect(huge.message).toBe("'a/huge.png' is 100 MiB, more than the 64 MiB allowed for one image")
  })

  it('stops a decompression bomb early', async () => {
    const bomb = Buffer.alloc(60 * 1024 * 1024)
    png.copy(bomb)
    const gz = gzipSync(tarBytes([{ path: 'a/bomb.png', body: bomb }]), { level: 9 })
    expect(gz.length).toBeLessThan(bomb.length / 500)
    const { stream, pulled } = countingStream(gz, 16 * 1024)
    const err = await archiveErrorOf(inspectArchive(stream))
    expect(err.problem).toBe('compression-ratio')
    expect(err.message).toContain('more than 200 times its compressed size')
    expect(pulled()).toBeLessThan(gz.length)
  })

  it('reports a truncated download', async () => {
    const gz = targz(imageSpecs({ a: ['1', '2', '3', '4'], b: ['1', '2'] }))
    for (const cut of [10, gz.length >> 1, gz.length - 4]) {
      const err = await archiveErrorOf(inspectArchive(streamOf(gz.subarray(0, cut))))
      expect(err.problem, `cut at ${cut}`).toBe('truncated')
      expect(err.message).toContain('interrupted')
    }
    const tar = tarBytes(imageSpecs({ a: ['1', '2'] }))
    expect((await archiveErrorOf(inspectArchive(streamOf(tar.subarray(0, 700))))).message).toContain("in the middle of 'a/1'")
    expect((await archiveErrorOf(inspectArchive(streamOf(tarBytes(imageSpecs({ a: ['1'] }), { end: false }))))).message).toContain('end-of-archive marker')
  })

  it('reports corrupt gzip data and a damaged tar header', async () => {
    const gz = Buffer.from(targz(imageSpecs({ a: ['1', '2', '3'] })))
    const bad = Buffer.from(gz)
    for (let i = 20; i < 40; i++) bad[i] = (bad[i] as number) ^ 0x55
    expect((await archiveErrorOf(inspectArchive(streamOf(bad)))).problem).toBe('corrupt')
    const crc = Buffer.from(gz)
    crc[crc.length - 6] = (crc[crc.length - 6] as number) ^ 1
    const crcErr = await archiveErrorOf(inspectArchive(streamOf(crc)))
    expect(crcErr.problem).toBe('corrupt')
    const tar = tarBytes(imageSpecs({ a: ['1', '2'] }))
    tar[1024 + 10] = 0x41
    const header = await archiveErrorOf(inspectArchive(streamOf(tar)))
    expect(header.problem).toBe('corrupt')
    expect(header.message).toContain('at byte 1024 has a bad checksum')
  })
})

describe('inspectArchive: the input stream', () => {
  it('passes a failing download through unchanged, so the job can retry it', async () => {
    const gz = targz(imageSpecs({ a: ['1', '2', '3'] }))
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
    async function * download (): AsyncGenerator<Buffer> {
      yield gz.subarray(0, 40)
      throw reset
    }
    await expect(inspectArchive(Readable.from(download()))).rejects.toBe(reset)
  })

  it('releases the input when it refuses the archive early', async () => {
    const specs: TarSpec[] = [{ path: 'a/x', type: 'SymbolicLink', linkpath: '/' }, ...imageSpecs({ a: Array.from({ length: 300 }, (_, i) => `${i}.png`) })]
    const tar = tarBytes(specs)
    const input = streamOf(tar, 1024)
    await archiveErrorOf(inspectArchive(input))
    expect(input.destroyed).toBe(true)
  })

  it('stops when aborted and rejects with the reason', async () => {
    const controller = new AbortController()
    const gz = targz(imageSpecs({ a: ['1'] }))
    async function * slow (): AsyncGenerator<Buffer> {
      yield gz.subarray(0, 10)
      await new Promise((resolve) => setTimeout(resolve, 5_000))
      yield gz.subarray(10)
    }
    const input = Readable.from(slow())
    const reason = new Error('job cancelled')
    setTimeout(() => controller.abort(reason), 20)
    const started = Date.now()
    await expect(inspectArchive(input, { signal: controller.signal })).rejects.toBe(reason)
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('is an ArchiveError, hence a PermanentJobError, for every archive problem', () => {
    const err = new ArchiveError('empty', 'x')
    expect(err).toBeInstanceOf(PermanentJobError)
    expect(err.name).toBe('ArchiveError')
  })
})
