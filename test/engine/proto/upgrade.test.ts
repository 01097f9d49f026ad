import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { upgradeNetParameter, upgradeSolverParameter, netNeedsUpgrade, ProtoUpgradeError, V1_LAYER_TYPES } from '../../../src/engine/proto/upgrade.js'
import { parseNetPrototxt, parseSolverPrototxt, printTextFormat, lineOf } from '../../../src/engine/proto/text-format.js'
import { decodeNetParameter, encodeNetParameter } from '../../../src/engine/proto/binary.js'
import { CAFFE_ENUMS, createMessage } from '../../../src/engine/proto/caffe.js'

const read = (...p: string[]): string => readFileSync(join(import.meta.dirname, ...p), 'utf8')
const v1 = (f: string): string => read('../../fixtures/caffe-v1', f)
const bvlc = (f: string): string => read('../../../../shared/fixtures/caffe-prototxt', f)

describe('upgradeNetParameter', () => {
  it('turns the V1 LeNet into exactly the V2 LeNet that BVLC ships', () => {
    const old = parseNetPrototxt(v1('lenet_train_test_v1.prototxt'), 'lenet_train_test_v1.prototxt')
    expect(netNeedsUpgrade(old)).toBe(true)
    const { value, notes } = upgradeNetParameter(old, { file: 'lenet_train_test_v1.prototxt' })
    expect(value).toEqual(parseNetPrototxt(bvlc('lenet_train_test.prototxt')))
    expect(printTextFormat('NetParameter', value)).toBe(bvlc('lenet_train_test.prototxt'))
    expect(netNeedsUpgrade(value)).toBe(false)
    expect(notes.map((n) => n.message)).toEqual([
      'Attempting to upgrade input file specified using deprecated transformation parameters: lenet_train_test_v1.prototxt',
      'Successfully upgraded file specified using deprecated data transformation parameters.',
      'Note that future Caffe releases will only support transform_param messages for transformation fields.',
      'Attempting to upgrade input file specified using deprecated V1LayerParameter: lenet_train_test_v1.prototxt',
      'Successfully upgraded file specified using deprecated V1LayerParameter'
    ])
    // the input is left as it was
    expect(old.layers.length).toBe(11)
    expect(old.layers[0]?.data_param?.scale).toBe(0.00390625)
  })

  it('keeps the source line of each upgraded layer', () => {
    const text = v1('lenet_train_test_v1.prototxt')
    const { value } = upgradeNetParameter(parseNetPrototxt(text))
    const conv1 = value.layer.find((l) => l.name === 'conv1') ?? {}
    expect(lineOf(conv1)).toBe(text.split('\n').findIndex((l) => l.includes('name: "conv1"')))
  })

  it('turns input/input_dim into a leading Input layer and maps blobs_lr, weight_decay and param names', () => {
    const { value } = upgradeNetParameter(parseNetPrototxt(v1('lenet_deploy_v1.prototxt')))
    expect(value.input).toEqual([])
    expect(value.input_dim).toEqual([])
    expect(value.layers).toEqual([])
    const [input, conv1, , ip2, prob] = value.layer
    expect(input).toMatchObject({ name: 'input', type: 'Input', top: ['data'], input_param: { shape: [{ dim: [64, 1, 28, 28] }] } })
    expect(lineOf(input ?? {})).toBe(3)
    expect(conv1?.param).toEqual([{ lr_mult: 1, decay_mult: 1 }, { lr_mult: 2, decay_mult: 0 }])
    expect(ip2?.param).toEqual([{ name: 'shared_w' }, { name: 'shared_b' }])
    expect(prob?.type).toBe('Softmax')
    // Apart from the Input layer's name, the same net as BVLC's V2 deploy file (first layers).
    const deploy = parseNetPrototxt(bvlc('lenet.prototxt'))
    expect(input?.input_param).toEqual(deploy.layer[0]?.input_param)
    expect(conv1?.convolution_param).toEqual(deploy.layer[1]?.convolution_param)
  })

  it('turns input_shape into the Input layer shapes', () => {
    const { value, notes } = upgradeNetParameter(parseNetPrototxt('input: "a" input: "b" input_shape { dim: 1 dim: 2 } input_shape { dim: 3 } layer { name: "x" type: "ReLU" }'))
    expect(value.layer.map((l) => l.name)).toEqual(['input', 'x'])
    expect(value.layer[0]?.top).toEqual(['a', 'b'])
    expect(value.layer[0]?.input_param?.shape).toEqual([{ dim: [1, 2] }, { dim: [3] }])
    expect(notes.at(-1)).toEqual({ severity: 'WARNING', message: 'Note that future Caffe releases will only support input layers and not input fields.' })
  })

  it('drops a lone input field (legacy caffemodel) without adding a layer', () => {
    const { value } = upgradeNetParameter(parseNetPrototxt('input: "data" layer { name: "x" }'))
    expect(value.layer.map((l) => l.name)).toEqual(['x'])
    expect(value.input).toEqual([])
  })

  it('upgrades a V1 .caffemodel with blobs, keeping the weights', () => {
    const model = createMessage('NetParameter', {
      name: 'm',
      layers: [{ name: 'ip', type: 'INNER_PRODUCT', blobs_lr: [1, 2], blobs: [{ num: 1, channels: 1, height: 2, width: 3, data: [1, 2, 3, 4, 5, 6] }, { num: 1, channels: 1, height: 1, width: 2, data: [7, 8] }] }]
    })
    const { value } = upgradeNetParameter(decodeNetParameter(encodeNetParameter(model)))
    expect(value.layer[0]?.type).toBe('InnerProduct')
    expect(value.layer[0]?.blobs.map((b) => [...b.data])).toEqual([[1, 2, 3, 4, 5, 6], [7, 8]])
    expect(value.layer[0]?.blobs[0]?.height).toBe(2)
  })

  it('zeroes the multipliers of old three-param BatchNorm layers only', () => {
    const net = parseNetPrototxt(`
      layer { name: "bn" type: "BatchNorm" param { lr_mult: 1 } param { lr_mult: 1 name: "x" } param { lr_mult: 1 } }
      layer { name: "bn2" type: "BatchNorm" param { lr_mult: 1 } }`)
    expect(netNeedsUpgrade(net)).toBe(true)
    const { value } = upgradeNetParameter(net)
    expect(value.layer[0]?.param).toEqual([{ lr_mult: 0, decay_mult: 0 }, { lr_mult: 0, decay_mult: 0, name: 'x' }, { lr_mult: 0, decay_mult: 0 }])
    expect(value.layer[1]?.param).toEqual([{ lr_mult: 1 }])
  })

  it('leaves a current net alone', () => {
    const net = parseNetPrototxt(bvlc('cifar10_quick_train_test.prototxt'))
    expect(netNeedsUpgrade(net)).toBe(false)
    const { value, notes } = upgradeNetParameter(net)
    expect(value).toEqual(net)
    expect(notes).toEqual([])
  })

  it('refuses what Caffe refuses', () => {
    expect(() => upgradeNetParameter(parseNetPrototxt('layer { name: "a" } layers { name: "b" }'))).toThrow(ProtoUpgradeError)
    expect(() => upgradeNetParameter(parseNetPrototxt('layer { name: "a" } layers { name: "b" }'))).toThrow("both 'layer' and 'layers'")
    expect(() => upgradeNetParameter(parseNetPrototxt('\nlayers {\n name: "old" layer { type: "conv" } }'))).toThrow("layer 'old' (line 2): V0 layer definitions")
    expect(() => upgradeNetParameter(parseNetPrototxt('input: "a" input_dim: 1 input_dim: 2'))).toThrow('1 input names need 4 input_dim values (4 per input), found 2')
    expect(() => upgradeNetParameter(parseNetPrototxt('input: "a" input: "b" input_shape { dim: 1 }'))).toThrow('2 input names but 1 input_shape entries')
  })

  it('maps every V1 layer type enum value', () => {
    expect(Object.keys(V1_LAYER_TYPES).sort()).toEqual(Object.keys(CAFFE_ENUMS['V1LayerParameter.LayerType']).sort())
  })
})

describe('upgradeSolverParameter', () => {
  it('turns solver_type into type and fills snapshot_prefix from the file name', () => {
    const s = parseSolverPrototxt(v1('lenet_solver_v1.prototxt'))
    const { value, notes } = upgradeSolverParameter(s, { file: 'models/lenet_solver_v1.prototxt' })
    expect(value.type).toBe('Nesterov')
    expect(value.solver_type).toBeUndefined()
    expect(value.snapshot_prefix).toBe('models/lenet_solver_v1')
    expect(notes.map((n) => n.severity)).toEqual(['INFO', 'INFO', 'WARNING', 'INFO'])
    expect(s.solver_type).toBe('NESTEROV')
  })

  it('keeps an explicit snapshot_prefix, and needs the file name to invent one', () => {
    expect(upgradeSolverParameter(parseSolverPrototxt(bvlc('lenet_solver.prototxt')), { file: 'x.prototxt' }).value.snapshot_prefix).toBe('examples/mnist/lenet')
    expect(upgradeSolverParameter(parseSolverPrototxt('base_lr: 1')).value.snapshot_prefix).toBeUndefined()
    expect(upgradeSolverParameter(parseSolverPrototxt('base_lr: 1'), { file: 'dir.v2/solver' }).value.snapshot_prefix).toBe('dir.v2/solver')
  })

  it('rejects both solver_type and type, with Caffe’s message', () => {
    expect(() => upgradeSolverParameter(parseSolverPrototxt('solver_type: ADAM type: "Adam"'))).toThrow('Failed to upgrade solver: old solver_type field (enum) and new type field (string) cannot be both specified in solver proto text.')
  })
})
