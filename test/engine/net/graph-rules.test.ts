import { describe, it, expect } from 'vitest'
import { filterLayers, stateMeetsRule, NetStateRuleError } from '../../../src/engine/net/state-rules.js'
import { insertSplits, UnknownBottomError, type SplitSpec } from '../../../src/engine/net/insert-splits.js'

interface L { name: string, type: string, bottom: string[], top: string[], loss_weight: number[], include?: Array<Record<string, unknown>>, exclude?: Array<Record<string, unknown>> }
const layer = (name: string, type: string, bottom: string[], top: string[], extra: Partial<L> = {}): L =>
  ({ name, type, bottom, top, loss_weight: [], ...extra })
const split = (s: SplitSpec): L => ({ name: s.name, type: 'Split', bottom: [s.bottom], top: s.top, loss_weight: s.lossWeight })

describe('NetState rules (Net::FilterNet / StateMeetsRule)', () => {
  const lenet = [
    layer('mnist', 'Data', [], ['data', 'label'], { include: [{ phase: 'TRAIN' }] }),
    layer('mnist', 'Data', [], ['data', 'label'], { include: [{ phase: 'TEST' }] }),
    layer('ip', 'InnerProduct', ['data'], ['ip']),
    layer('accuracy', 'Accuracy', ['ip', 'label'], ['accuracy'], { include: [{ phase: 'TEST' }] }),
    layer('loss', 'SoftmaxWithLoss', ['ip', 'label'], ['loss'])
  ]

  it('keeps the phase-specific layers and logs why the others were dropped, like Caffe', () => {
    const notes: string[] = []
    const train = filterLayers(lenet, { phase: 'TRAIN', level: 0, stage: [''] }, (line, m) => notes.push(`${line}] ${m}`))
    expect(train.map((l) => l.name)).toEqual(['mnist', 'ip', 'loss'])
    expect(train[0]?.include).toEqual([{ phase: 'TRAIN' }])
    expect(notes).toEqual([
      '294] The NetState phase (0) differed from the phase (1) specified by a rule in layer mnist',
      '294] The NetState phase (0) differed from the phase (1) specified by a rule in layer accuracy'
    ])
    const test = filterLayers(lenet, { phase: 'TEST' })
    expect(test.map((l) => l.name)).toEqual(['mnist', 'ip', 'accuracy', 'loss'])
  })

  it('applies level and stage conditions', () => {
    const s = { phase: 'TEST' as const, level: 2, stage: ['deploy'] }
    expect(stateMeetsRule(s, { min_level: 3 }, 'x')).toBe(false)
    expect(stateMeetsRule(s, { max_level: 1 }, 'x')).toBe(false)
    expect(stateMeetsRule(s, { min_level: 2, max_level: 2 }, 'x')).toBe(true)
    expect(stateMeetsRule(s, { stage: ['deploy'] }, 'x')).toBe(true)
    expect(stateMeetsRule(s, { stage: ['deploy', 'extra'] }, 'x')).toBe(false)
    expect(stateMeetsRule(s, { not_stage: ['deploy'] }, 'x')).toBe(false)
    // An absent phase means TEST, as in caffe.proto.
    expect(stateMeetsRule({}, { phase: 'TEST' }, 'x')).toBe(true)
  })

  it('exclude rules drop a layer; include and exclude together are refused', () => {
    const ls = [layer('a', 'ReLU', [], [], { exclude: [{ phase: 'TEST' }] })]
    expect(filterLayers(ls, { phase: 'TEST' })).toHaveLength(0)
    expect(filterLayers(ls, { phase: 'TRAIN' })).toHaveLength(1)
    const both = [layer('b', 'ReLU', [], [], { include: [{ phase: 'TEST' }], exclude: [{ phase: 'TRAIN' }] })]
    expect(() => filterLayers(both, { phase: 'TEST' })).toThrow(NetStateRuleError)
  })
})

describe('insertSplits (Caffe InsertSplits naming)', () => {
  it('splits LeNet TEST net\'s label and ip2 exactly as real Caffe names them', () => {
    const net = [
      layer('mnist', 'Data', [], ['data', 'label']),
      layer('ip1', 'InnerProduct', ['data'], ['ip1']),
      layer('relu1', 'ReLU', ['ip1'], ['ip1']),
      layer('ip2', 'InnerProduct', ['ip1'], ['ip2']),
      layer('accuracy', 'Accuracy', ['ip2', 'label'], ['accuracy']),
      layer('loss', 'SoftmaxWithLoss', ['ip2', 'label'], ['loss'])
    ]
    const out = insertSplits(net, split)
    expect(out.map((l) => l.name)).toEqual(['mnist', 'label_mnist_1_split', 'ip1', 'relu1', 'ip2', 'ip2_ip2_0_split', 'accuracy', 'loss'])
    expect(out[1]?.top).toEqual(['label_mnist_1_split_0', 'label_mnist_1_split_1'])
    expect(out[6]?.bottom).toEqual(['ip2_ip2_0_split_0', 'label_mnist_1_split_0'])
    expect(out[7]?.bottom).toEqual(['ip2_ip2_0_split_1', 'label_mnist_1_split_1'])
    expect(out[3]?.bottom).toEqual(['ip1']) // in-place chain needs no split
    expect(net[4]?.bottom).toEqual(['ip2', 'label']) // input untouched
  })

  it('counts a loss-weighted top as a consumer and moves the weight onto the split', () => {
    const net = [
      layer('in', 'Input', [], ['x']),
      layer('fc', 'InnerProduct', ['x'], ['y'], { loss_weight: [0.5] }),
      layer('act', 'ReLU', ['y'], ['z'])
    ]
    const out = insertSplits(net, split)
    expect(out.map((l) => l.name)).toEqual(['in', 'fc', 'y_fc_0_split', 'act'])
    expect(out[1]?.loss_weight).toEqual([])
    expect(out[2]?.loss_weight).toEqual([0.5, 0])
    expect(out[3]?.bottom).toEqual(['y_fc_0_split_1'])
  })

  it('names an unknown bottom with its layer and index', () => {
    expect(() => insertSplits([layer('fc', 'InnerProduct', ['nope'], ['y'])], split))
      .toThrow(new UnknownBottomError('nope', 'fc', 0))
    expect(() => insertSplits([layer('fc', 'InnerProduct', ['nope'], ['y'])], split))
      .toThrow("Unknown bottom blob 'nope' (layer 'fc', bottom index 0)")
  })
})
