import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runComputeImageMean } from '../../../src/engine/tools/compute-image-mean.js'
import { createDatumSink } from '../../../src/engine/data/datum-source.js'
import type { Backend } from '../../../src/engine/data/backend.js'
import { encodeImage } from '../../../src/engine/data/image.js'
import { blobProtoData, blobProtoShape, decodeBlobProto } from '../../../src/engine/proto/binary.js'
import type { Datum } from '../../../src/engine/proto/caffe.js'
import { loadMeanFile } from '../../../src/engine/data/transformer.js'
import { testIo } from './tool-test-io.js'

let tmp: string
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'et-mean-')) })
afterAll(() => { rmSync(tmp, { recursive: true, force: true }) })

const raw = (values: number[], c = 2, h = 1, w = 2): Datum => ({ channels: c, height: h, width: w, data: Uint8Array.from(values), label: 0, float_data: new Float32Array(0) })

async function makeDb (name: string, datums: Datum[], backend: Backend = 'LMDB'): Promise<string> {
  const path = join(tmp, name)
  const sink = await createDatumSink(path, backend)
  for (let i = 0; i < datums.length; i++) await sink.put(String(i).padStart(8, '0'), datums[i] as Datum)
  await sink.close()
  return path
}

describe('compute_image_mean', () => {
  it('writes the per-pixel mean as a 1xCxHxW BlobProto and logs per-channel means', async () => {
    const db = await makeDb('raw_lmdb', [raw([0, 10, 100, 200]), raw([2, 20, 101, 201]), raw([4, 30, 102, 202])])
    const out = join(tmp, 'mean.binaryproto')
    const io = testIo()
    expect(await runComputeImageMean([db, out], io)).toBe(0)
    const blob = decodeBlobProto(readFileSync(out))
    expect(blobProtoShape(blob)).toEqual([1, 2, 1, 2])
    expect([...blobProtoData(blob)]).toEqual([2, 20, 101, 201])
    expect(io.lines).toEqual([
      `I db_lmdb.cpp:35] Opened lmdb ${db}`,
      'I compute_image_mean.cpp:70] Starting iteration',
      'I compute_image_mean.cpp:101] Processed 3 files.',
      `I compute_image_mean.cpp:108] Write to ${out}`,
      'I compute_image_mean.cpp:114] Number of channels: 2',
      'I compute_image_mean.cpp:119] mean_value channel [0]: 11',
      'I compute_image_mean.cpp:119] mean_value channel [1]: 151'
    ])
    const mean = await loadMeanFile(out)
    expect([mean.channels, mean.height, mean.width]).toEqual([2, 1, 2])
  })

  it('decodes encoded Datums and reads LevelDB; without an output file it only logs', async () => {
    const png = async (v: number): Promise<Uint8Array> => encodeImage({ channels: 1, height: 1, width: 3, data: Uint8Array.from([v, v + 1, v + 2]) }, 'png')
    const datums: Datum[] = [
      { data: await png(10), encoded: true, label: 1, float_data: new Float32Array(0) },
      { data: await png(20), encoded: true, label: 2, float_data: new Float32Array(0) }
    ]
    const db = await makeDb('enc_leveldb', datums, 'LEVELDB')
    const io = testIo()
    expect(await runComputeImageMean([db, '--backend=leveldb'], io)).toBe(0)
    expect(io.lines).toContain('I compute_image_mean.cpp:57] Decoding Datum')
    expect(io.lines).toContain('I compute_image_mean.cpp:114] Number of channels: 1')
    expect(io.lines).toContain('I compute_image_mean.cpp:119] mean_value channel [0]: 16')
    expect(io.lines.some((l) => l.includes('Write to'))).toBe(false)
  })

  it('averages float_data Datums and prints means like a C++ stream', async () => {
    const f = (vals: number[]): Datum => ({ channels: 1, height: 1, width: 3, label: 0, float_data: Float32Array.from(vals) })
    const db = await makeDb('float_lmdb', [f([0.1, 0.2, 0.3]), f([0.2, 0.3, 0.4])])
    const io = testIo()
    expect(await runComputeImageMean([db, join(tmp, 'fmean.binaryproto')], io)).toBe(0)
    expect(io.lines.at(-1)).toBe('I compute_image_mean.cpp:119] mean_value channel [0]: 0.25')
  })

  it('stops with Caffe\'s CHECK when a Datum has a different size', async () => {
    const db = await makeDb('mixed_lmdb', [raw([1, 2, 3, 4]), raw([1, 2, 3, 4, 5, 6], 1, 2, 3)])
    const io = testIo()
    expect(await runComputeImageMean([db], io)).toBe(1)
    expect(io.lines.at(-1)).toBe('F compute_image_mean.cpp:79] Check failed: size_in_datum == data_size (6 vs. 4) Incorrect data field size 6')
  })

  it('reports a database that is not one, and wrong usage', async () => {
    const io = testIo()
    expect(await runComputeImageMean([tmp], io)).toBe(1)
    expect(io.lines.at(-1)).toMatch(/^F compute_image_mean\.cpp:0\] not an LMDB database: .*contains no data\.mdb$/)
    const usage = testIo()
    expect(await runComputeImageMean(['a', 'b', 'c'], usage)).toBe(1)
    expect(usage.err.join('')).toContain('compute_image_mean [FLAGS] INPUT_DB [OUTPUT_FILE]')
  })
})
