import { expect } from 'vitest'
import type { Blob } from '../../../src/engine/blob.js'
import type { Layer } from '../../../src/engine/layer.js'
import { Rng } from '../../../src/engine/random.js'

export interface GradientCheckOptions {
  /** Central-difference step (Caffe's GradientChecker uses 1e-2). */
  stepsize?: number
  /** Relative tolerance, scaled by max(1, |computed|, |estimated|) as in Caffe. */
  threshold?: number
  /** Bottoms to check; the others get propagateDown false (labels). Default: all. */
  bottoms?: number[]
  /** Tops that enter the objective (default all); e.g. not a loss layer's probability output. */
  tops?: number[]
  /** Whether to check the layer's parameter blobs (default true). */
  params?: boolean
  /** Reseeded before every forward so that random layers (dropout) draw the same mask. */
  rng?: Rng
  rngSeed?: number
}

/**
 * Caffe's GradientChecker, with a random projection as the objective: L = Σ top·R for a fixed
 * gaussian R (so every top element matters at once). The analytic gradient from backward is
 * compared with (L(x+h) − L(x−h)) / 2h for every element of the checked bottoms and params.
 * The objective is summed in float64. In-place layers are handled by restoring the bottoms
 * before every forward.
 */
export function checkGradients (layer: Layer, bottom: Blob[], top: Blob[], options: GradientCheckOptions = {}): { checked: number } {
  const h = options.stepsize ?? 1e-2
  const threshold = options.threshold ?? 1e-3
  const which = options.bottoms ?? bottom.map((_, i) => i)
  const saved = bottom.map((b) => Float32Array.from(b.data))
  const restore = (): void => { bottom.forEach((b, i) => b.data.set(saved[i] ?? new Float32Array(0))) }
  const forward = (): void => {
    restore()
    if (options.rng !== undefined) options.rng.seed(options.rngSeed ?? 99)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
  }
  const inObjective = (k: number): boolean => options.tops === undefined || options.tops.includes(k)
  const projRng = new Rng(4242)
  forward()
  const proj = top.map((t) => Float64Array.from({ length: t.count }, () => projRng.gaussian()))
  const objective = (): number => {
    let s = 0
    top.forEach((t, k) => {
      if (!inObjective(k)) return
      const r = proj[k] ?? new Float64Array(0)
      for (let i = 0; i < t.count; i++) s += (t.data[i] ?? 0) * (r[i] ?? 0)
    })
    return s
  }

  // Analytic gradients.
  forward()
  // NaN first: backward must overwrite the bottom diffs, not add to them. In place the bottom
  // diff is the top diff, so the projection is written after.
  for (const i of which) bottom[i]?.diff.fill(Number.NaN)
  top.forEach((t, k) => {
    const r = proj[k] ?? new Float64Array(0)
    for (let i = 0; i < t.count; i++) t.diff[i] = inObjective(k) ? r[i] ?? 0 : 0
  })
  for (const p of layer.blobs) p.diff.fill(0)
  const down = bottom.map((_, i) => which.includes(i))
  layer.backward(top, down, bottom)
  const targets: Array<{ name: string, blob: Blob, data: Float32Array, computed: Float32Array, isBottom: boolean }> = []
  for (const i of which) {
    const b = bottom[i]
    if (b !== undefined) targets.push({ name: `bottom ${i}`, blob: b, data: saved[i] ?? new Float32Array(0), computed: Float32Array.from(b.diff), isBottom: true })
  }
  if (options.params !== false) {
    layer.blobs.forEach((p, j) => {
      if (layer.fixedParams.includes(j)) return
      targets.push({ name: `param ${j}`, blob: p, data: p.data, computed: Float32Array.from(p.diff), isBottom: false })
    })
  }

  let checked = 0
  for (const t of targets) {
    for (let i = 0; i < t.data.length; i++) {
      const orig = t.data[i] ?? 0
      t.data[i] = orig + h
      forward()
      const plus = objective()
      t.data[i] = orig - h
      forward()
      const minus = objective()
      t.data[i] = orig
      const estimated = (plus - minus) / (2 * h)
      const computed = t.computed[i] ?? Number.NaN
      const scale = Math.max(1, Math.abs(computed), Math.abs(estimated))
      if (!(Math.abs(computed - estimated) <= threshold * scale)) {
        expect.fail(`${layer.type} ${t.name} element ${i} of ${t.blob.shapeString()}: backward gives ${computed}, finite difference ${estimated}`)
      }
      checked++
    }
  }
  forward()
  return { checked }
}
