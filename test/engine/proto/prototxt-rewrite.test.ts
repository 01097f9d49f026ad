import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { rewriteNetPrototxt, rewriteSolverPrototxt, summarizeSolver, PrototxtRewriteError } from '../../../src/engine/proto/prototxt-rewrite.js'
import { parseNetPrototxt, parseSolverPrototxt } from '../../../src/engine/proto/text-format.js'
import { upgradeNetParameter } from '../../../src/engine/proto/upgrade.js'

const read = (...p: string[]): string => readFileSync(join(import.meta.dirname, ...p), 'utf8')
const bvlc = (f: string): string => read('../../../../shared/fixtures/caffe-prototxt', f)
const v1 = (f: string): string => read('../../fixtures/caffe-v1', f)

const sources = {
  TRAIN: { source: '/work/job1/train_lmdb', backend: 'LMDB' as const },
  TEST: { source: '/work/job1/test_lmdb', backend: 'LMDB' as const }
}

describe('rewriteSolverPrototxt', () => {
  it('sets net and snapshot_prefix and reports the run settings', () => {
    const r = rewriteSolverPrototxt(bvlc('lenet_solver.prototxt'), { net: '/work/job1/net.prototxt', snapshotPrefix: '/work/job1/snap/lenet', solverMode: 'CPU' })
    const back = parseSolverPrototxt(r.text)
    expect(back.net).toBe('/work/job1/net.prototxt')
    expect(back.snapshot_prefix).toBe('/work/job1/snap/lenet')
    expect(back.solver_mode).toBe('CPU')
    expect(back.base_lr).toBe(Math.fround(0.01))
    expect(r.summary).toEqual({
      net: '/work/job1/net.prototxt',
      snapshotPrefix: '/work/job1/snap/lenet',
      maxIter: 10000,
      snapshot: 5000,
      snapshotAfterTrain: true,
      snapshotFormat: 'BINARYPROTO',
      testInterval: 500,
      testIter: [100],
      testInitialization: true,
      display: 100,
      baseLr: Math.fround(0.01),
      lrPolicy: 'inv',
      type: 'SGD',
      solverMode: 'CPU'
    })
  })

  it('reports the upgraded solver type of an old solver_type enum without rewriting it', () => {
    const r = rewriteSolverPrototxt(v1('lenet_solver_v1.prototxt'), { net: 'n', snapshotPrefix: 's' })
    expect(r.summary.type).toBe('Nesterov')
    expect(parseSolverPrototxt(r.text).solver_type).toBe('NESTEROV')
    expect(summarizeSolver(parseSolverPrototxt('')).maxIter).toBe(0)
  })

  it('refuses solvers with separate or inline nets', () => {
    expect(() => rewriteSolverPrototxt('train_net: "a" test_net: "b"', { net: 'n', snapshotPrefix: 's' })).toThrow(PrototxtRewriteError)
    expect(() => rewriteSolverPrototxt('train_net: "a" test_net: "b"', { net: 'n', snapshotPrefix: 's' })).toThrow('the solver sets train_net, test_net; the job pipeline needs')
  })

  it('reports syntax errors with file and line', () => {
    expect(() => rewriteSolverPrototxt('base_lr: 0.01\nmax_iter 100', { net: 'n', snapshotPrefix: 's' }, { file: 'solver.prototxt' })).toThrow('solver.prototxt:2:10: expected ":" after field "max_iter"')
  })
})

describe('rewriteNetPrototxt', () => {
  it('rewrites both LMDB data layers of the V2 LeNet and keeps everything else', () => {
    const r = rewriteNetPrototxt(bvlc('lenet_train_test.prototxt'), sources)
    expect(r.form).toBe('V2')
    const net = parseNetPrototxt(r.text)
    expect(net.layer[0]?.data_param).toEqual({ source: '/work/job1/train_lmdb', batch_size: 64, backend: 'LMDB' })
    expect(net.layer[1]?.data_param).toEqual({ source: '/work/job1/test_lmdb', batch_size: 100, backend: 'LMDB' })
    // apart from the two sources, identical to the original
    const original = parseNetPrototxt(bvlc('lenet_train_test.prototxt'))
    original.layer[0]!.data_param!.source = '/work/job1/train_lmdb'
    original.layer[1]!.data_param!.source = '/work/job1/test_lmdb'
    expect(net).toEqual(original)
    expect(r.dataLayers).toEqual([
      { name: 'mnist', kind: 'Data', line: 2, phases: ['TRAIN'], originalSource: 'examples/mnist/mnist_train_lmdb', originalMeanFile: undefined, rewritten: true },
      { name: 'mnist', kind: 'Data', line: 19, phases: ['TEST'], originalSource: 'examples/mnist/mnist_test_lmdb', originalMeanFile: undefined, rewritten: true }
    ])
  })

  it('keeps a V1 net in the V1 form, and its upgrade is the rewritten V2 net', () => {
    const r = rewriteNetPrototxt(v1('lenet_train_test_v1.prototxt'), { TRAIN: { source: 'tr', backend: 'LEVELDB' }, TEST: { source: 'te' } })
    expect(r.form).toBe('V1')
    expect(r.text).toContain('layers {')
    expect(r.text).toContain('type: DATA')
    expect(r.text).not.toMatch(/^layer \{/m)
    const back = parseNetPrototxt(r.text)
    expect(back.layers[0]?.data_param).toEqual({ source: 'tr', backend: 'LEVELDB', batch_size: 64, scale: 0.00390625 })
    expect(back.layers[1]?.data_param?.source).toBe('te')
    expect(back.layers[1]?.data_param?.backend).toBe('LMDB')
    expect(r.dataLayers.map((d) => [d.kind, d.phases, d.rewritten])).toEqual([['Data', ['TRAIN'], true], ['Data', ['TEST'], true]])
    const upgraded = upgradeNetParameter(back).value
    expect(upgraded.layer[0]?.transform_param?.scale).toBe(0.00390625)
    expect(upgraded.layer[0]?.data_param?.source).toBe('tr')
  })

  it('rewrites ImageData sources and root_folder, and replaces the mean file where it was written', () => {
    const text = `
      layer { name: "img" type: "ImageData" top: "data" top: "label" include { phase: TRAIN }
        transform_param { mean_file: "old_mean.binaryproto" crop_size: 28 }
        image_data_param { source: "list.txt" root_folder: "/old/" batch_size: 8 new_height: 32 } }
      layer { name: "img" type: "ImageData" top: "data" top: "label" exclude { phase: TRAIN }
        image_data_param { source: "test.txt" batch_size: 8 } }`
    const r = rewriteNetPrototxt(text, {
      TRAIN: { source: '/job/train.txt', rootFolder: '/job/images/', meanFile: '/job/mean.binaryproto' },
      TEST: { source: '/job/test.txt', rootFolder: '/job/images/' }
    })
    const net = parseNetPrototxt(r.text)
    expect(net.layer[0]?.image_data_param).toEqual({ source: '/job/train.txt', root_folder: '/job/images/', batch_size: 8, new_height: 32 })
    expect(net.layer[0]?.transform_param).toEqual({ mean_file: '/job/mean.binaryproto', crop_size: 28, mean_value: [] })
    expect(net.layer[1]?.image_data_param).toEqual({ source: '/job/test.txt', root_folder: '/job/images/', batch_size: 8 })
    expect(r.dataLayers.map((d) => [d.phases, d.originalMeanFile])).toEqual([[['TRAIN'], 'old_mean.binaryproto'], [['TEST'], undefined]])
  })

  it('feeds a layer without phase rules when both phases use the same data, and reports other data layers', () => {
    const text = 'layer { name: "d" type: "Data" top: "data" data_param { source: "x" } }\nlayer { name: "dummy" type: "DummyData" top: "y" include { phase: TEST } }'
    const r = rewriteNetPrototxt(text, { TRAIN: { source: 'same' }, TEST: { source: 'same' } })
    expect(parseNetPrototxt(r.text).layer[0]?.data_param?.source).toBe('same')
    expect(r.dataLayers.map((d) => [d.name, d.kind, d.phases, d.rewritten])).toEqual([['d', 'Data', ['TRAIN', 'TEST'], true], ['dummy', 'DummyData', ['TEST'], false]])
  })

  it('leaves a phase alone when no source is given for it', () => {
    const r = rewriteNetPrototxt(bvlc('lenet_train_test.prototxt'), { TRAIN: { source: 'only-train' } })
    const net = parseNetPrototxt(r.text)
    expect(net.layer[0]?.data_param?.source).toBe('only-train')
    expect(net.layer[1]?.data_param?.source).toBe('examples/mnist/mnist_test_lmdb')
    expect(r.dataLayers.map((d) => d.rewritten)).toEqual([true, false])
  })

  it('refuses a layer shared by both phases when the phases have different data', () => {
    const text = '\n\nlayer { name: "d" type: "Data" top: "data" data_param { source: "x" } }'
    expect(() => rewriteNetPrototxt(text, sources)).toThrow("layer 'd' (line 3) is used in both the TRAIN and the TEST phase")
  })

  it('refuses a net without a Data or ImageData layer, naming what it has', () => {
    let err: unknown
    try { rewriteNetPrototxt(bvlc('lenet.prototxt'), sources) } catch (e) { err = e }
    expect(err).toBeInstanceOf(PrototxtRewriteError)
    expect((err as PrototxtRewriteError).message).toBe("the net has no Data or ImageData layer to read the dataset (it has Input 'data' (line 2)); add a Data layer (LMDB/LevelDB) or an ImageData layer (list file) for the TRAIN phase")
    expect((err as PrototxtRewriteError).statusCode).toBe(400)
    expect(() => rewriteNetPrototxt('name: "empty"', sources)).toThrow('the net has no Data or ImageData layer to read the dataset; add')
  })

  it('handles the CIFAR-10 net with its mean file', () => {
    const r = rewriteNetPrototxt(bvlc('cifar10_quick_train_test.prototxt'), { TRAIN: { source: 'a', meanFile: 'm' }, TEST: { source: 'b', meanFile: 'm' } })
    expect(r.dataLayers.map((d) => d.originalMeanFile)).toEqual(['examples/cifar10/mean.binaryproto', 'examples/cifar10/mean.binaryproto'])
    const net = parseNetPrototxt(r.text)
    expect(net.layer.slice(0, 2).map((l) => [l.data_param?.source, l.transform_param?.mean_file])).toEqual([['a', 'm'], ['b', 'm']])
  })
})
