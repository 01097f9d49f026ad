import { Blob } from '../blob.js'

export const SOLVER_TYPES = ['SGD', 'Nesterov', 'AdaGrad', 'RMSProp', 'AdaDelta', 'Adam'] as const
export type SolverType = typeof SOLVER_TYPES[number]

/** One learnable parameter blob of the train net with its ParamSpec multipliers. */
export interface LearnableParam {
  readonly blob: Blob
  readonly lrMult: number
  readonly decayMult: number
}

/** The SolverParameter fields that shape an update, with Caffe's defaults applied. */
export interface UpdateHyperParams {
  momentum: number
  momentum2: number
  delta: number
  rmsDecay: number
  weightDecay: number
  regularizationType: string
  /** Negative disables clipping, as in Caffe (default -1). */
  clipGradients: number
  iterSize: number
}

/** Thrown when a solver's parameters break one of Caffe's constructor checks. */
export class SolverConfigError extends Error {
  readonly code = 'ET_SOLVER_CONFIG'
  constructor (message: string) {
    super(message)
    this.name = 'SolverConfigError'
  }
}

export interface ClipEvent { l2norm: number, clip: number, scale: number }

const f = Math.fround

/**
 * Caffe's SGDSolver::ApplyUpdate minus the learning-rate lookup: gradient clipping, iter_size
 * normalisation, L1/L2 weight decay scaled by decay_mult, the type-specific update value
 * (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam), then `data -= diff`. The history blobs
 * are laid out as Caffe's `history_` so they can be written to and read from a .solverstate
 * unchanged: one per param, and for AdaDelta and Adam a second set appended after the first.
 */
export class ParamUpdater {
  readonly type: SolverType
  readonly history: Blob[]
  private readonly params: readonly LearnableParam[]
  private readonly hp: UpdateHyperParams

  constructor (type: SolverType, hp: UpdateHyperParams, params: readonly LearnableParam[]) {
    checkHyperParams(type, hp)
    this.type = type
    this.hp = hp
    this.params = params
    this.history = params.map((p) => new Blob(p.blob.shape))
    if (type === 'AdaDelta' || type === 'Adam') {
      for (const p of params) this.history.push(new Blob(p.blob.shape))
    }
  }

  /**
   * Applies one update at learning rate `rate`; `iter` is the solver iteration (Adam's bias
   * correction uses iter + 1). Returns the clip event when clip_gradients scaled the gradients.
   */
  apply (rate: number, iter: number): ClipEvent | undefined {
    const clip = this.clip()
    const accumNorm = this.hp.iterSize === 1 ? 1 : f(1 / this.hp.iterSize)
    if (this.type === 'SGD' && this.hp.regularizationType === 'L2') {
      for (let i = 0; i < this.params.length; i++) {
        const p = this.params[i]
        if (p !== undefined) this.sgdL2(i, p, accumNorm, f(rate * p.lrMult))
      }
      return clip
    }
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i]
      if (p === undefined) continue
      if (accumNorm !== 1) scale(p.blob.diff, accumNorm)
      this.regularize(p)
      this.computeUpdateValue(i, p, f(rate * p.lrMult), iter)
    }
    for (const p of this.params) {
      const data = p.blob.data
      const diff = p.blob.diff
      for (let k = 0; k < data.length; k++) data[k] = (data[k] ?? 0) - (diff[k] ?? 0)
    }
    return clip
  }

  /**
   * The common case (plain SGD, L2 decay) in one pass over memory instead of four: normalise,
   * decay, momentum, apply. Each step rounds to float32 exactly where Caffe stores a float, so
   * the numbers equal the step-by-step path.
   */
  private sgdL2 (id: number, p: LearnableParam, accumNorm: number, localRate: number): void {
    const w = p.blob.data
    const g = p.blob.diff
    const h = this.hist(id)
    const decay = f(this.hp.weightDecay * p.decayMult)
    const m = this.hp.momentum
    const n = w.length
    for (let k = 0; k < n; k++) {
      const wk = w[k]!
      let gk = g[k]!
      if (accumNorm !== 1) gk = f(gk * accumNorm)
      if (decay !== 0) gk = f(gk + decay * wk)
      const v = f(localRate * gk + m * h[k]!)
      h[k] = v
      g[k] = v
      w[k] = wk - v
    }
  }

  private clip (): ClipEvent | undefined {
    const clip = this.hp.clipGradients
    if (clip < 0) return undefined
    let sumsq = 0
    for (const p of this.params) {
      const d = p.blob.diff
      for (let k = 0; k < d.length; k++) { const v = d[k] ?? 0; sumsq += v * v }
    }
    const l2norm = f(Math.sqrt(sumsq))
    if (l2norm <= clip) return undefined
    const factor = f(clip / l2norm)
    for (const p of this.params) scale(p.blob.diff, factor)
    return { l2norm, clip, scale: factor }
  }

  private regularize (p: LearnableParam): void {
    const localDecay = f(this.hp.weightDecay * p.decayMult)
    if (localDecay === 0) return
    const data = p.blob.data
    const diff = p.blob.diff
    if (this.hp.regularizationType === 'L2') {
      for (let k = 0; k < diff.length; k++) diff[k] = (diff[k] ?? 0) + localDecay * (data[k] ?? 0)
    } else {
      for (let k = 0; k < diff.length; k++) diff[k] = (diff[k] ?? 0) + localDecay * Math.sign(data[k] ?? 0)
    }
  }

  private computeUpdateValue (id: number, p: LearnableParam, localRate: number, iter: number): void {
    const g = p.blob.diff
    const n = g.length
    const h = this.hist(id)
    const { momentum, delta } = this.hp
    switch (this.type) {
      case 'SGD':
        for (let k = 0; k < n; k++) {
          const v = f(localRate * (g[k] ?? 0) + momentum * (h[k] ?? 0))
          h[k] = v
          g[k] = v
        }
        break
      case 'Nesterov':
        // Step back by the old momentum, then over-step with the new one.
        for (let k = 0; k < n; k++) {
          const prev = h[k] ?? 0
          const v = f(localRate * (g[k] ?? 0) + momentum * prev)
          h[k] = v
          g[k] = (1 + momentum) * v - momentum * prev
        }
        break
      case 'AdaGrad':
        for (let k = 0; k < n; k++) {
          const gk = g[k] ?? 0
          const acc = f((h[k] ?? 0) + f(gk * gk))
          h[k] = acc
          g[k] = localRate * f(gk / f(f(Math.sqrt(acc)) + delta))
        }
        break
      case 'RMSProp': {
        const decay = this.hp.rmsDecay
        for (let k = 0; k < n; k++) {
          const gk = g[k] ?? 0
          const acc = f((1 - decay) * f(gk * gk) + decay * (h[k] ?? 0))
          h[k] = acc
          g[k] = localRate * f(gk / f(f(Math.sqrt(acc)) + delta))
        }
        break
      }
      case 'AdaDelta': {
        const hu = this.hist(id + this.params.length)
        for (let k = 0; k < n; k++) {
          const gk = g[k] ?? 0
          const accG = f((1 - momentum) * f(gk * gk) + momentum * (h[k] ?? 0))
          h[k] = accG
          const ratio = f(f(delta + (hu[k] ?? 0)) / f(delta + accG))
          const upd = f(gk * f(Math.sqrt(ratio)))
          hu[k] = f((1 - momentum) * f(upd * upd) + momentum * (hu[k] ?? 0))
          g[k] = localRate * upd
        }
        break
      }
      case 'Adam': {
        const beta1 = momentum
        const beta2 = this.hp.momentum2
        const t = iter + 1
        const correction = f(f(Math.sqrt(f(1 - f(Math.pow(beta2, t))))) / f(1 - f(Math.pow(beta1, t))))
        const step = f(localRate * correction)
        const v = this.hist(id + this.params.length)
        for (let k = 0; k < n; k++) {
          const gk = g[k] ?? 0
          const m = f((1 - beta1) * gk + beta1 * (h[k] ?? 0))
          h[k] = m
          const vk = f((1 - beta2) * f(gk * gk) + beta2 * (v[k] ?? 0))
          v[k] = vk
          g[k] = step * f(m / f(f(Math.sqrt(vk)) + delta))
        }
        break
      }
    }
  }

  private hist (i: number): Float32Array {
    const b = this.history[i]
    if (b === undefined) throw new Error(`history blob ${i} missing`)
    return b.data
  }
}

function scale (a: Float32Array, s: number): void {
  for (let k = 0; k < a.length; k++) a[k] = (a[k] ?? 0) * s
}

/** Caffe's per-solver constructor checks, with Caffe's messages. */
function checkHyperParams (type: SolverType, hp: UpdateHyperParams): void {
  // Caffe only looks at the type when it applies a decay, so an odd type with no decay passes.
  if (hp.weightDecay !== 0 && hp.regularizationType !== 'L1' && hp.regularizationType !== 'L2') {
    throw new SolverConfigError(`Unknown regularization type: ${hp.regularizationType}`)
  }
  if (type === 'AdaGrad' && hp.momentum !== 0) throw new SolverConfigError('Momentum cannot be used with AdaGrad.')
  if (type === 'RMSProp') {
    if (hp.momentum !== 0) throw new SolverConfigError('Momentum cannot be used with RMSProp.')
    if (hp.rmsDecay < 0 || hp.rmsDecay >= 1) throw new SolverConfigError('rms_decay should lie between 0 and 1.')
  }
  if (!Number.isInteger(hp.iterSize) || hp.iterSize < 1) throw new SolverConfigError('iter_size must be a positive integer')
}
