import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Blob } from '../../../src/engine/blob.js'
import { createDatumSink } from '../../../src/engine/data/datum-source.js'
import { encodeImage } from '../../../src/engine/data/image.js'
import type { Layer } from '../../../src/engine/layer.js'
import type { BatchDataLayer, DataLayerState } from '../../../src/engine/layers/batch-data-layer.js'
import { LayerConfigError } from '../../../src/engine/layers/errors.js'
import { createLayer } from '../../../src/engine/layers/registry.js'
import type { MessageInit } from '../../../src/engine/proto/caffe.js'
import { context, layerParam } from './helpers.js'

// Real databases and image files in a temporary directory, written with the data module's
// writers; the layers read them back as a net would: open, setUp, then prefetch + forward.

let dir = ''
const RECORDS = 5

/** Record r is a 1×4×4 raw datum whose pixels are 10·r + index, labelled r. */
let dbCount = 0
async function writeDb (backend: 'LMDB' | 'LEVELDB', encoded: boolean): Promise<string> {
  const path = join(dir, `${backend}-${encoded ? 'png' : 'raw'}-${dbCount++}`)
  const sink = await createDatumSink(path, backend)
  for (let r = 0; r < RECORDS; r++) {
    const pixels = Uint8Array.from({ length: 16 }, (_, i) => 10 * r + i)
    if (encoded) {
      const png = await encodeImage({ channels: 1, height: 4, width: 4, data: pixels }, 'png')
      await sink.put(`${r}`.padStart(8, '0'), { encoded: true, data: png, label: r, float_data: new Float32Array(0) })
    } else {
      await sink.put(`${r}`.padStart(8, '0'), { channels: 1, height: 4, width: 4, data: pixels, label: r, float_data: new Float32Array(0) })
    }
  }
  await sink.close()
  return path
}

interface Running { layer: Layer, data: Blob, label: Blob, log: string[] }

async function start (init: MessageInit<'LayerParameter'>, phase: 'TRAIN' | 'TEST' = 'TRAIN', seed = 3): Promise<Running> {
  const log: string[] = []
  const ctx = { ...context(phase, seed), log: { info: (where: string, m: string) => { log.push(`${where}] ${m}`) } } }
  const layer = createLayer(layerParam(init), ctx)
  await layer.open?.()
  const data = new Blob()
  const label = new Blob()
  layer.setUp([], [data, label])
  return { layer, data, label, log }
}

async function nextBatch (r: Running): Promise<{ data: number[], labels: number[] }> {
  await r.layer.prefetch?.()
  r.layer.reshape([], [r.data, r.label])
  r.layer.forward([], [r.data, r.label])
  return { data: [...r.data.data], labels: [...r.label.data] }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'et-data-layers-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('Data layer', () => {
  for (const backend of ['LMDB', 'LEVELDB'] as const) {
    it(`${backend}: batches in key order, wrapping around with Caffe's restart message`, async () => {
      const source = await writeDb(backend, false)
      const r = await start({ name: 'mnist', type: 'Data', data_param: { source, backend, batch_size: 3 }, transform_param: { scale: 0.5 } })
      expect(r.data.shape).toEqual([3, 1, 4, 4])
      expect(r.label.shape).toEqual([3])
      expect(r.log).toContain(`${backend === 'LMDB' ? 'db_lmdb.cpp:35' : 'db_leveldb.cpp:18'}] Opened ${backend.toLowerCase()} ${source}`)
      expect(r.log).toContain('data_layer.cpp:45] output data size: 3,1,4,4')
      const b1 = await nextBatch(r)
      expect(b1.labels).toEqual([0, 1, 2])
      expect(b1.data.slice(16, 20)).toEqual([5, 5.5, 6, 6.5])
      expect((await nextBatch(r)).labels).toEqual([3, 4, 0])
      expect((await nextBatch(r)).labels).toEqual([1, 2, 3])
      expect(r.log.filter((l) => l === 'data_layer.cpp:73] Restarting data prefetching from start.').length).toBeGreaterThanOrEqual(1)
      await r.layer.close?.()
    })
  }

  it('decodes encoded (PNG) datums and crops the centre in TEST', async () => {
    const source = await writeDb('LMDB', true)
    const r = await start({ type: 'Data', data_param: { source, backend: 'LMDB', batch_size: 2 }, transform_param: { crop_size: 2 } }, 'TEST')
    expect(r.data.shape).toEqual([2, 1, 2, 2])
    const b = await nextBatch(r)
    // The centre 2×2 of record r: pixels 5, 6, 9, 10 (+ 10·r).
    expect(b.data).toEqual([5, 6, 9, 10, 15, 16, 19, 20])
    await r.layer.close?.()
  })

  it('random crops and mirrors repeat for a seed and resume exactly from a saved state', async () => {
    const source = await writeDb('LMDB', false)
    const init: MessageInit<'LayerParameter'> = { type: 'Data', data_param: { source, backend: 'LMDB', batch_size: 2 }, transform_param: { crop_size: 3, mirror: true } }
    const a = await start(init, 'TRAIN', 9)
    const b = await start(init, 'TRAIN', 9)
    const seqA: number[][] = []
    let saved: DataLayerState | undefined
    for (let i = 0; i < 6; i++) {
      seqA.push((await nextBatch(a)).data)
      if (i === 2) saved = (a.layer as BatchDataLayer).saveState()
    }
    for (let i = 0; i < 6; i++) expect((await nextBatch(b)).data).toEqual(seqA[i])
    expect(new Set(seqA.map((s) => s.join())).size).toBeGreaterThan(1)
    // A fresh layer restored to the state after batch 3 delivers batches 4, 5, 6 again.
    const c = await start(init, 'TRAIN', 9)
    ;(c.layer as BatchDataLayer).restoreState(JSON.parse(JSON.stringify(saved)))
    for (let i = 3; i < 6; i++) expect((await nextBatch(c)).data).toEqual(seqA[i])
    for (const r of [a, b, c]) await r.layer.close?.()
  })

  it('fails clearly: missing source, not opened, not a database', async () => {
    await expect(start({ name: 'd', type: 'Data', data_param: { batch_size: 2 } })).rejects.toThrow('layer "d" (Data): data_param.source is required')
    const layer = createLayer(layerParam({ name: 'd', type: 'Data', data_param: { source: 'x', batch_size: 1 } }), context())
    expect(() => layer.setUp([], [new Blob()])).toThrow(LayerConfigError)
    await expect(start({ type: 'Data', data_param: { source: join(dir, 'nowhere'), backend: 'LMDB', batch_size: 2 } })).rejects.toThrow(/nowhere/)
    await mkdir(join(dir, 'garbage'))
    await writeFile(join(dir, 'garbage', 'data.mdb'), Buffer.alloc(8192, 7))
    await expect(start({ type: 'Data', data_param: { source: join(dir, 'garbage'), backend: 'LMDB', batch_size: 2 } })).rejects.toThrow(/not an LMDB database/)
  })
})

describe('ImageData layer', () => {
  let list = ''
  beforeAll(async () => {
    const lines: string[] = []
    for (let r = 0; r < 4; r++) {
      // 3×4×6 BGR images: channel c of image r holds 50·c + r everywhere.
      const data = Uint8Array.from({ length: 3 * 24 }, (_, i) => 50 * Math.floor(i / 24) + r)
      await writeFile(join(dir, `img${r}.png`), await encodeImage({ channels: 3, height: 4, width: 6, data }, 'png'))
      lines.push(`img${r}.png ${r + 10}`)
    }
    list = join(dir, 'list.txt')
    await writeFile(list, lines.join('\n') + '\n')
  })

  it('reads the list under root_folder in order, colour as BGR, with labels', async () => {
    const r = await start({ type: 'ImageData', image_data_param: { source: list, root_folder: dir, batch_size: 3 } })
    expect(r.data.shape).toEqual([3, 3, 4, 6])
    const b = await nextBatch(r)
    expect(b.labels).toEqual([10, 11, 12])
    expect([b.data[0], b.data[24], b.data[48], b.data[72]]).toEqual([0, 50, 100, 1])
    expect((await nextBatch(r)).labels).toEqual([13, 10, 11])
    await r.layer.close?.()
  })

  it('resizes to new_height × new_width and reads gray with is_color: false', async () => {
    const r = await start({ type: 'ImageData', image_data_param: { source: list, root_folder: `${dir}/`, batch_size: 2, new_height: 2, new_width: 3, is_color: false } })
    expect(r.data.shape).toEqual([2, 1, 2, 3])
    const b = await nextBatch(r)
    expect(b.data.length).toBe(12)
    await r.layer.close?.()
  })

  it('shuffles reproducibly for a seed and resumes the shuffled order', async () => {
    const init: MessageInit<'LayerParameter'> = { type: 'ImageData', image_data_param: { source: list, root_folder: dir, batch_size: 3, shuffle: true } }
    const a = await start(init, 'TRAIN', 4)
    const b = await start(init, 'TRAIN', 4)
    const labelsA: number[][] = []
    let saved: DataLayerState | undefined
    for (let i = 0; i < 5; i++) {
      labelsA.push((await nextBatch(a)).labels)
      if (i === 1) saved = (a.layer as BatchDataLayer).saveState()
    }
    for (let i = 0; i < 5; i++) expect((await nextBatch(b)).labels).toEqual(labelsA[i])
    expect([...(labelsA[0] ?? [])].sort()).not.toEqual([13, 14, 15])
    const c = await start(init, 'TRAIN', 4)
    ;(c.layer as BatchDataLayer).restoreState(saved)
    for (let i = 2; i < 5; i++) expect((await nextBatch(c)).labels).toEqual(labelsA[i])
    for (const r of [a, b, c]) await r.layer.close?.()
  })

  it('names a missing image file when its batch is read', async () => {
    const bad = join(dir, 'bad.txt')
    await writeFile(bad, 'img0.png 1\nmissing.png 2\n')
    const r = await start({ type: 'ImageData', image_data_param: { source: bad, root_folder: dir, batch_size: 2 } })
    await expect(nextBatch(r)).rejects.toThrow(/missing\.png/)
    await r.layer.close?.()
  })
})
