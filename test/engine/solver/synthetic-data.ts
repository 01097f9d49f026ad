import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDatumSink } from '../../../src/engine/data/datum-source.js'
import { createMessage } from '../../../src/engine/proto/caffe.js'
import { Rng } from '../../../src/engine/random.js'

/**
 * A tiny learnable image task written as a real Caffe LMDB: 1×12×12 grey images of 4 classes,
 * class k lighting quadrant k a little on top of strong uniform noise, so single pixels say
 * little and the net has to pool. A small conv net learns it in a hundred or so iterations,
 * which keeps training tests well under a second per run.
 */
export async function writeQuadrantLmdb (path: string, count: number, seed: number): Promise<void> {
  const rng = new Rng(seed)
  const sink = await createDatumSink(path, 'LMDB')
  for (let i = 0; i < count; i++) {
    const label = i % 4
    const data = new Uint8Array(144)
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 12; x++) {
        const q = (y < 6 ? 0 : 2) + (x < 6 ? 0 : 1)
        const base = q === label ? 70 : 40
        data[y * 12 + x] = Math.min(255, base + Math.floor(rng.uniform() * 150))
      }
    }
    await sink.put(`${String(i).padStart(8, '0')}`, createMessage('Datum', { channels: 1, height: 12, width: 12, data, label }))
  }
  await sink.close()
}

export const QUADRANT_NET = (train: string, test: string, trainBatch = 16, testBatch = 25): string => `
name: "QuadNet"
layer {
  name: "data" type: "Data" top: "data" top: "label"
  include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  data_param { source: "${train}" batch_size: ${trainBatch} backend: LMDB }
}
layer {
  name: "data" type: "Data" top: "data" top: "label"
  include { phase: TEST }
  transform_param { scale: 0.00390625 }
  data_param { source: "${test}" batch_size: ${testBatch} backend: LMDB }
}
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } bias_filler { type: "constant" } }
}
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "pool1" top: "pool1" }
layer {
  name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 4 weight_filler { type: "xavier" } bias_filler { type: "constant" } }
}
layer { name: "accuracy" type: "Accuracy" bottom: "ip1" bottom: "label" top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
`

/** A scratch directory with the quadrant train (200) and test (100) LMDBs and the net prototxt. */
export interface QuadrantWorkspace {
  readonly dir: string
  readonly net: string
  writeSolver (name: string, body: string): string
  cleanup (): void
}

export async function createQuadrantWorkspace (): Promise<QuadrantWorkspace> {
  const dir = mkdtempSync(join(tmpdir(), 'et-solver-'))
  const train = join(dir, 'train_lmdb')
  const test = join(dir, 'test_lmdb')
  await writeQuadrantLmdb(train, 200, 1)
  await writeQuadrantLmdb(test, 100, 2)
  const net = join(dir, 'quad_train_test.prototxt')
  writeFileSync(net, QUADRANT_NET(train, test))
  return {
    dir,
    net,
    writeSolver (name, body) {
      const p = join(dir, name)
      writeFileSync(p, `net: "${net}"\n${body}`)
      return p
    },
    cleanup () { rmSync(dir, { recursive: true, force: true }) }
  }
}
