import { describe, it, expect } from 'vitest'
import { Blob } from '../../../src/engine/blob.js'
import { ParamUpdater, SolverConfigError, type SolverType, type UpdateHyperParams } from '../../../src/engine/solver/param-updater.js'

const hp = (o: Partial<UpdateHyperParams> = {}): UpdateHyperParams => ({
  momentum: 0, momentum2: 0.999, delta: 1e-8, rmsDecay: 0.99, weightDecay: 0, regularizationType: 'L2', clipGradients: -1, iterSize: 1, ...o
})

function param (data: number[], lrMult = 1, decayMult = 1): { blob: Blob, lrMult: number, decayMult: number } {
  const blob = new Blob([data.length])
  blob.data.set(data)
  return { blob, lrMult, decayMult }
}

const close = (actual: Float32Array, expected: number[], digits = 6): void => {
  expect(actual.length).toBe(expected.length)
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits))
}

describe('ParamUpdater: Caffe update rules, checked against hand-computed values', () => {
  it('SGD with momentum and L2 weight decay over two steps', () => {
    const p = param([0.5, -1])
    const u = new ParamUpdater('SGD', hp({ momentum: 0.9, weightDecay: 0.01 }), [p])
    p.blob.diff.set([1, -2])
    u.apply(0.1, 0)
    // diff = g + 0.01*w = [1.005, -2.01]; h = 0.1*diff; w -= h
    close(u.history[0]!.data, [0.1005, -0.201])
    close(p.blob.data, [0.3995, -0.799])
    p.blob.diff.set([1, -2])
    u.apply(0.1, 1)
    // diff = [1.003995, -2.00799]; h = 0.1*diff + 0.9*h = [0.1908495, -0.381699]
    close(u.history[0]!.data, [0.1908495, -0.381699])
    close(p.blob.data, [0.2086505, -0.417301])
  })

  it('honours lr_mult and decay_mult per parameter', () => {
    const w = param([1, 1], 2, 0)
    const b = param([1, 1], 0, 1)
    const u = new ParamUpdater('SGD', hp({ weightDecay: 0.5 }), [w, b])
    w.blob.diff.set([1, 1])
    b.blob.diff.set([1, 1])
    u.apply(0.1, 0)
    close(w.blob.data, [0.8, 0.8]) // lr 0.2, no decay
    close(b.blob.data, [1, 1]) // lr_mult 0 freezes the blob
  })

  it('L1 regularisation adds decay * sign(w)', () => {
    const p = param([2, -3, 0])
    const u = new ParamUpdater('SGD', hp({ weightDecay: 0.1, regularizationType: 'L1' }), [p])
    u.apply(1, 0)
    close(p.blob.data, [1.9, -2.9, 0])
  })

  it('clip_gradients scales the global L2 norm down to the threshold', () => {
    const a = param([0])
    const b = param([0])
    const u = new ParamUpdater('SGD', hp({ clipGradients: 1 }), [a, b])
    a.blob.diff.set([3])
    b.blob.diff.set([4])
    const ev = u.apply(1, 0)
    expect(ev?.l2norm).toBeCloseTo(5, 6)
    expect(ev?.scale).toBeCloseTo(0.2, 6)
    close(a.blob.data, [-0.6])
    close(b.blob.data, [-0.8])
    a.blob.diff.set([0.3])
    b.blob.diff.set([0.4])
    expect(u.apply(1, 1)).toBeUndefined()
  })

  it('iter_size normalises the accumulated gradient', () => {
    const p = param([0])
    const u = new ParamUpdater('SGD', hp({ iterSize: 4 }), [p])
    p.blob.diff.set([2])
    u.apply(1, 0)
    close(p.blob.data, [-0.5])
  })

  it('Nesterov: first step moves by (1 + momentum) * lr * g', () => {
    const p = param([0])
    const u = new ParamUpdater('Nesterov', hp({ momentum: 0.9 }), [p])
    p.blob.diff.set([1])
    u.apply(0.1, 0)
    close(p.blob.data, [-0.19])
    p.blob.diff.set([1])
    u.apply(0.1, 1)
    // h0 = 0.1, h1 = 0.1 + 0.9*0.1 = 0.19; update = 1.9*0.19 - 0.9*0.1 = 0.271
    close(p.blob.data, [-0.461])
  })

  it('AdaGrad: lr * g / (sqrt(sum g^2) + delta)', () => {
    const p = param([0])
    const u = new ParamUpdater('AdaGrad', hp({ delta: 1e-8 }), [p])
    p.blob.diff.set([2])
    u.apply(0.1, 0)
    close(p.blob.data, [-0.1])
    p.blob.diff.set([1])
    u.apply(0.1, 1)
    // history = 4 + 1 = 5; step = 0.1 * 1 / sqrt(5)
    close(p.blob.data, [-0.1 - 0.1 / Math.sqrt(5)])
  })

  it('RMSProp: history = decay*h + (1-decay)*g^2', () => {
    const p = param([0])
    const u = new ParamUpdater('RMSProp', hp({ rmsDecay: 0.99, delta: 1e-8 }), [p])
    p.blob.diff.set([1])
    u.apply(0.01, 0)
    // h = 0.01; step = 0.01 * 1 / 0.1 = 0.1
    close(p.blob.data, [-0.1], 5)
    expect(u.history[0]!.data[0]).toBeCloseTo(0.01, 7)
  })

  it('AdaDelta keeps two histories and scales by sqrt((delta + E[dx^2]) / (delta + E[g^2]))', () => {
    const p = param([0])
    const u = new ParamUpdater('AdaDelta', hp({ momentum: 0.95, delta: 1e-6 }), [p])
    expect(u.history).toHaveLength(2)
    p.blob.diff.set([1])
    u.apply(1, 0)
    const upd = Math.sqrt(1e-6 / (1e-6 + 0.05))
    close(p.blob.data, [-upd], 6)
    expect(u.history[0]!.data[0]).toBeCloseTo(0.05, 7)
    expect(u.history[1]!.data[0]).toBeCloseTo(0.05 * upd * upd, 9)
  })

  it('Adam: bias-corrected first step is lr * sign(g)', () => {
    const p = param([0, 0])
    const u = new ParamUpdater('Adam', hp({ momentum: 0.9, momentum2: 0.999, delta: 1e-8 }), [p])
    expect(u.history).toHaveLength(2)
    p.blob.diff.set([0.5, -3])
    u.apply(0.001, 0)
    close(p.blob.data, [-0.001, 0.001], 5)
    close(u.history[0]!.data, [0.05, -0.3])
    close(u.history[1]!.data, [0.00025, 0.009])
  })

  it.each<[SolverType, Partial<UpdateHyperParams>, string]>([
    ['AdaGrad', { momentum: 0.9 }, 'Momentum cannot be used with AdaGrad.'],
    ['RMSProp', { momentum: 0.9 }, 'Momentum cannot be used with RMSProp.'],
    ['RMSProp', { rmsDecay: 1 }, 'rms_decay should lie between 0 and 1.'],
    ['SGD', { weightDecay: 0.1, regularizationType: 'L3' }, 'Unknown regularization type: L3']
  ])('%s rejects %o', (type, o, message) => {
    expect(() => new ParamUpdater(type, hp(o), [param([0])])).toThrow(SolverConfigError)
    expect(() => new ParamUpdater(type, hp(o), [param([0])])).toThrow(message)
  })
})
