import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Blob } from '../../../src/engine/blob.js'
import { createKernels } from '../../../src/engine/kernels/create-kernels.js'
import { convOutputSize } from '../../../src/engine/kernels/im2col.js'
import type { Kernels } from '../../../src/engine/kernels/kernels.js'
import { ConvolutionLayer } from '../../../src/engine/layers/convolution-layer.js'
import { LayerDataError } from '../../../src/engine/layers/errors.js'
import { pooledSize } from '../../../src/engine/layers/pooling-layer.js'
import { Rng } from '../../../src/engine/random.js'
import { kernelKinds } from '../../helpers/kernel-paths.js'
import { blobFrom, context, distinctBlob, expectClose, gaussianBlob, setUpLayer, tsKernels } from './helpers.js'

const seq = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => i + from)

describe('output size rules', () => {
  it('pooling: ceil rounding, the clipped last window when padded, FLOOR', () => {
    expect(pooledSize(24, 2, 0, 2)).toBe(12)
    expect(pooledSize(3, 2, 0, 2)).toBe(2)
    expect(pooledSize(32, 3, 0, 2)).toBe(16)
    expect(pooledSize(32, 3, 0, 2, 'FLOOR')).toBe(15)
    expect(pooledSize(7, 3, 1, 2)).toBe(4)
    // ceil((5 + 2 − 2) / 2) + 1 = 4, but the 4th window would start in the padding.
    expect(pooledSize(5, 2, 1, 2)).toBe(3)
    expect(pooledSize(6, 3, 1, 3)).toBe(3)
  })

  it('convolution: floor rounding, padding, dilation', () => {
    expect(convOutputSize(28, 5, 0, 1, 1)).toBe(24)
    expect(convOutputSize(32, 5, 2, 1, 1)).toBe(32)
    expect(convOutputSize(227, 11, 0, 4, 1)).toBe(55)
    expect(convOutputSize(7, 3, 0, 1, 2)).toBe(3)
    expect(convOutputSize(3, 2, 1, 2, 1)).toBe(2)
  })
})

describe('Pooling forward', () => {
  it('MAX with ceil rounding takes the clipped last windows, first maximum wins, mask top', () => {
    const x = blobFrom([1, 1, 3, 3], seq(9))
    const y = new Blob()
    const mask = new Blob()
    const layer = setUpLayer({ type: 'Pooling', pooling_param: { pool: 'MAX', kernel_size: 2, stride: 2 } }, [x], [y, mask])
    layer.forward([x], [y, mask])
    expect(y.shape).toEqual([1, 1, 2, 2])
    expect([...y.data]).toEqual([5, 6, 8, 9])
    expect([...mask.data]).toEqual([4, 5, 7, 8])
    const ties = blobFrom([1, 1, 2, 2], [7, 7, 7, 7])
    layer.reshape([ties], [y, mask])
    layer.forward([ties], [y, mask])
    expect([...mask.data]).toEqual([0])
  })

  it('AVE divides by the window clipped to the padded image, padding included', () => {
    const x = blobFrom([1, 1, 3, 3], seq(9))
    const y = new Blob()
    const l = setUpLayer({ type: 'Pooling', pooling_param: { pool: 'AVE', kernel_size: 2, stride: 2 } }, [x], [y])
    l.forward([x], [y])
    expectClose(y.data, [3, 4.5, 7.5, 9])
    const x4 = blobFrom([1, 1, 4, 4], seq(16))
    const z = new Blob()
    const p = setUpLayer({ type: 'Pooling', pooling_param: { pool: 'AVE', kernel_size: 3, stride: 2, pad: 1 } }, [x4], [z])
    p.forward([x4], [z])
    expect(z.shape).toEqual([1, 1, 3, 3])
    // Window rows (and columns) are −1..1, 1..3 and 3..4, the last clipped to the padded edge:
    // sizes 3, 3, 2. Each average divides the sum of the real cells by rows × columns.
    expectClose(z.data, [14 / 9, 30 / 9, 12 / 6, 57 / 9, 99 / 9, 36 / 6, 27 / 6, 45 / 6, 16 / 4], 1e-6)
  })

  it('global pooling and padded MAX', () => {
    const x = blobFrom([1, 2, 2, 2], [1, 5, 3, 2, -1, -2, -3, -4])
    const y = new Blob()
    setUpLayer({ type: 'Pooling', pooling_param: { pool: 'MAX', global_pooling: true } }, [x], [y]).forward([x], [y])
    expect([...y.data]).toEqual([5, -1])
    const z = new Blob()
    setUpLayer({ type: 'Pooling', pooling_param: { pool: 'AVE', global_pooling: true } }, [x], [z]).forward([x], [z])
    expectClose(z.data, [2.75, -2.5])
    const w = new Blob()
    const padded = setUpLayer({ type: 'Pooling', pooling_param: { pool: 'MAX', kernel_size: 2, stride: 1, pad: 1 } }, [x], [w])
    padded.forward([x], [w])
    expect(w.shape).toEqual([1, 2, 3, 3])
    expect([...w.data.subarray(0, 9)]).toEqual([1, 5, 5, 3, 5, 5, 3, 3, 2])
    expect([...w.data.subarray(9)]).toEqual([-1, -1, -2, -1, -1, -2, -3, -3, -4])
  })
})

describe('Convolution forward', () => {
  const saved = ConvolutionLayer.columnLimit
  afterEach(() => {
    ConvolutionLayer.columnLimit = saved
    ConvolutionLayer.forwardMethod = 'auto'
  })

  it('computes a 2x2 kernel by hand, without and with pad/stride', () => {
    const x = blobFrom([1, 1, 3, 3], seq(9))
    const y = new Blob()
    const conv = setUpLayer({ type: 'Convolution', convolution_param: { num_output: 1, kernel_size: [2], bias_filler: { type: 'constant', value: 0.5 } } }, [x], [y])
    conv.blobs[0]?.data.set([1, 2, 3, 4])
    conv.forward([x], [y])
    expectClose(y.data, [37.5, 47.5, 67.5, 77.5])
    // A new batch size after set-up: the net reshapes before each forward.
    const two = blobFrom([2, 1, 3, 3], [...seq(9), ...seq(9, 2)])
    conv.reshape([two], [y])
    expect(y.shape).toEqual([2, 1, 2, 2])
    conv.forward([two], [y])
    expectClose(y.data, [37.5, 47.5, 67.5, 77.5, 47.5, 57.5, 77.5, 87.5])
    const z = new Blob()
    const padded = setUpLayer({ type: 'Convolution', convolution_param: { num_output: 1, kernel_size: [2], pad: [1], stride: [2], bias_term: false } }, [x], [z])
    padded.blobs[0]?.data.set([1, 2, 3, 4])
    padded.forward([x], [z])
    expectClose(z.data, [4, 18, 36, 77])
  })

  it('groups see only their own channels', () => {
    const x = blobFrom([1, 2, 2, 2], [1, 1, 1, 1, 2, 2, 2, 2])
    const y = new Blob()
    const conv = setUpLayer({ type: 'Convolution', convolution_param: { num_output: 2, kernel_size: [1], group: 2, bias_term: false } }, [x], [y])
    expect(conv.blobs[0]?.shape).toEqual([2, 1, 1, 1])
    conv.blobs[0]?.data.set([3, 5])
    conv.forward([x], [y])
    expect([...y.data]).toEqual([3, 3, 3, 3, 10, 10, 10, 10])
  })

  it('matches a float64 direct convolution whether the batch is unfolded at once, in chunks or per image', () => {
    const rng = new Rng(21)
    const configs = [
      { num_output: 4, kernel_size: [3], pad: [1], stride: [1], group: 1 },
      { num_output: 6, kernel_h: 2, kernel_w: 3, stride_h: 2, stride_w: 1, pad_h: 0, pad_w: 2, group: 3 },
      { num_output: 2, kernel_size: [3], dilation: [2], group: 1 }
    ]
    for (const limit of [saved, 3 * 27 * 40, 1]) {
      ConvolutionLayer.columnLimit = limit
      for (const cfg of configs) {
        const x = gaussianBlob([5, 6, 7, 8], rng)
        const y = new Blob()
        const conv = setUpLayer({ type: 'Convolution', convolution_param: { ...cfg, weight_filler: { type: 'gaussian' }, bias_filler: { type: 'gaussian' } } }, [x], [y])
        conv.forward([x], [y])
        expectClose(y.data, directConv(x, conv.blobs[0] as Blob, conv.blobs[1] as Blob, cfg, y.shape), 1e-4)
      }
    }
  })
})

describe('Convolution forward by row unfolding', () => {
  let blas: Kernels | undefined
  const blasKernels = (): Kernels => (blas ??= createKernels({ kind: 'blas', threads: 2 }))
  afterAll(() => blas?.close())
  afterEach(() => { ConvolutionLayer.forwardMethod = 'auto' })
  const configs = [
    { num_output: 5, kernel_size: [5], group: 1 },
    { num_output: 4, kernel_size: [3], pad: [1], stride: [1], group: 1 },
    { num_output: 6, kernel_h: 2, kernel_w: 3, stride_h: 1, stride_w: 2, pad_h: 1, pad_w: 2, group: 3 },
    { num_output: 2, kernel_size: [3], dilation: [2], group: 2 },
    // Stride 2 in height: falls back to the batched method.
    { num_output: 3, kernel_size: [3], stride: [2], group: 1 }
  ]

  for (const kind of kernelKinds) {
    it(`${kind}: matches a float64 direct convolution (pad, dilation, stride in width, groups; forced and auto in TEST)`, () => {
      const kernels = kind === 'ts' ? tsKernels : blasKernels()
      const rng = new Rng(23)
      for (const method of ['rows', 'auto'] as const) {
        ConvolutionLayer.forwardMethod = method
        for (const cfg of configs) {
          const x = gaussianBlob([3, 6, 7, 8], rng)
          const y = new Blob()
          const conv = setUpLayer({ type: 'Convolution', convolution_param: { ...cfg, weight_filler: { type: 'gaussian' }, bias_filler: { type: 'gaussian' } } },
            [x], [y], context('TEST', 5, kernels))
          y.data.fill(Number.NaN)
          conv.forward([x], [y])
          expectClose(y.data, directConv(x, conv.blobs[0] as Blob, conv.blobs[1] as Blob, cfg, y.shape), 1e-4)
          // A second batch of another size through the same layer.
          const x2 = gaussianBlob([2, 6, 7, 8], rng)
          conv.reshape([x2], [y])
          conv.forward([x2], [y])
          expectClose(y.data, directConv(x2, conv.blobs[0] as Blob, conv.blobs[1] as Blob, cfg, y.shape), 1e-4)
        }
      }
    })
  }

  it('without bias; backward after a row-unfolding forward gives the batched method\'s gradients', () => {
    const rng = new Rng(29)
    const cfg = { num_output: 4, kernel_size: [3], pad: [1], bias_term: false, weight_filler: { type: 'gaussian' } }
    const x = gaussianBlob([3, 2, 6, 5], rng)
    const grads: Float32Array[][] = []
    for (const method of ['batched', 'rows'] as const) {
      ConvolutionLayer.forwardMethod = method
      const y = new Blob()
      const conv = setUpLayer({ type: 'Convolution', convolution_param: cfg }, [x], [y], context('TRAIN', 3))
      y.data.fill(Number.NaN)
      conv.forward([x], [y])
      expectClose(y.data, directConv(x, conv.blobs[0] as Blob, new Blob([4]), { ...cfg, group: 1 }, y.shape), 1e-4)
      for (let i = 0; i < y.count; i++) y.diff[i] = Math.sin(i)
      x.diff.fill(0)
      conv.blobs[0]?.diff.fill(0)
      conv.backward([y], [true], [x])
      grads.push([Float32Array.from(x.diff), Float32Array.from(conv.blobs[0]?.diff ?? [])])
    }
    expectClose(grads[1]?.[0] ?? [], grads[0]?.[0] ?? [], 1e-5)
    expectClose(grads[1]?.[1] ?? [], grads[0]?.[1] ?? [], 1e-5)
  })
})

/** Convolution straight from the definition, in float64. */
function directConv (x: Blob, w: Blob, b: Blob, cfg: { num_output: number, group: number, kernel_size?: number[], kernel_h?: number, kernel_w?: number, pad?: number[], pad_h?: number, pad_w?: number, stride?: number[], stride_h?: number, stride_w?: number, dilation?: number[] }, outShape: number[]): number[] {
  const [N, C, H, W] = x.shape as [number, number, number, number]
  const [, M, OH, OW] = outShape as [number, number, number, number]
  const kh = cfg.kernel_h ?? cfg.kernel_size?.[0] ?? 1
  const kw = cfg.kernel_w ?? cfg.kernel_size?.[0] ?? 1
  const ph = cfg.pad_h ?? cfg.pad?.[0] ?? 0
  const pw = cfg.pad_w ?? cfg.pad?.[0] ?? 0
  const sh = cfg.stride_h ?? cfg.stride?.[0] ?? 1
  const sw = cfg.stride_w ?? cfg.stride?.[0] ?? 1
  const d = cfg.dilation?.[0] ?? 1
  const cg = C / cfg.group
  const mg = M / cfg.group
  const out: number[] = []
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      const g = Math.floor(m / mg)
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let s = b.data[m] ?? 0
          for (let c = 0; c < cg; c++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const ih = oh * sh - ph + i * d
                const iw = ow * sw - pw + j * d
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue
                s += (w.data[((m * cg + c) * kh + i) * kw + j] ?? 0) * (x.data[((n * C + g * cg + c) * H + ih) * W + iw] ?? 0)
              }
            }
          }
          out.push(s)
        }
      }
    }
  }
  return out
}

describe('InnerProduct, neurons', () => {
  it('InnerProduct computes Wx + b with N×K weights', () => {
    const x = blobFrom([1, 2], [1, 2])
    const y = new Blob()
    const ip = setUpLayer({ type: 'InnerProduct', inner_product_param: { num_output: 3 } }, [x], [y])
    expect(ip.blobs[0]?.shape).toEqual([3, 2])
    ip.blobs[0]?.data.set([1, 0, 0, 1, 1, 1])
    ip.blobs[1]?.data.set([0, 0, 1])
    ip.forward([x], [y])
    expect([...y.data]).toEqual([1, 2, 4])
    const two = blobFrom([2, 2], [1, 2, -1, 3])
    ip.reshape([two], [y])
    ip.forward([two], [y])
    expect([...y.data]).toEqual([1, 2, 4, -1, 3, 3])
  })

  it('ReLU with negative_slope, Sigmoid, TanH', () => {
    const x = blobFrom([4], [-2, -0.5, 0, 3])
    const y = new Blob()
    setUpLayer({ type: 'ReLU', relu_param: { negative_slope: 0.1 } }, [x], [y]).forward([x], [y])
    expectClose(y.data, [-0.2, -0.05, 0, 3])
    setUpLayer({ type: 'Sigmoid' }, [x], [y]).forward([x], [y])
    expectClose(y.data, [-2, -0.5, 0, 3].map((v) => 1 / (1 + Math.exp(-v))), 1e-6)
    setUpLayer({ type: 'TanH' }, [x], [y]).forward([x], [y])
    expectClose(y.data, [-2, -0.5, 0, 3].map(Math.tanh), 1e-6)
  })

  it('Dropout scales kept values in TRAIN, is the identity in TEST, repeats with the seed', () => {
    const rng = new Rng(3)
    const x = gaussianBlob([10000], rng)
    const runTrain = (seed: number): Float32Array => {
      const y = new Blob()
      setUpLayer({ type: 'Dropout', dropout_param: { dropout_ratio: 0.25 } }, [x], [y], context('TRAIN', seed)).forward([x], [y])
      return Float32Array.from(y.data)
    }
    const a = runTrain(9)
    let kept = 0
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== 0) {
        kept++
        expect(a[i]).toBeCloseTo((x.data[i] ?? 0) / 0.75, 5)
      }
    }
    expect(kept / a.length).toBeGreaterThan(0.73)
    expect(kept / a.length).toBeLessThan(0.77)
    expect(runTrain(9)).toEqual(a)
    expect(runTrain(10)).not.toEqual(a)
    const y = new Blob()
    setUpLayer({ type: 'Dropout' }, [x], [y], context('TEST')).forward([x], [y])
    expect(y.data).toEqual(x.data)
  })
})

describe('LRN forward', () => {
  it('ACROSS_CHANNELS: k + α/n·Σx² over neighbouring channels', () => {
    const x = blobFrom([1, 3, 1, 1], [1, 2, 3])
    const y = new Blob()
    setUpLayer({ type: 'LRN', lrn_param: { local_size: 3, alpha: 3, beta: 1, k: 1 } }, [x], [y]).forward([x], [y])
    expectClose(y.data, [1 / 6, 2 / 15, 3 / 14], 1e-6)
    const z = new Blob()
    setUpLayer({ type: 'LRN', lrn_param: { local_size: 3, alpha: 3, beta: 0.5, k: 2 } }, [x], [z]).forward([x], [z])
    expectClose(z.data, [1 / Math.sqrt(7), 2 / Math.sqrt(16), 3 / Math.sqrt(15)], 1e-6)
  })

  it('WITHIN_CHANNEL: 1 + α/n²·Σx² over the zero-padded n×n window (k unused)', () => {
    const x = blobFrom([1, 1, 2, 2], [1, 2, 3, 4])
    const y = new Blob()
    setUpLayer({ type: 'LRN', lrn_param: { local_size: 3, alpha: 9, beta: 1, k: 5, norm_region: 'WITHIN_CHANNEL' } }, [x], [y]).forward([x], [y])
    expectClose(y.data, [1 / 31, 2 / 31, 3 / 31, 4 / 31], 1e-6)
  })
})

describe('SoftmaxWithLoss and Accuracy', () => {
  const ln3 = Math.log(3)
  const run = (lossParam: Record<string, unknown>, labels: number[], lossWeight = 1): { loss: number, diff: Float32Array } => {
    const x = blobFrom([2, 3], [0, 0, 0, 0, 0, 0])
    const l = blobFrom([2], labels)
    const top = new Blob()
    const layer = setUpLayer({ type: 'SoftmaxWithLoss', loss_param: lossParam }, [x, l], [top])
    layer.forward([x, l], [top])
    top.diff[0] = lossWeight
    layer.backward([top], [true, false], [x, l])
    return { loss: top.data[0] ?? Number.NaN, diff: Float32Array.from(x.diff) }
  }

  it('normalizes by VALID (default), FULL, BATCH_SIZE, NONE and legacy normalize', () => {
    expect(run({}, [0, 1]).loss).toBeCloseTo(ln3, 6)
    expect(run({ normalization: 'NONE' }, [0, 1]).loss).toBeCloseTo(2 * ln3, 6)
    expect(run({ ignore_label: 1 }, [0, 1]).loss).toBeCloseTo(ln3, 6)
    expect(run({ ignore_label: 1, normalization: 'FULL' }, [0, 1]).loss).toBeCloseTo(ln3 / 2, 6)
    expect(run({ ignore_label: 1, normalization: 'BATCH_SIZE' }, [0, 1]).loss).toBeCloseTo(ln3 / 2, 6)
    expect(run({ ignore_label: 1, normalize: false }, [0, 1]).loss).toBeCloseTo(ln3 / 2, 6)
    expect(run({ ignore_label: 1, normalize: true }, [0, 1]).loss).toBeCloseTo(ln3, 6)
    expect(run({ ignore_label: 0 }, [0, 0]).loss).toBe(0)
  })

  it('scales the gradient by the loss weight over the normalizer and zeroes ignored rows', () => {
    const { diff } = run({ ignore_label: 1, normalization: 'FULL' }, [0, 1], 2)
    expectClose(diff, [(1 / 3 - 1) * 2 / 2, (1 / 3) * 2 / 2, (1 / 3) * 2 / 2, 0, 0, 0], 1e-6)
  })

  it('rejects a label outside the classes with a data error', () => {
    expect(() => run({}, [0, 3])).toThrow(LayerDataError)
    expect(() => run({}, [0, 3])).toThrow(/label 3 is outside \[0, 3\)/)
  })

  it('Accuracy: top_k counts ties as better, ignore_label, per-class top', () => {
    const scores = [0.1, 0.5, 0.4, 0.3, 0.3, 0.4, 0.9, 0.05, 0.05, 0.2, 0.7, 0.1]
    const labels = [2, 0, 1, 1]
    const acc = (param: Record<string, unknown>, perClass = false): number[] => {
      const x = blobFrom([4, 3], scores)
      const l = blobFrom([4], labels)
      const tops = perClass ? [new Blob(), new Blob()] : [new Blob()]
      setUpLayer({ type: 'Accuracy', accuracy_param: param }, [x, l], tops).forward([x, l], tops)
      return tops.flatMap((t) => [...t.data])
    }
    expectClose(acc({}), [0.25])
    expectClose(acc({ top_k: 2 }), [0.5])
    expectClose(acc({ top_k: 3 }), [1])
    expectClose(acc({ ignore_label: 0 }), [1 / 3])
    expectClose(acc({}, true), [0.25, 0, 0.5, 0])
  })
})

describe('BatchNorm, Scale, Eltwise, Concat, Flatten, Split', () => {
  it('BatchNorm keeps Caffe\'s running sums and scale factor, and uses them with global stats', () => {
    const x = blobFrom([2, 1], [1, 3])
    const y = new Blob()
    const bn = setUpLayer({ type: 'BatchNorm', batch_norm_param: { eps: 0, moving_average_fraction: 0.5 } }, [x], [y])
    expect(bn.blobs.map((b) => b.shape)).toEqual([[1], [1], [1]])
    expect(bn.fixedParams).toEqual([0, 1, 2])
    bn.forward([x], [y])
    expectClose(y.data, [-1, 1])
    expectClose(bn.blobs[0]?.data ?? [], [2])
    expectClose(bn.blobs[1]?.data ?? [], [2])
    expectClose(bn.blobs[2]?.data ?? [], [1])
    const x2 = blobFrom([2, 1], [4, 8])
    bn.forward([x2], [y])
    expectClose(bn.blobs[0]?.data ?? [], [6 + 1])
    expectClose(bn.blobs[1]?.data ?? [], [2 * 4 + 1])
    expectClose(bn.blobs[2]?.data ?? [], [1.5])
    const test = setUpLayer({ type: 'BatchNorm', batch_norm_param: { eps: 0 } }, [x], [y], context('TEST'))
    test.blobs.forEach((b, i) => b.data.set(bn.blobs[i]?.data ?? []))
    test.forward([x], [y])
    const mean = 7 / 1.5
    const std = Math.sqrt(9 / 1.5)
    expectClose(y.data, [(1 - mean) / std, (3 - mean) / std], 1e-6)
  })

  it('Scale broadcasts over the axes after axis, with bias', () => {
    const x = blobFrom([1, 2, 2], [1, 2, 3, 4])
    const y = new Blob()
    const s = setUpLayer({ type: 'Scale', scale_param: { bias_term: true } }, [x], [y])
    expect([...(s.blobs[0]?.data ?? [])]).toEqual([1, 1])
    s.blobs[0]?.data.set([2, -1])
    s.blobs[1]?.data.set([0.5, 1])
    s.forward([x], [y])
    expect([...y.data]).toEqual([2.5, 4.5, -2, -3])
  })

  it('Eltwise SUM/PROD/MAX', () => {
    const a = blobFrom([3], [1, 5, -2])
    const b = blobFrom([3], [2, 5, -3])
    const y = new Blob()
    setUpLayer({ type: 'Eltwise', eltwise_param: { operation: 'SUM', coeff: [2, -1] } }, [a, b], [y]).forward([a, b], [y])
    expect([...y.data]).toEqual([0, 5, -1])
    setUpLayer({ type: 'Eltwise', eltwise_param: { operation: 'PROD' } }, [a, b], [y]).forward([a, b], [y])
    expect([...y.data]).toEqual([2, 25, 6])
    const max = setUpLayer({ type: 'Eltwise', eltwise_param: { operation: 'MAX' } }, [a, b], [y])
    max.forward([a, b], [y])
    expect([...y.data]).toEqual([2, 5, -2])
    y.diff.set([1, 1, 1])
    max.backward([y], [true, true], [a, b])
    // Ties between the first two bottoms go to the second, as in Caffe.
    expect([...a.diff]).toEqual([0, 0, 1])
    expect([...b.diff]).toEqual([1, 1, 0])
  })

  it('Concat along channels, Flatten, Split', () => {
    const a = blobFrom([2, 1, 2], [1, 2, 3, 4])
    const b = blobFrom([2, 2, 2], [5, 6, 7, 8, 9, 10, 11, 12])
    const c = new Blob()
    setUpLayer({ type: 'Concat' }, [a, b], [c]).forward([a, b], [c])
    expect(c.shape).toEqual([2, 3, 2])
    expect([...c.data]).toEqual([1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12])
    const f = new Blob()
    setUpLayer({ type: 'Flatten' }, [c], [f]).forward([c], [f])
    expect(f.shape).toEqual([2, 6])
    const g = new Blob()
    setUpLayer({ type: 'Flatten', flatten_param: { axis: 0, end_axis: 1 } }, [c], [g])
    expect(g.shape).toEqual([6, 2])
    const s1 = new Blob()
    const s2 = new Blob()
    const split = setUpLayer({ type: 'Split' }, [a], [s1, s2])
    split.forward([a], [s1, s2])
    expect([...s2.data]).toEqual([1, 2, 3, 4])
    s1.diff.set([1, 1, 1, 1])
    s2.diff.set([1, 2, 3, 4])
    split.backward([s1, s2], [true], [a])
    expect([...a.diff]).toEqual([2, 3, 4, 5])
  })

  it('Input gives its tops the declared shapes', () => {
    const data = new Blob()
    const label = new Blob()
    setUpLayer({ type: 'Input', input_param: { shape: [{ dim: [64, 1, 28, 28] }, { dim: [64] }] } }, [], [data, label])
    expect(data.shape).toEqual([64, 1, 28, 28])
    expect(label.shape).toEqual([64])
  })
})

describe('MAX pooling fast paths', () => {
  /** Caffe's MaxPoolForward, straight: −FLT_MAX start, strict '>', clipped windows. */
  function reference (x: Blob, k: number, s: number, pad: number, outH: number, outW: number): { y: number[], mask: number[] } {
    const [n, c, H, W] = x.shape as [number, number, number, number]
    const y: number[] = []
    const mask: number[] = []
    for (let p = 0; p < n * c; p++) {
      for (let ph = 0; ph < outH; ph++) {
        for (let pw = 0; pw < outW; pw++) {
          const hs = ph * s - pad
          const ws = pw * s - pad
          let best = -3.4028234663852886e38
          let arg = -1
          for (let h = Math.max(hs, 0); h < Math.min(hs + k, H); h++) {
            for (let w = Math.max(ws, 0); w < Math.min(ws + k, W); w++) {
              const v = x.data[p * H * W + h * W + w] ?? Number.NaN
              if (v > best) {
                best = v
                arg = h * W + w
              }
            }
          }
          y.push(best)
          mask.push(arg)
        }
      }
    }
    return { y, mask }
  }

  it('match a reference scan with ties, ±0 and negatives, with and without the argmax', () => {
    const rng = new Rng(31)
    for (const [k, s, pad] of [[2, 2, 0], [3, 2, 0], [3, 1, 1], [2, 1, 1], [3, 3, 1]] as const) {
      const x = new Blob([2, 3, 9, 8])
      for (let i = 0; i < x.count; i++) x.data[i] = [0, -0, 1, -1, 0.5][rng.int(5)] ?? 0
      for (let i = 0; i < 40; i++) x.data[rng.int(x.count)] = rng.gaussian() * 1e-30
      const y = new Blob()
      const mask = new Blob()
      const pp = { pool: 'MAX' as const, kernel_size: k, stride: s, pad }
      setUpLayer({ type: 'Pooling', pooling_param: pp }, [x], [y, mask]).forward([x], [y, mask])
      const want = reference(x, k, s, pad, y.dim(2), y.dim(3))
      const got = [...y.data]
      got.forEach((v, i) => expect(Object.is(v, want.y[i]), `k${k} s${s} p${pad} output ${i}: ${v} vs ${want.y[i]}`).toBe(true))
      expect([...mask.data]).toEqual(want.mask)
      // Inference (no argmax): the same maxima, up to 2^-52 of the window's largest magnitude
      // (here ≤ 1, so 1e-15) when it mixes values 2^29 and more apart (1e-30 next to 1).
      const z = new Blob()
      setUpLayer({ type: 'Pooling', pooling_param: pp }, [x], [z], context('TEST')).forward([x], [z])
      const zs = [...z.data]
      zs.forEach((v, i) => expect(Math.abs(v - (want.y[i] ?? Number.NaN)), `k${k} s${s} p${pad} inference output ${i}`).toBeLessThanOrEqual(1e-15))
    }
  })

  it('TEST-phase forward then backward (force_backward) recomputes the argmax', () => {
    const rng = new Rng(32)
    const x = distinctBlob([2, 2, 6, 6], rng)
    const y = new Blob()
    const layer = setUpLayer({ type: 'Pooling', pooling_param: { pool: 'MAX', kernel_size: 2, stride: 2 } }, [x], [y], context('TEST'))
    layer.forward([x], [y])
    const want = reference(x, 2, 2, 0, 3, 3)
    y.data.fill(123)
    y.diff.fill(1)
    layer.backward([y], [true], [x])
    const hits: number[] = []
    x.diff.forEach((v, i) => { if (v !== 0) hits.push(i) })
    const expected = want.mask.map((m, o) => Math.floor(o / 9) * 36 + m).sort((a, b) => a - b)
    expect(hits).toEqual(expected)
  })
})
