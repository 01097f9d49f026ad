import { describe, expect, it } from 'vitest'
import { Blob } from '../../../src/engine/blob.js'
import { fillBlob, FillerError } from '../../../src/engine/layers/filler.js'
import { createMessage, type MessageInit } from '../../../src/engine/proto/caffe.js'
import { Rng } from '../../../src/engine/random.js'

function filled (shape: number[], init: MessageInit<'FillerParameter'> | undefined, seed = 5): Blob {
  const b = new Blob(shape)
  fillBlob(b, init === undefined ? undefined : createMessage('FillerParameter', init), new Rng(seed))
  return b
}

function stats (a: Float32Array): { mean: number, std: number, min: number, max: number } {
  let s = 0
  let s2 = 0
  let min = Infinity
  let max = -Infinity
  for (const v of a) {
    s += v
    s2 += v * v
    min = Math.min(min, v)
    max = Math.max(max, v)
  }
  const mean = s / a.length
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), min, max }
}

describe('Rng', () => {
  it('repeats a sequence for a seed, differs across seeds, restores saved state', () => {
    const a = new Rng(42)
    const b = new Rng(42)
    const seqA = Array.from({ length: 100 }, () => a.nextUint32())
    expect(Array.from({ length: 100 }, () => b.nextUint32())).toEqual(seqA)
    expect(new Rng(43).nextUint32()).not.toBe(seqA[0])
    // Large (int64-sized) seeds use their high bits too.
    expect(new Rng(2 ** 40).nextUint32()).not.toBe(new Rng(0).nextUint32())
    const c = new Rng(7)
    c.gaussian()
    const state = c.getState()
    const next = [c.gaussian(), c.uniform(), c.gaussian()]
    const d = new Rng(0)
    d.setState(state)
    expect([d.gaussian(), d.uniform(), d.gaussian()]).toEqual(next)
  })

  it('draws uniform and gaussian values with the right moments', () => {
    const r = new Rng(1)
    const u = Float32Array.from({ length: 50000 }, () => r.uniform())
    const su = stats(u)
    expect(su.min).toBeGreaterThanOrEqual(0)
    expect(su.max).toBeLessThan(1)
    expect(su.mean).toBeCloseTo(0.5, 2)
    const g = Float32Array.from({ length: 50000 }, () => r.gaussian(3, 2))
    const sg = stats(g)
    expect(sg.mean).toBeCloseTo(3, 1)
    expect(sg.std).toBeCloseTo(2, 1)
    const items = [1, 2, 3, 4, 5]
    r.shuffle(items)
    expect([...items].sort()).toEqual([1, 2, 3, 4, 5])
  })
})

describe('fillers', () => {
  it('constant (the default is constant 0), uniform', () => {
    expect([...filled([3], undefined).data]).toEqual([0, 0, 0])
    expect([...filled([3], { type: 'constant', value: 0.2 }).data]).toEqual([0.2, 0.2, 0.2].map(Math.fround))
    const u = stats(filled([20000], { type: 'uniform', min: -3, max: -1 }).data)
    expect(u.min).toBeGreaterThanOrEqual(-3)
    expect(u.max).toBeLessThanOrEqual(-1)
    expect(u.mean).toBeCloseTo(-2, 1)
  })

  it('gaussian, with sparse keeping sparse/num_outputs of the weights', () => {
    const g = stats(filled([100, 200], { type: 'gaussian', mean: 1, std: 0.5 }).data)
    expect(g.mean).toBeCloseTo(1, 1)
    expect(g.std).toBeCloseTo(0.5, 1)
    const sparse = filled([100, 200], { type: 'gaussian', std: 1, sparse: 20 }).data
    const nonZero = sparse.filter((v) => v !== 0).length / sparse.length
    expect(nonZero).toBeGreaterThan(0.17)
    expect(nonZero).toBeLessThan(0.23)
  })

  it('xavier and msra scale with fan-in, fan-out or their average', () => {
    // Conv weights 50×20×5×5: fan_in = 500, fan_out = 50·25 = 1250.
    const shape = [50, 20, 5, 5]
    const x = stats(filled(shape, { type: 'xavier' }).data)
    expect(x.max).toBeLessThanOrEqual(Math.sqrt(3 / 500))
    expect(x.std).toBeCloseTo(Math.sqrt(1 / 500), 3)
    expect(stats(filled(shape, { type: 'xavier', variance_norm: 'FAN_OUT' }).data).std).toBeCloseTo(Math.sqrt(1 / 1250), 3)
    expect(stats(filled(shape, { type: 'msra' }).data).std).toBeCloseTo(Math.sqrt(2 / 500), 3)
    expect(stats(filled(shape, { type: 'msra', variance_norm: 'AVERAGE' }).data).std).toBeCloseTo(Math.sqrt(2 / 875), 3)
  })

  it('positive_unitball rows sum to 1; bilinear is the upsampling kernel', () => {
    const b = filled([4, 6], { type: 'positive_unitball' }).data
    for (let r = 0; r < 4; r++) expect(b.subarray(r * 6, r * 6 + 6).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5)
    expect([...filled([1, 1, 4, 4], { type: 'bilinear' }).data.subarray(0, 4)]).toEqual([0.0625, 0.1875, 0.1875, 0.0625])
  })

  it('is deterministic for a seed and rejects unknown types', () => {
    expect(filled([50], { type: 'xavier' }, 3).data).toEqual(filled([50], { type: 'xavier' }, 3).data)
    expect(filled([50], { type: 'xavier' }, 3).data).not.toEqual(filled([50], { type: 'xavier' }, 4).data)
    expect(() => filled([2], { type: 'orthogonal' })).toThrow(FillerError)
  })
})
