import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { runConvertMnistData } from '../../../src/engine/tools/convert-mnist-data.js'
import { openDatumSource } from '../../../src/engine/data/datum-source.js'
import { openKvReader } from '../../../src/engine/data/kv-store.js'
import { encodeDatum } from '../../../src/engine/proto/binary.js'
import { testIo } from './tool-test-io.js'

const mnist = new URL('../../../../shared/data/mnist/', import.meta.url).pathname
let tmp: string
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'et-mnist-')) })
afterAll(() => { rmSync(tmp, { recursive: true, force: true }) })

function idx (magic: number, dims: number[], data: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length)
  head.writeUInt32BE(magic, 0)
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i))
  return Buffer.concat([head, Buffer.from(data)])
}

// Four 2x3 images whose pixels encode their index, labels 3, 1, 4, 1.
const pixels = Array.from({ length: 24 }, (_, i) => Math.floor(i / 6) * 10 + (i % 6))
const images = idx(2051, [4, 2, 3], pixels)
const labels = idx(2049, [4], [3, 1, 4, 1])

describe('convert_mnist_data', () => {
  it('writes one raw Datum per image under %08d keys, byte-identical to Caffe\'s, with its log lines', async () => {
    writeFileSync(join(tmp, 'img'), images)
    writeFileSync(join(tmp, 'lbl.gz'), gzipSync(labels))
    const io = testIo()
    const db = join(tmp, 'small_lmdb')
    expect(await runConvertMnistData([join(tmp, 'img'), join(tmp, 'lbl.gz'), db], io)).toBe(0)
    expect(io.lines).toEqual([
      `I db_lmdb.cpp:35] Opened lmdb ${db}`,
      'I convert_mnist_data.cpp:88] A total of 4 items.',
      'I convert_mnist_data.cpp:89] Rows: 2 Cols: 3',
      'I convert_mnist_data.cpp:108] Processed 4 files.'
    ])
    const r = await openKvReader(db, 'LMDB')
    const c = r.cursor()
    const seen: string[] = []
    for (let ok = await c.first(); ok; ok = await c.next()) {
      const i = seen.length
      seen.push(Buffer.from(c.key).toString())
      const expected = encodeDatum({ channels: 1, height: 2, width: 3, data: Uint8Array.from(pixels.slice(i * 6, i * 6 + 6)), label: [3, 1, 4, 1][i], float_data: new Float32Array(0) })
      expect(Buffer.from(c.value).equals(Buffer.from(expected))).toBe(true)
    }
    expect(seen).toEqual(['00000000', '00000001', '00000002', '00000003'])
    await r.close()
  })

  it('writes LevelDB with --backend=leveldb', async () => {
    const io = testIo()
    const db = join(tmp, 'small_leveldb')
    expect(await runConvertMnistData([join(tmp, 'img'), join(tmp, 'lbl.gz'), db, '--backend=leveldb'], io)).toBe(0)
    expect(io.lines[0]).toBe(`I db_leveldb.cpp:18] Opened leveldb ${db}`)
    const src = await openDatumSource(db, 'LEVELDB')
    expect(await src.count()).toBe(4)
    expect((await src.next()).label).toBe(3)
    await src.close()
  })

  it('converts the real MNIST test set from the gzipped originals', async () => {
    const io = testIo()
    const db = join(tmp, 'mnist_test_lmdb')
    expect(await runConvertMnistData([join(mnist, 't10k-images-idx3-ubyte.gz'), join(mnist, 't10k-labels-idx1-ubyte.gz'), db], io)).toBe(0)
    expect(io.lines).toContain('I convert_mnist_data.cpp:88] A total of 10000 items.')
    expect(io.lines).toContain('I convert_mnist_data.cpp:89] Rows: 28 Cols: 28')
    const src = await openDatumSource(db, 'LMDB')
    expect(await src.count()).toBe(10000)
    const first = await src.next()
    // The first test digit is a 7.
    expect([first.label, first.channels, first.height, first.width, first.data?.length]).toEqual([7, 1, 28, 28, 784])
    const counts = new Array<number>(10).fill(0)
    const tally = (label: number | undefined): void => { counts[label ?? 0] = (counts[label ?? 0] ?? 0) + 1 }
    tally(first.label)
    for (let i = 1; i < 10000; i++) tally((await src.next()).label)
    expect(counts).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    await src.close()
  })

  it('fails with Caffe\'s CHECK lines on bad input and never leaves a database behind', async () => {
    const run = async (args: string[]): Promise<{ code: number, lines: string[] }> => {
      const io = testIo()
      return { code: await runConvertMnistData(args, io), lines: io.lines }
    }
    writeFileSync(join(tmp, 'ten-labels'), idx(2049, [10], new Array<number>(10).fill(0)))
    writeFileSync(join(tmp, 'cut'), images.subarray(0, 30))
    writeFileSync(join(tmp, 'text'), 'not an idx file at all')
    const db = join(tmp, 'bad_lmdb')
    expect(await run([join(tmp, 'lbl.gz'), join(tmp, 'lbl.gz'), db])).toEqual({
      code: 1, lines: ['F convert_mnist_data.cpp:59] Check failed: magic == 2051 (2049 vs. 2051) Incorrect image file magic.']
    })
    expect((await run([join(tmp, 'img'), join(tmp, 'img'), db])).lines).toEqual(['F convert_mnist_data.cpp:62] Check failed: magic == 2049 (2051 vs. 2049) Incorrect label file magic.'])
    expect((await run([join(tmp, 'img'), join(tmp, 'ten-labels'), db])).lines).toEqual(['F convert_mnist_data.cpp:67] Check failed: num_items == num_labels (4 vs. 10)'])
    expect((await run([join(tmp, 'cut'), join(tmp, 'lbl.gz'), db])).lines[0]).toMatch(/cut is truncated: its header promises 4x2x3 = 24 bytes of data but only 14 follow/)
    expect((await run([join(tmp, 'text'), join(tmp, 'lbl.gz'), db])).lines[0]).toMatch(/Incorrect image file magic/)
    expect((await run([join(tmp, 'missing'), join(tmp, 'lbl.gz'), db])).lines).toEqual([`F convert_mnist_data.cpp:48] Check failed: image_file Unable to open file ${join(tmp, 'missing')}`])
    await expect(openKvReader(db, 'LMDB')).rejects.toThrow(/no such file/)
    expect((await run([join(tmp, 'img'), join(tmp, 'lbl.gz'), join(tmp, 'small_lmdb')])).lines).toEqual([
      `F db_lmdb.cpp:13] Check failed: mkdir(source.c_str(), 0744) == 0 (-1 vs. 0) mkdir ${join(tmp, 'small_lmdb')} failed`
    ])
    expect((await run([join(tmp, 'img'), join(tmp, 'lbl.gz'), join(tmp, 'x'), '--backend=rocksdb'])).code).toBe(1)
  })

  it('prints the usage for a wrong number of arguments and rejects unknown flags', async () => {
    const io = testIo()
    expect(await runConvertMnistData(['a', 'b'], io)).toBe(1)
    expect(io.err.join('')).toMatch(/Usage:\n {4}convert_mnist_data \[FLAGS\] input_image_file input_label_file output_db_file/)
    expect(io.err.join('')).toMatch(/-backend \(The backend for storing the result\) type: string default: "lmdb"/)
    const io2 = testIo()
    expect(await runConvertMnistData(['a', 'b', 'c', '--colour'], io2)).toBe(1)
    expect(io2.err.join('')).toMatch(/unknown command line flag 'colour'/)
  })
})
