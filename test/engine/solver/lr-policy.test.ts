import { describe, it, expect } from 'vitest'
import { learningRate, UnknownLrPolicyError, type LrSchedule } from '../../../src/engine/solver/lr-policy.js'
import { formatCxx } from '../../../src/engine/solver/format-number.js'

const base: LrSchedule = { lrPolicy: 'fixed', baseLr: 0.01, gamma: 0, power: 0, stepsize: 0, stepvalue: [], maxIter: 100 }
const rate = (s: Partial<LrSchedule>, iter: number, step = 0): number => learningRate({ ...base, ...s }, iter, step).rate

describe('learning-rate policies (Caffe SGDSolver::GetLearningRate)', () => {
  it('fixed returns base_lr at every iteration', () => {
    expect(rate({}, 0)).toBeCloseTo(0.01, 9)
    expect(rate({}, 12345)).toBeCloseTo(0.01, 9)
  })

  it('step: base_lr * gamma ^ floor(iter / stepsize)', () => {
    const s = { lrPolicy: 'step', baseLr: 0.1, gamma: 0.5, stepsize: 10 }
    expect(rate(s, 9)).toBeCloseTo(0.1, 7)
    expect(rate(s, 10)).toBeCloseTo(0.05, 7)
    expect(rate(s, 25)).toBeCloseTo(0.025, 7)
    expect(learningRate({ ...base, ...s }, 25, 0).currentStep).toBe(2)
  })

  it('exp: base_lr * gamma ^ iter', () => {
    expect(rate({ lrPolicy: 'exp', baseLr: 0.1, gamma: 0.9 }, 2)).toBeCloseTo(0.081, 7)
  })

  it('inv reproduces the lr column of the real Caffe LeNet CPU log', () => {
    const s = { lrPolicy: 'inv', baseLr: 0.01, gamma: 0.0001, power: 0.75 }
    // Values copied from ../shared/fixtures/caffe-logs/cpu.err (sgd_solver.cpp:105 lines).
    expect(formatCxx(rate(s, 0))).toBe('0.01')
    expect(formatCxx(rate(s, 100))).toBe('0.00992565')
    expect(formatCxx(rate(s, 200))).toBe('0.00985258')
    expect(formatCxx(rate(s, 9900))).toBe('0.00596843')
  })

  it('multistep advances one boundary per call and keeps the step across calls', () => {
    const s: LrSchedule = { ...base, lrPolicy: 'multistep', baseLr: 1, gamma: 0.1, stepvalue: [5, 10] }
    let step = 0
    const seen: number[] = []
    let advances = 0
    for (let iter = 0; iter <= 12; iter++) {
      const r = learningRate(s, iter, step)
      step = r.currentStep
      if (r.multistepAdvanced) advances++
      seen.push(Number(r.rate.toPrecision(6)))
    }
    expect(seen).toEqual([1, 1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01])
    expect(step).toBe(2)
    expect(advances).toBe(2)
  })

  it('poly: base_lr * (1 - iter/max_iter) ^ power', () => {
    expect(rate({ lrPolicy: 'poly', baseLr: 1, power: 2, maxIter: 100 }, 50)).toBeCloseTo(0.25, 7)
    expect(rate({ lrPolicy: 'poly', baseLr: 1, power: 2, maxIter: 100 }, 100)).toBe(0)
  })

  it('sigmoid: base_lr / (1 + exp(-gamma * (iter - stepsize)))', () => {
    const s = { lrPolicy: 'sigmoid', baseLr: 1, gamma: 0.1, stepsize: 50 }
    expect(rate(s, 50)).toBeCloseTo(0.5, 7)
    expect(rate(s, 60)).toBeCloseTo(1 / (1 + Math.exp(-1)), 6)
  })

  it('rejects an unknown policy with Caffe\'s message', () => {
    expect(() => rate({ lrPolicy: 'cosine' }, 0)).toThrow(UnknownLrPolicyError)
    expect(() => rate({ lrPolicy: 'cosine' }, 0)).toThrow('Unknown learning rate policy: cosine')
  })
})

describe('formatCxx (ostream default float formatting)', () => {
  it('matches %g with precision 6', () => {
    expect(formatCxx(2.362031)).toBe('2.36203')
    expect(formatCxx(0.00001)).toBe('1e-05')
    expect(formatCxx(3.7346e-7)).toBe('3.7346e-07')
    expect(formatCxx(1234567)).toBe('1.23457e+06')
    expect(formatCxx(100000)).toBe('100000')
    expect(formatCxx(0.1155)).toBe('0.1155')
    expect(formatCxx(29.1715)).toBe('29.1715')
    expect(formatCxx(0)).toBe('0')
    expect(formatCxx(Number.NaN)).toBe('nan')
    expect(formatCxx(-Infinity)).toBe('-inf')
    expect(formatCxx(9.9999996)).toBe('10')
  })
})
