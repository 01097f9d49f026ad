import { Rng } from '../../../src/engine/random.js'
import { pngFromRaw, targz } from '../archive/archive-fixtures.js'
import type { TarSpec } from '../archive/archive-fixtures.js'

/** Four classes: the bright quadrant of a 12×12 grey image. Label names sort as listed. */
export const QUADRANTS = ['ne', 'nw', 'se', 'sw'] as const
export type Quadrant = (typeof QUADRANTS)[number]

/** A 12×12 8-bit grey PNG whose `q` quadrant is brighter, over uniform noise from `seed`. */
export function quadrantPng (q: Quadrant, seed: number, noise = 60): Buffer {
  const rng = new Rng(seed)
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(12, 0)
  ihdr.writeUInt32BE(12, 4)
  ihdr[8] = 8
  ihdr[9] = 0
  const raw = Buffer.alloc(13 * 12)
  for (let y = 0; y < 12; y++) {
    for (let x = 0; x < 12; x++) {
      const quadrant = `${y < 6 ? 'n' : 's'}${x < 6 ? 'w' : 'e'}`
      const base = quadrant === q ? 150 : 40
      raw[y * 13 + 1 + x] = Math.min(255, base + Math.floor(rng.uniform() * noise))
    }
  }
  return pngFromRaw(ihdr, raw)
}

/** A dataset part as the dataset runner stores it: `<label>/<file>.png` in a tar.gz. */
export function quadrantArchive (perLabel: number, seed: number): Buffer {
  const specs: TarSpec[] = []
  for (const q of QUADRANTS) {
    for (let i = 0; i < perLabel; i++) specs.push({ path: `${q}/${q}-${i}.png`, body: quadrantPng(q, seed * 1000 + QUADRANTS.indexOf(q) * 100 + i) })
  }
  return targz(specs)
}

const TAIL_V2 = `
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
}`

/** A LeNet-like net in the V2 form reading ImageData list files (sources are rewritten by the job). */
export const IMAGE_DATA_NET = `name: "QuadNet"
layer {
  name: "data" type: "ImageData" top: "data" top: "label"
  include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  image_data_param { source: "examples/train.txt" batch_size: 8 is_color: false shuffle: true }
}
layer {
  name: "data" type: "ImageData" top: "data" top: "label"
  include { phase: TEST }
  transform_param { scale: 0.00390625 }
  image_data_param { source: "examples/test.txt" batch_size: 8 is_color: false }
}${TAIL_V2}
layer { name: "accuracy" type: "Accuracy" bottom: "ip1" bottom: "label" top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
`

/** The same net in the V1 `layers` form with LMDB Data layers, as BVLC's stock lenet_train_test.prototxt. */
export const V1_DATA_NET = `name: "QuadNet"
layers {
  name: "mnist" type: DATA top: "data" top: "label"
  data_param { source: "examples/mnist/mnist_train_lmdb" backend: LMDB batch_size: 8 scale: 0.00390625 }
  include: { phase: TRAIN }
}
layers {
  name: "mnist" type: DATA top: "data" top: "label"
  data_param { source: "examples/mnist/mnist_test_lmdb" backend: LMDB batch_size: 8 scale: 0.00390625 }
  include: { phase: TEST }
}
layers {
  name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" blobs_lr: 1 blobs_lr: 2
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } bias_filler { type: "constant" } }
}
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "relu1" type: RELU bottom: "pool1" top: "pool1" }
layers {
  name: "ip1" type: INNER_PRODUCT bottom: "pool1" top: "ip1" blobs_lr: 1 blobs_lr: 2
  inner_product_param { num_output: 4 weight_filler { type: "xavier" } bias_filler { type: "constant" } }
}
layers { name: "accuracy" type: ACCURACY bottom: "ip1" bottom: "label" top: "accuracy" include: { phase: TEST } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip1" bottom: "label" top: "loss" }
`

/** Deploy net for classification: the trained layers behind an Input, ending in Softmax "prob". */
export const DEPLOY_NET = `name: "QuadNet"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 4 dim: 1 dim: 12 dim: 12 } } }${TAIL_V2}
layer { name: "prob" type: "Softmax" bottom: "ip1" top: "prob" }
`

/** A net the engine cannot build: its 7th line starts a Deconvolution layer. */
export const DECONV_NET = IMAGE_DATA_NET.replace('layer {\n  name: "conv1" type: "Convolution"', 'layer {\n  name: "conv1" type: "Deconvolution"')

export const solverText = (maxIter: number, extra = ''): string => `# a small solver for tests
net: "where/the/user/kept/it.prototxt"
base_lr: 0.05
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
display: 5
max_iter: ${maxIter}
test_iter: 2
test_interval: 10
snapshot: 10
snapshot_prefix: "/somewhere/else/lenet"
random_seed: 7
solver_mode: GPU
${extra}`
