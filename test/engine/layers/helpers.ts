import { expect } from 'vitest'
import { Blob } from '../../../src/engine/blob.js'
import { createKernels } from '../../../src/engine/kernels/create-kernels.js'
import type { Kernels } from '../../../src/engine/kernels/kernels.js'
import type { Layer, LayerContext, Phase } from '../../../src/engine/layer.js'
import { createLayer } from '../../../src/engine/layers/registry.js'
import { createMessage, type LayerParameter, type MessageInit } from '../../../src/engine/proto/caffe.js'
import { Rng } from '../../../src/engine/random.js'

export const tsKernels: Kernels = createKernels({ kind: 'ts' })

/** A LayerParameter from a plain description (snake_case as in caffe.proto). */
export function layerParam (init: MessageInit<'LayerParameter'>): LayerParameter {
  return createMessage('LayerParameter', { name: 'test', ...init })
}

export function context (phase: Phase = 'TRAIN', seed = 1701, kernels: Kernels = tsKernels): LayerContext & { rng: Rng } {
  return { kernels, phase, rng: new Rng(seed) }
}

/** A layer built through the registry and set up on the given blobs. */
export function setUpLayer (init: MessageInit<'LayerParameter'>, bottom: Blob[], top: Blob[], ctx: LayerContext = context()): Layer {
  const layer = createLayer(layerParam(init), ctx)
  layer.setUp(bottom, top)
  return layer
}

/** A blob of gaussian values (mean 0, std 1 unless given). */
export function gaussianBlob (shape: number[], rng: Rng, std = 1): Blob {
  const b = new Blob(shape)
  for (let i = 0; i < b.count; i++) b.data[i] = rng.gaussian(0, std)
  return b
}

/** A blob whose values are distinct and at least `gap` apart (no ties for MAX, no kinks near 0). */
export function distinctBlob (shape: number[], rng: Rng, gap = 0.05): Blob {
  const b = new Blob(shape)
  const order = Array.from({ length: b.count }, (_, i) => i)
  rng.shuffle(order)
  // The quarter keeps every value at least gap/4 away from 0 (ReLU's kink).
  const offset = b.count / 2 - 0.25
  for (let i = 0; i < b.count; i++) b.data[i] = ((order[i] ?? 0) - offset) * gap
  return b
}

export function blobFrom (shape: number[], values: readonly number[]): Blob {
  const b = new Blob(shape)
  expect(values.length).toBe(b.count)
  b.data.set(values)
  return b
}

export function expectClose (actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length)
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] ?? Number.NaN
    const e = expected[i] ?? Number.NaN
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) {
      expect.fail(`element ${i}: got ${a}, expected ${e} (tolerance ${tol})`)
    }
  }
}
