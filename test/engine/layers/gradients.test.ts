import { describe, expect, it } from 'vitest'
import { Blob } from '../../../src/engine/blob.js'
import type { MessageInit } from '../../../src/engine/proto/caffe.js'
import { Rng } from '../../../src/engine/random.js'
import { checkGradients } from './gradient-check.js'
import { context, distinctBlob, gaussianBlob, setUpLayer } from './helpers.js'

// Gradient checks against central finite differences for every layer with a backward pass,
// on small random shapes (Caffe's GradientChecker: stepsize 1e-2, threshold 1e-3).

const gauss = { type: 'gaussian', std: 0.5 }

function labelsBlob (n: number, classes: number, rng: Rng): Blob {
  const b = new Blob([n])
  for (let i = 0; i < n; i++) b.data[i] = rng.int(classes)
  return b
}

describe('gradient checks', () => {
  it('Convolution: pad, stride, bias', () => {
    const rng = new Rng(1)
    const x = gaussianBlob([2, 3, 6, 5], rng)
    const y = new Blob()
    const layer = setUpLayer({ type: 'Convolution', convolution_param: { num_output: 4, kernel_size: [3], pad: [1], stride: [2], weight_filler: gauss, bias_filler: gauss } }, [x], [y])
    expect(y.shape).toEqual([2, 4, 3, 3])
    expect(checkGradients(layer, [x], [y]).checked).toBe(x.count + 4 * 3 * 9 + 4)
  })

  it('Convolution: groups, rectangular kernel, dilation, no bias', () => {
    const rng = new Rng(2)
    const x = gaussianBlob([2, 4, 7, 6], rng)
    const y = new Blob()
    const layer = setUpLayer({
      type: 'Convolution',
      convolution_param: { num_output: 6, kernel_h: 3, kernel_w: 2, stride_h: 1, stride_w: 2, pad_h: 1, pad_w: 0, group: 2, dilation: [2, 1], bias_term: false, weight_filler: gauss }
    }, [x], [y])
    expect(y.shape).toEqual([2, 6, 5, 3])
    checkGradients(layer, [x], [y])
  })

  it('Convolution: 1x1 kernel (no im2col) with groups', () => {
    const rng = new Rng(3)
    const x = gaussianBlob([3, 4, 3, 2], rng)
    const y = new Blob()
    const layer = setUpLayer({ type: 'Convolution', convolution_param: { num_output: 2, kernel_size: [1], group: 2, weight_filler: gauss, bias_filler: gauss } }, [x], [y])
    checkGradients(layer, [x], [y])
  })

  it('Pooling MAX with padding and the clipped last window', () => {
    const rng = new Rng(4)
    const x = distinctBlob([2, 2, 7, 6], rng)
    const y = new Blob()
    const layer = setUpLayer({ type: 'Pooling', pooling_param: { pool: 'MAX', kernel_size: 3, stride: 2, pad: 1 } }, [x], [y])
    checkGradients(layer, [x], [y])
  })

  it('Pooling MAX 2x2 (unrolled path) and 4x3 (offset-table path)', () => {
    const rng = new Rng(5)
    for (const pp of [{ kernel_size: 2, stride: 2 }, { kernel_h: 4, kernel_w: 3, stride: 1 }]) {
      const x = distinctBlob([2, 2, 8, 9], rng)
      const y = new Blob()
      checkGradients(setUpLayer({ type: 'Pooling', pooling_param: { pool: 'MAX', ...pp } }, [x], [y]), [x], [y])
    }
  })

  it('Pooling AVE with padding, and global pooling', () => {
    const rng = new Rng(6)
    const x = gaussianBlob([2, 3, 7, 5], rng)
    const y = new Blob()
    checkGradients(setUpLayer({ type: 'Pooling', pooling_param: { pool: 'AVE', kernel_size: 3, stride: 2, pad: 1 } }, [x], [y]), [x], [y])
    const g = new Blob()
    checkGradients(setUpLayer({ type: 'Pooling', pooling_param: { pool: 'AVE', global_pooling: true } }, [x], [g]), [x], [g])
    expect(g.shape).toEqual([2, 3, 1, 1])
  })

  it('InnerProduct, plain and transposed, with axis', () => {
    const rng = new Rng(7)
    const x = gaussianBlob([3, 2, 2, 3], rng)
    const y = new Blob()
    checkGradients(setUpLayer({ type: 'InnerProduct', inner_product_param: { num_output: 5, weight_filler: gauss, bias_filler: gauss } }, [x], [y]), [x], [y])
    const t = new Blob()
    checkGradients(setUpLayer({ type: 'InnerProduct', inner_product_param: { num_output: 4, transpose: true, axis: 2, weight_filler: gauss, bias_filler: gauss } }, [x], [t]), [x], [t])
    expect(t.shape).toEqual([3, 2, 4])
    const single = gaussianBlob([1, 7], rng)
    const s = new Blob()
    checkGradients(setUpLayer({ type: 'InnerProduct', inner_product_param: { num_output: 3, weight_filler: gauss } }, [single], [s]), [single], [s])
  })

  it('ReLU, leaky ReLU, in place and not', () => {
    const rng = new Rng(8)
    for (const slope of [0, 0.1]) {
      const x = distinctBlob([2, 3, 4], rng, 0.07)
      const y = new Blob()
      checkGradients(setUpLayer({ type: 'ReLU', relu_param: { negative_slope: slope } }, [x], [y]), [x], [y])
      const z = distinctBlob([2, 3, 4], rng, 0.07)
      checkGradients(setUpLayer({ type: 'ReLU', relu_param: { negative_slope: slope } }, [z], [z]), [z], [z])
    }
  })

  it('Sigmoid and TanH, in place', () => {
    const rng = new Rng(9)
    for (const type of ['Sigmoid', 'TanH']) {
      const x = gaussianBlob([2, 5], rng)
      checkGradients(setUpLayer({ type }, [x], [x]), [x], [x])
      const a = gaussianBlob([3, 2, 2], rng)
      const b = new Blob()
      checkGradients(setUpLayer({ type }, [a], [b]), [a], [b])
    }
  })

  it('Dropout in TRAIN (same mask on every forward) and TEST', () => {
    const rng = new Rng(10)
    const ctx = context('TRAIN', 5)
    const x = gaussianBlob([4, 6], rng)
    const y = new Blob()
    const layer = setUpLayer({ type: 'Dropout', dropout_param: { dropout_ratio: 0.3 } }, [x], [y], ctx)
    checkGradients(layer, [x], [y], { rng: ctx.rng })
    const z = gaussianBlob([4, 6], rng)
    checkGradients(setUpLayer({ type: 'Dropout' }, [z], [z], context('TEST')), [z], [z])
  })

  it('LRN across and within channels', () => {
    const rng = new Rng(11)
    const x = gaussianBlob([2, 7, 3, 3], rng)
    const y = new Blob()
    checkGradients(setUpLayer({ type: 'LRN', lrn_param: { local_size: 5, alpha: 0.5, beta: 0.75, k: 2 } }, [x], [y]), [x], [y])
    const w = new Blob()
    checkGradients(setUpLayer({ type: 'LRN', lrn_param: { local_size: 3, alpha: 0.7, beta: 0.6, norm_region: 'WITHIN_CHANNEL' } }, [x], [w]), [x], [w])
  })

  it('BatchNorm with batch statistics (in place) and with global statistics', () => {
    const rng = new Rng(12)
    const x = gaussianBlob([3, 2, 2, 2], rng)
    const bn = setUpLayer({ type: 'BatchNorm', batch_norm_param: { eps: 1e-3 } }, [x], [x])
    checkGradients(bn, [x], [x], { threshold: 2e-3 })
    const y = gaussianBlob([3, 4], rng)
    const z = new Blob()
    const g = setUpLayer({ type: 'BatchNorm', batch_norm_param: { use_global_stats: true } }, [y], [z])
    g.blobs[0]?.data.set([0.5, -1, 2, 0])
    g.blobs[1]?.data.set([2, 1, 0.5, 4])
    g.blobs[2]?.data.set([2])
    checkGradients(g, [y], [z])
  })

  it('Scale: learnable with bias, in place; from a second bottom; over two axes', () => {
    const rng = new Rng(13)
    const x = gaussianBlob([2, 3, 2, 2], rng)
    checkGradients(setUpLayer({ type: 'Scale', scale_param: { bias_term: true, filler: gauss, bias_filler: gauss } }, [x], [x]), [x], [x])
    const a = gaussianBlob([2, 3, 4], rng)
    const s = gaussianBlob([3], rng)
    const y = new Blob()
    checkGradients(setUpLayer({ type: 'Scale' }, [a, s], [y]), [a, s], [y])
    const b = gaussianBlob([2, 3, 4], rng)
    const z = new Blob()
    const two = setUpLayer({ type: 'Scale', scale_param: { axis: 1, num_axes: 2, filler: gauss } }, [b], [z])
    expect(two.blobs[0]?.shape).toEqual([3, 4])
    checkGradients(two, [b], [z])
  })

  it('Eltwise SUM with coefficients, PROD (stable and not), MAX', () => {
    const rng = new Rng(14)
    const mk = (): Blob[] => [gaussianBlob([2, 3], rng), gaussianBlob([2, 3], rng), gaussianBlob([2, 3], rng)]
    const params: Array<MessageInit<'EltwiseParameter'>> = [{ operation: 'SUM', coeff: [1, -0.5, 2] }, { operation: 'PROD' }, { operation: 'PROD', stable_prod_grad: false }]
    for (const p of params) {
      const xs = mk()
      const y = new Blob()
      checkGradients(setUpLayer({ type: 'Eltwise', eltwise_param: p }, xs, [y]), xs, [y])
    }
    const d = [distinctBlob([2, 3], rng), distinctBlob([2, 3], rng), distinctBlob([2, 3], rng)]
    d[1]?.data.forEach((v, i, a) => { a[i] = v + 0.025 })
    const y = new Blob()
    checkGradients(setUpLayer({ type: 'Eltwise', eltwise_param: { operation: 'MAX' } }, d, [y]), d, [y])
  })

  it('Concat, Flatten, Split', () => {
    const rng = new Rng(15)
    const a = gaussianBlob([2, 2, 3], rng)
    const b = gaussianBlob([2, 1, 3], rng)
    const c = new Blob()
    checkGradients(setUpLayer({ type: 'Concat' }, [a, b], [c]), [a, b], [c])
    expect(c.shape).toEqual([2, 3, 3])
    const d = gaussianBlob([2, 3, 2], rng)
    const e = gaussianBlob([2, 3, 5], rng)
    const f = new Blob()
    checkGradients(setUpLayer({ type: 'Concat', concat_param: { axis: -1 } }, [d, e], [f]), [d, e], [f])
    const g = new Blob()
    checkGradients(setUpLayer({ type: 'Flatten' }, [a], [g]), [a], [g])
    const s1 = new Blob()
    const s2 = new Blob()
    const s3 = new Blob()
    checkGradients(setUpLayer({ type: 'Split' }, [a], [s1, s2, s3]), [a], [s1, s2, s3])
  })

  it('Softmax along axis 1 and a middle axis', () => {
    const rng = new Rng(16)
    const x = gaussianBlob([2, 4, 3], rng)
    const y = new Blob()
    checkGradients(setUpLayer({ type: 'Softmax' }, [x], [y]), [x], [y])
    const z = new Blob()
    checkGradients(setUpLayer({ type: 'Softmax', softmax_param: { axis: 2 } }, [x], [z]), [x], [z])
  })

  it('SoftmaxWithLoss under every normalization, with an ignored label, spatial labels', () => {
    const rng = new Rng(17)
    for (const normalization of ['VALID', 'FULL', 'BATCH_SIZE', 'NONE'] as const) {
      const x = gaussianBlob([4, 5], rng, 2)
      const labels = labelsBlob(4, 5, rng)
      labels.data[1] = 3
      const loss = new Blob()
      const layer = setUpLayer({ type: 'SoftmaxWithLoss', loss_param: { normalization, ignore_label: 3 } }, [x, labels], [loss])
      checkGradients(layer, [x, labels], [loss], { bottoms: [0] })
    }
    const x = gaussianBlob([2, 3, 2, 2], rng)
    const labels = new Blob([2, 1, 2, 2])
    for (let i = 0; i < labels.count; i++) labels.data[i] = rng.int(3)
    const loss = new Blob()
    const prob = new Blob()
    checkGradients(setUpLayer({ type: 'SoftmaxWithLoss' }, [x, labels], [loss, prob]), [x, labels], [loss, prob], { bottoms: [0], tops: [0] })
  })
})
