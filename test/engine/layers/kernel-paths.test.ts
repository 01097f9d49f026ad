import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Blob } from '../../../src/engine/blob.js'
import { withBlas } from '../../helpers/kernel-paths.js'
import { createKernels } from '../../../src/engine/kernels/create-kernels.js'
import type { Kernels } from '../../../src/engine/kernels/kernels.js'
import type { Layer } from '../../../src/engine/layer.js'
import { createLayer } from '../../../src/engine/layers/registry.js'
import type { MessageInit } from '../../../src/engine/proto/caffe.js'
import { Rng } from '../../../src/engine/random.js'
import { layerParam } from './helpers.js'

// LeNet (with a BatchNorm/Scale pair and dropout added so that every kind of state is covered)
// built layer by layer on both kernel paths from the same seed.

interface Stage { layer: Layer, bottom: Blob[], top: Blob[], down: boolean[] }

const xavier = { type: 'xavier' }
const gauss = { type: 'gaussian', std: 0.1 }

function buildLenet (kernels: Kernels, seed: number, batch: number): { stages: Stage[], loss: Blob } {
  const ctx = { kernels, phase: 'TRAIN' as const, rng: new Rng(seed) }
  const data = new Blob([batch, 1, 28, 28])
  const label = new Blob([batch])
  const r = new Rng(99)
  for (let i = 0; i < data.count; i++) data.data[i] = r.uniform()
  for (let i = 0; i < batch; i++) label.data[i] = r.int(10)
  const b = (): Blob => new Blob()
  const [conv1, pool1, conv2, pool2, ip1, ip2, loss] = [b(), b(), b(), b(), b(), b(), b()]
  const spec: Array<[MessageInit<'LayerParameter'>, Blob[], Blob[], boolean[]]> = [
    [{ type: 'Convolution', convolution_param: { num_output: 20, kernel_size: [5], weight_filler: xavier, bias_filler: gauss } }, [data], [conv1], [false]],
    [{ type: 'Pooling', pooling_param: { pool: 'MAX', kernel_size: 2, stride: 2 } }, [conv1], [pool1], [true]],
    [{ type: 'Convolution', convolution_param: { num_output: 50, kernel_size: [5], weight_filler: xavier, bias_filler: gauss } }, [pool1], [conv2], [true]],
    [{ type: 'BatchNorm' }, [conv2], [conv2], [true]],
    [{ type: 'Scale', scale_param: { bias_term: true } }, [conv2], [conv2], [true]],
    [{ type: 'Pooling', pooling_param: { pool: 'MAX', kernel_size: 2, stride: 2 } }, [conv2], [pool2], [true]],
    [{ type: 'InnerProduct', inner_product_param: { num_output: 500, weight_filler: xavier, bias_filler: gauss } }, [pool2], [ip1], [true]],
    [{ type: 'ReLU' }, [ip1], [ip1], [true]],
    [{ type: 'Dropout', dropout_param: { dropout_ratio: 0.2 } }, [ip1], [ip1], [true]],
    [{ type: 'InnerProduct', inner_product_param: { num_output: 10, weight_filler: xavier } }, [ip1], [ip2], [true]],
    [{ type: 'SoftmaxWithLoss' }, [ip2, label], [loss], [true, false]]
  ]
  const stages = spec.map(([init, bottom, top, down], i) => {
    const layer = createLayer(layerParam({ name: `l${i}`, ...init }), ctx)
    layer.setUp(bottom, top)
    return { layer, bottom, top, down }
  })
  return { stages, loss }
}

/** One forward/backward and a plain SGD update; returns the loss and a copy of every gradient. */
function step (net: { stages: Stage[], loss: Blob }, lr: number): { loss: number, grads: Float32Array[] } {
  for (const s of net.stages) {
    s.layer.reshape(s.bottom, s.top)
    s.layer.forward(s.bottom, s.top)
  }
  net.loss.diff[0] = 1
  for (const s of net.stages) for (const p of s.layer.blobs) p.diff.fill(0)
  for (let i = net.stages.length - 1; i >= 0; i--) {
    const s = net.stages[i] as Stage
    s.layer.backward(s.top, s.down, s.bottom)
  }
  const grads: Float32Array[] = []
  for (const s of net.stages) {
    s.layer.blobs.forEach((p, j) => {
      grads.push(Float32Array.from(p.diff))
      if (s.layer.fixedParams.includes(j)) return
      for (let i = 0; i < p.count; i++) p.data[i] = (p.data[i] ?? 0) - lr * (p.diff[i] ?? 0)
    })
  }
  return { loss: net.loss.data[0] ?? Number.NaN, grads }
}

describe.runIf(withBlas)('LeNet on both kernel paths', () => {
  // Made in beforeAll: a skipped describe still runs its body, and without OpenBLAS the BLAS
  // kernels cannot even be constructed.
  let ts: Kernels
  let blas: Kernels
  beforeAll(() => {
    ts = createKernels({ kind: 'ts' })
    blas = createKernels({ kind: 'blas', threads: 2 })
  })
  afterAll(() => {
    // Undefined when OpenBLAS failed to load; that failure is the one to report.
    ts?.close()
    blas?.close()
  })

  it('gives the same losses and gradients on TS and BLAS within float tolerance', () => {
    const a = buildLenet(ts, 5, 8)
    const b = buildLenet(blas, 5, 8)
    for (let it = 0; it < 4; it++) {
      const sa = step(a, 0.05)
      const sb = step(b, 0.05)
      expect(Math.abs(sa.loss - sb.loss)).toBeLessThan(1e-4 * (1 + Math.abs(sa.loss)))
      sa.grads.forEach((g, k) => {
        const h = sb.grads[k] as Float32Array
        let scale = 0
        let diff = 0
        for (let i = 0; i < g.length; i++) {
          scale = Math.max(scale, Math.abs(g[i] ?? 0))
          diff = Math.max(diff, Math.abs((g[i] ?? 0) - (h[i] ?? 0)))
        }
        // Absolute floor: with BatchNorm after conv2, conv1's bias gradient is zero up to rounding.
        expect(diff, `iteration ${it} gradient ${k}`).toBeLessThanOrEqual(2e-3 * scale + 1e-6)
      })
    }
  })

  it('reproduces a run bit for bit from the same seed on the same path, and learns', () => {
    for (const k of [ts, blas]) {
      const a = buildLenet(k, 11, 8)
      const b = buildLenet(k, 11, 8)
      const lossesA: number[] = []
      const lossesB: number[] = []
      for (let it = 0; it < 8; it++) {
        lossesA.push(step(a, 0.05).loss)
        lossesB.push(step(b, 0.05).loss)
      }
      expect(lossesB).toEqual(lossesA)
      const params = (n: { stages: Stage[] }): number[] => n.stages.flatMap((s) => s.layer.blobs.flatMap((p) => [...p.data.subarray(0, 50)]))
      expect(params(b)).toEqual(params(a))
      // The same fixed batch over and over: the loss must fall.
      expect(lossesA[7]).toBeLessThan((lossesA[0] ?? 0) * 0.8)
    }
    const c = buildLenet(ts, 12, 8)
    expect(step(c, 0.05).loss).not.toBe(step(buildLenet(ts, 11, 8), 0.05).loss)
  })
})
