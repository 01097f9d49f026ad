import { readFileSync } from 'node:fs'
import { describe, it, expect, afterAll } from 'vitest'
import { createKernels } from '../../../src/engine/kernels/create-kernels.js'
import { createLayer } from '../../../src/engine/layers/registry.js'
import { Net, NetDefinitionError, WeightsMismatchError } from '../../../src/engine/net.js'
import { MemoryLog } from '../../../src/engine/net/engine-log.js'
import { createMessage, type NetParameter } from '../../../src/engine/proto/caffe.js'
import { decodeNetParameter, encodeNetParameter } from '../../../src/engine/proto/binary.js'
import { parseNetPrototxt } from '../../../src/engine/proto/text-format.js'
import { upgradeNetParameter } from '../../../src/engine/proto/upgrade.js'
import { Rng } from '../../../src/engine/random.js'

const kernels = createKernels({ kind: 'ts', threads: 1 })
afterAll(() => kernels.close())

const fixture = (name: string): string => readFileSync(new URL(`../../../../shared/fixtures/caffe-prototxt/${name}`, import.meta.url), 'utf8')

async function build (text: string | NetParameter, phase: 'TRAIN' | 'TEST' = 'TRAIN', log?: MemoryLog, file?: string): Promise<Net> {
  const param = typeof text === 'string' ? parseNetPrototxt(text, file) : text
  return await Net.create(upgradeNetParameter(param).value, { kernels, createLayer, rng: new Rng(5), log, state: { phase } })
}

// A small classifier with the shapes of LeNet's tail: the label feeds both Accuracy and the loss.
const CLASSIFIER = `name: "tiny"
layer { name: "in" type: "Input" top: "data" top: "label" input_param { shape { dim: 4 dim: 6 } shape { dim: 4 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" LOSS_WEIGHT }
`

function fill (net: Net, seed = 3): void {
  const rng = new Rng(seed)
  const data = net.blobByName('data')!
  for (let i = 0; i < data.count; i++) data.data[i] = rng.gaussian()
  const label = net.blobByName('label')!
  for (let i = 0; i < label.count; i++) label.data[i] = rng.int(3)
}

describe('Net construction', () => {
  it('logs the deploy LeNet like Caffe: layers, top shapes, memory, outputs', async () => {
    const log = new MemoryLog()
    const net = await build(fixture('lenet.prototxt'), 'TEST', log)
    expect(net.name).toBe('LeNet')
    expect(net.layerNames).toEqual(['data', 'conv1', 'pool1', 'conv2', 'pool2', 'ip1', 'relu1', 'ip2', 'prob'])
    const lines = log.lines
    expect(lines).toContain('I layer_factory.hpp:77] Creating layer conv1')
    expect(lines).toContain('I net.cpp:84] Creating Layer conv1')
    expect(lines).toContain('I net.cpp:406] conv1 <- data')
    expect(lines).toContain('I net.cpp:380] conv1 -> conv1')
    expect(lines).toContain('I net.cpp:367] relu1 -> ip1 (in-place)')
    expect(lines).toContain('I net.cpp:129] Top shape: 64 1 28 28 (50176)')
    expect(lines).toContain('I net.cpp:129] Top shape: 64 20 24 24 (737280)')
    expect(lines).toContain('I net.cpp:129] Top shape: 64 50 4 4 (51200)')
    // Same running totals as the LeNet train net in real Caffe's cpu.err, minus the 64-label blob (256 bytes).
    expect(lines).toContain('I net.cpp:137] Memory required for data: 200704')
    expect(lines).toContain('I net.cpp:137] Memory required for data: 5169664')
    expect(lines).toContain('I net.cpp:200] conv1 does not need backward computation.')
    expect(lines).toContain('I net.cpp:242] This network produces output prob')
    expect(lines[lines.length - 1]).toBe('I net.cpp:255] Network initialization done.')
    expect(net.inputBlobs.map((b) => b.shape)).toEqual([[64, 1, 28, 28]])
    expect(net.learnableParams).toHaveLength(8)
    expect(net.learnableParams.map((p) => p.lrMult)).toEqual([1, 2, 1, 2, 1, 2, 1, 2])
  })

  it('inserts splits, finds outputs and decides backward like Caffe\'s LeNet TEST net', async () => {
    const log = new MemoryLog()
    const net = await build(CLASSIFIER.replace('LOSS_WEIGHT', ''), 'TEST', log)
    expect(net.layerNames).toEqual(['in', 'label_in_1_split', 'ip1', 'relu1', 'ip2', 'ip2_ip2_0_split', 'accuracy', 'loss'])
    expect(net.layerNeedBackward).toEqual([false, false, true, true, true, true, false, true])
    expect(log.lines).toContain('I net.cpp:132]     with loss weight 1')
    expect(log.lines).toContain('I net.cpp:200] label_in_1_split does not need backward computation.')
    expect(log.lines.filter((l) => l.includes('produces output'))).toEqual([
      'I net.cpp:242] This network produces output accuracy',
      'I net.cpp:242] This network produces output loss'
    ])
    expect(net.outputBlobIndices.map((i) => net.blobNames[i])).toEqual(['accuracy', 'loss'])
    expect(net.blobLossWeights[net.outputBlobIndices[1]!]).toBe(1)
    expect(net.blobLossWeights[net.outputBlobIndices[0]!]).toBe(0)
  })

  it('lr_mult 0 on every param of a layer stops backward below it; force_backward turns it back on', async () => {
    const frozen = CLASSIFIER.replace('LOSS_WEIGHT', '')
      .replace('name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"', 'name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" param { lr_mult: 0 } param { lr_mult: 0 }')
    const net = await build(frozen)
    expect(net.layerNeedBackward).toEqual([false, false, false, false, true, true, false, true])
    expect(net.layers[2]!.paramPropagateDown).toEqual([false, false])
    const forced = await build(`force_backward: true\n${frozen}`)
    expect(forced.layerNeedBackward.every((b) => b)).toBe(true)
  })

  it('names the layer, its type and its prototxt line when a layer type is unknown', async () => {
    const text = 'name: "x"\nlayer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }\n\nlayer {\n  name: "warp"\n  type: "Warp"\n  bottom: "data"\n  top: "w"\n}\n'
    let caught: unknown
    try { await build(text, 'TEST', undefined, 'deploy.prototxt') } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(NetDefinitionError)
    const message = (caught as Error).message
    expect(message).toMatch(/^deploy\.prototxt:4: layer "warp" \(Warp\): /)
    expect(message).toContain('"Warp" is not supported')
  })

  it('upgrades a V1 definition (input fields, blobs_lr, weight_decay) handed to it directly', async () => {
    const v1 = parseNetPrototxt(`name: "v1"
input: "data"
input_dim: 2 input_dim: 3 input_dim: 1 input_dim: 1
layers { name: "ip" type: INNER_PRODUCT bottom: "data" top: "ip" blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  inner_product_param { num_output: 4 } }
layers { name: "prob" type: SOFTMAX bottom: "ip" top: "prob" }`)
    const net = await Net.create(v1, { kernels, createLayer, rng: new Rng(1), state: { phase: 'TEST' } })
    expect(net.layerNames).toEqual(['input', 'ip', 'prob'])
    expect(net.layerParams.map((l) => l.type)).toEqual(['Input', 'InnerProduct', 'Softmax'])
    expect(net.learnableParams.map((p) => [p.lrMult, p.decayMult])).toEqual([[1, 1], [2, 0]])
    // V1-era .caffemodel files carry `layers` with blobs; they copy by name the same way.
    const model = createMessage('NetParameter', {
      layers: [{ name: 'ip', type: 'INNER_PRODUCT', blobs: [{ num: 1, channels: 1, height: 4, width: 3, data: Array.from({ length: 12 }, (_, i) => i) }, { num: 1, channels: 1, height: 1, width: 4, data: [1, 2, 3, 4] }] }]
    })
    net.copyTrainedLayersFrom(model)
    expect(Array.from(net.learnableParams[1]!.blob.data)).toEqual([1, 2, 3, 4])
  })

  it('rejects an unknown bottom and a top produced twice, naming the layer', async () => {
    await expect(build('layer { name: "ip" type: "InnerProduct" bottom: "nope" top: "y" inner_product_param { num_output: 1 } }'))
      .rejects.toThrow("Unknown bottom blob 'nope' (layer 'ip', bottom index 0)")
    await expect(build('layer { name: "a" type: "Input" top: "x" input_param { shape { dim: 1 } } }\nlayer { name: "b" type: "Input" top: "x" input_param { shape { dim: 1 } } }'))
      .rejects.toThrow("Top blob 'x' produced by multiple sources.")
  })
})

describe('Net forward/backward', () => {
  it('returns the weighted loss and matches finite differences through splits and in-place ReLU', async () => {
    const net = await build(CLASSIFIER.replace('LOSS_WEIGHT', 'loss_weight: 2'))
    fill(net)
    net.clearParamDiffs()
    const loss = await net.forwardBackward()
    const raw = net.blobByName('loss')!.data[0]!
    expect(loss).toBeCloseTo(2 * raw, 5)
    // Central differences on a few weights of ip1 (below the split and the in-place ReLU).
    const w = net.layers[2]!.blobs[0]!
    const analytic = Float32Array.from(w.diff)
    for (const k of [0, 7, 13, 29]) {
      const orig = w.data[k]!
      const h = 1e-2
      w.data[k] = orig + h
      const up = await net.forward()
      w.data[k] = orig - h
      const down = await net.forward()
      w.data[k] = orig
      expect(analytic[k]!).toBeCloseTo((up - down) / (2 * h), 2)
    }
  })

  it('accumulates parameter gradients until cleared (what iter_size relies on)', async () => {
    const net = await build(CLASSIFIER.replace('LOSS_WEIGHT', ''))
    fill(net)
    net.clearParamDiffs()
    await net.forwardBackward()
    const once = Float32Array.from(net.learnableParams[0]!.blob.diff)
    await net.forwardBackward()
    const twice = net.learnableParams[0]!.blob.diff
    once.forEach((v, i) => expect(twice[i]!).toBeCloseTo(2 * v, 5))
    net.clearParamDiffs()
    expect(net.learnableParams.every((p) => p.blob.diff.every((v) => v === 0))).toBe(true)
  })
})

describe('Net weights', () => {
  it('round-trips through a .caffemodel and copies by layer name', async () => {
    const a = await build(CLASSIFIER.replace('LOSS_WEIGHT', ''), 'TEST')
    const bytes = encodeNetParameter(a.toProto())
    const model = decodeNetParameter(bytes)
    expect(model.layer.map((l) => l.name)).toContain('ip1')
    expect(model.layer.find((l) => l.name === 'ip1')?.blobs[0]?.shape?.dim).toEqual([5, 6])
    const b = await build(CLASSIFIER.replace('LOSS_WEIGHT', ''), 'TEST')
    b.copyTrainedLayersFrom(model)
    fill(a)
    fill(b)
    expect(await b.forward()).toBe(await a.forward())
  })

  it('refuses weights of another shape with Caffe\'s message', async () => {
    const a = await build(CLASSIFIER.replace('LOSS_WEIGHT', ''))
    const wider = await build(CLASSIFIER.replace('LOSS_WEIGHT', '').replace('num_output: 5', 'num_output: 7'))
    const model = wider.toProto()
    expect(() => a.copyTrainedLayersFrom(model)).toThrow(WeightsMismatchError)
    expect(() => a.copyTrainedLayersFrom(model)).toThrow(
      "Cannot copy param 0 weights from layer 'ip1'; shape mismatch.  Source param shape is 7 6 (42); target param shape is 5 6 (30). To learn this layer's parameters from scratch rather than copying from a saved net, rename the layer.")
  })

  it('ignores layers the net does not have and logs them', async () => {
    const log = new MemoryLog()
    const a = await build(CLASSIFIER.replace('LOSS_WEIGHT', ''), 'TEST', log)
    const extra = createMessage('NetParameter', { layer: [{ name: 'other', type: 'InnerProduct' }] })
    a.copyTrainedLayersFrom(extra)
    expect(log.lines).toContain('I net.cpp:744] Ignoring source layer other')
  })
})
