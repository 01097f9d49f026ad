import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runConvertImageset } from '../../../src/engine/tools/convert-imageset.js'
import { openKvReader } from '../../../src/engine/data/kv-store.js'
import type { Backend } from '../../../src/engine/data/backend.js'
import { decodeDatum } from '../../../src/engine/proto/binary.js'
import type { Datum } from '../../../src/engine/proto/caffe.js'
import { makePng } from '../data/png-writer.js'
import { testIo } from './tool-test-io.js'

let tmp: string
let root: string
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'et-imageset-'))
  root = join(tmp, 'images')
  mkdirSync(join(root, 'cats'), { recursive: true })
  // 2x2 RGB images, colour i: every pixel (R, G, B) = (i, 10 + i, 20 + i)
  for (let i = 0; i < 3; i++) writeFileSync(join(root, 'cats', `c${i}.png`), makePng(2, 2, 2, new Array<number>(4).fill(0).flatMap(() => [i, 10 + i, 20 + i])))
  writeFileSync(join(root, 'gray.png'), makePng(2, 2, 0, [5, 6, 7, 8]))
  writeFileSync(join(root, 'big.png'), makePng(4, 2, 2, new Array<number>(24).fill(50)))
  writeFileSync(join(root, 'broken.png'), 'definitely not a png')
  writeFileSync(join(tmp, 'list.txt'), 'cats/c0.png 0\ncats/c1.png 1\nmissing.png 5\nbroken.png 6\ngray.png 2\ncats/c2.png 1\n')
})
afterAll(() => { rmSync(tmp, { recursive: true, force: true }) })

async function readAll (path: string, backend: Backend = 'LMDB'): Promise<Array<{ key: string, datum: Datum, raw: Buffer }>> {
  const r = await openKvReader(path, backend)
  const c = r.cursor()
  const out: Array<{ key: string, datum: Datum, raw: Buffer }> = []
  for (let ok = await c.first(); ok; ok = await c.next()) {
    const raw = Buffer.from(c.value)
    out.push({ key: Buffer.from(c.key).toString(), datum: decodeDatum(raw), raw })
  }
  await r.close()
  return out
}

describe('convert_imageset', () => {
  it('stores raw BGR Datums under %08d_<path> keys, logging and skipping unreadable images', async () => {
    const io = testIo()
    const db = join(tmp, 'raw_lmdb')
    expect(await runConvertImageset([`${root}/`, join(tmp, 'list.txt'), db], io)).toBe(0)
    const recs = await readAll(db)
    expect(recs.map((r) => r.key)).toEqual(['00000000_cats/c0.png', '00000001_cats/c1.png', '00000004_gray.png', '00000005_cats/c2.png'])
    const c1 = recs[1]?.datum
    expect([c1?.channels, c1?.height, c1?.width, c1?.label, c1?.encoded]).toEqual([3, 2, 2, 1, undefined])
    expect([...(c1?.data ?? [])]).toEqual([21, 21, 21, 21, 11, 11, 11, 11, 1, 1, 1, 1])
    expect([...(recs[2]?.datum.data ?? [])]).toEqual([5, 6, 7, 8, 5, 6, 7, 8, 5, 6, 7, 8])
    expect(io.lines[0]).toBe('I convert_imageset.cpp:89] A total of 6 images.')
    expect(io.lines[1]).toBe(`I db_lmdb.cpp:35] Opened lmdb ${db}`)
    expect(io.lines[2]).toBe(`E io.cpp:80] Could not open or find file ${root}/missing.png (no such file)`)
    expect(io.lines[3]).toMatch(new RegExp(`^E io.cpp:80\\] Could not open or find file ${root}/broken.png \\(.+\\)$`))
    expect(io.lines[4]).toBe('I convert_imageset.cpp:153] Processed 4 files.')
  })

  it('converts to gray and resizes with --gray --resize_height --resize_width, into LevelDB', async () => {
    const io = testIo()
    const db = join(tmp, 'gray_leveldb')
    expect(await runConvertImageset(['--gray', '--resize_height=3', '--resize_width=1', '--backend=leveldb', root, join(tmp, 'list.txt'), db], io)).toBe(0)
    const recs = await readAll(db, 'LEVELDB')
    expect(recs.length).toBe(4)
    const g = recs[2]?.datum
    expect([g?.channels, g?.height, g?.width]).toEqual([1, 3, 1])
  })

  it('keeps the original file for --encoded when nothing changes, and re-encodes otherwise', async () => {
    const io = testIo()
    const db = join(tmp, 'enc_lmdb')
    expect(await runConvertImageset(['--encoded', root, join(tmp, 'list.txt'), db], io)).toBe(0)
    const recs = await readAll(db)
    const c0 = recs[0]?.datum
    expect([c0?.encoded, c0?.label, c0?.channels, c0?.height]).toEqual([true, 0, undefined, undefined])
    expect(Buffer.from(c0?.data ?? []).equals(readFileSync(join(root, 'cats', 'c0.png')))).toBe(true)
    // Caffe's test looks at the decoded Mat, which imread(COLOR) always gives 3 channels: kept too.
    expect(Buffer.from(recs[2]?.datum.data ?? []).equals(readFileSync(join(root, 'gray.png')))).toBe(true)
    // Resizing changes the pixels, so the image is re-encoded (as PNG, its extension).
    const resized = testIo()
    expect(await runConvertImageset(['--encoded', '--resize_height=4', '--resize_width=4', root, join(tmp, 'list.txt'), join(tmp, 'enc_resized_lmdb')], resized)).toBe(0)
    const r0 = (await readAll(join(tmp, 'enc_resized_lmdb')))[0]?.datum.data ?? new Uint8Array(0)
    expect(Buffer.from(r0).equals(readFileSync(join(root, 'cats', 'c0.png')))).toBe(false)
    expect(Buffer.from(r0).subarray(1, 4).toString()).toBe('PNG')

    const io2 = testIo()
    expect(await runConvertImageset(['--encode_type=jpg', root, join(tmp, 'list.txt'), join(tmp, 'jpg_lmdb')], io2)).toBe(0)
    expect(io2.lines).toContain('I convert_imageset.cpp:92] encode_type specified, assuming encoded=true.')
    const jpg = (await readAll(join(tmp, 'jpg_lmdb')))[0]?.datum
    expect([jpg?.encoded, jpg?.data?.[0], jpg?.data?.[1]]).toEqual([true, 0xff, 0xd8])
  })

  it('stops on --check_size when sizes differ, without leaving a database', async () => {
    writeFileSync(join(tmp, 'mixed.txt'), 'cats/c0.png 0\nbig.png 1\n')
    const io = testIo()
    const db = join(tmp, 'checked_lmdb')
    expect(await runConvertImageset(['--check_size', root, join(tmp, 'mixed.txt'), db], io)).toBe(1)
    expect(io.lines.at(-1)).toBe('F convert_imageset.cpp:131] Check failed: data.size() == data_size (24 vs. 12) Incorrect data field size 24')
    await expect(openKvReader(db, 'LMDB')).rejects.toThrow()
    const ok = testIo()
    expect(await runConvertImageset([root, join(tmp, 'mixed.txt'), join(tmp, 'unchecked_lmdb')], ok)).toBe(0)
  })

  it('shuffles reproducibly with --random_seed and keeps the keys in insertion order', async () => {
    const keys = async (name: string): Promise<string[]> => {
      const io = testIo()
      expect(await runConvertImageset(['--shuffle', '--random_seed=3', root, join(tmp, 'list.txt'), join(tmp, name)], io)).toBe(0)
      expect(io.lines[0]).toBe('I convert_imageset.cpp:86] Shuffling data')
      return (await readAll(join(tmp, name))).map((r) => r.key)
    }
    const a = await keys('shuf1_lmdb')
    expect(await keys('shuf2_lmdb')).toEqual(a)
    expect(a.map((k) => k.slice(0, 8))).toEqual(['00000000', '00000001', '00000002', '00000003', '00000004', '00000005'].filter((p) => a.some((k) => k.startsWith(p))))
    expect(a.map((k) => k.slice(9)).sort()).toEqual(['cats/c0.png', 'cats/c1.png', 'cats/c2.png', 'gray.png'])
  })

  it('names the list file and line of a bad entry, and prints usage for missing arguments', async () => {
    writeFileSync(join(tmp, 'bad.txt'), 'cats/c0.png 0\ncats/c1.png one\n')
    const io = testIo()
    expect(await runConvertImageset([root, join(tmp, 'bad.txt'), join(tmp, 'bad_lmdb')], io)).toBe(1)
    expect(io.lines).toEqual([`F convert_imageset.cpp:0] ${join(tmp, 'bad.txt')}:2: label "one" is not an integer`])
    const usage = testIo()
    expect(await runConvertImageset([root, join(tmp, 'list.txt')], usage)).toBe(1)
    expect(usage.err.join('')).toContain('convert_imageset [FLAGS] ROOTFOLDER/ LISTFILE DB_NAME')
    expect(usage.err.join('')).toContain('-resize_height (Height images are resized to) type: int32 default: 0')
  })
})
