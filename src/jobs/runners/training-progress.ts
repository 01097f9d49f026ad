import type { CaffeLogEvent } from '../../engine/log/caffe-log-parser.js'
import { MAX_SERIES_POINTS } from '../../../models/training-job.js'
import type { Progress, ProgressPoint } from '../../../models/training-job.js'

/**
 * A chart series that never grows past `max` points: points are kept on a stride that doubles
 * whenever the limit is reached (dropping every other kept point), so old points thin out
 * evenly over the whole run, and the newest point is always last even when it is off-stride.
 */
export class ThinnedSeries {
  readonly #max: number
  #kept: ProgressPoint[] = []
  #latest: ProgressPoint | undefined
  #stride = 1
  #count = 0

  constructor (max = MAX_SERIES_POINTS, seed: readonly ProgressPoint[] = []) {
    this.#max = Math.max(2, max)
    for (const p of seed) this.add(p)
  }

  /** Adds a point, or merges into the newest point when it has the same iteration. */
  add (point: ProgressPoint): void {
    const newest = this.#latest ?? this.#kept[this.#kept.length - 1]
    if (newest !== undefined && newest.iteration === point.iteration) {
      newest.loss = point.loss ?? newest.loss
      newest.lr = point.lr ?? newest.lr
      newest.test = point.test === null ? newest.test : { ...(newest.test ?? {}), ...point.test }
      return
    }
    const onStride = this.#count % this.#stride === 0
    this.#count++
    if (onStride) {
      this.#kept.push({ ...point })
      this.#latest = undefined
    } else {
      this.#latest = { ...point }
    }
    while (this.#kept.length + (this.#latest === undefined ? 0 : 1) > this.#max) {
      // Kept points sit at multiples of the stride; keeping every other one doubles it.
      this.#stride *= 2
      this.#kept = this.#kept.filter((_, i) => i % 2 === 0)
    }
  }

  toArray (): ProgressPoint[] {
    const all = this.#latest === undefined ? this.#kept : [...this.#kept, this.#latest]
    return all.map((p) => ({ ...p, test: p.test === null ? null : { ...p.test } }))
  }
}

/**
 * The `progress` field of a training job, folded from Caffe log events. A resumed run starts
 * from the previous attempt's progress with the points past its snapshot removed (the
 * resumed run logs those iterations again).
 */
export class TrainingProgress {
  #iteration = 0
  #maxIter: number | null
  #loss: number | null = null
  #lr: number | null = null
  #test: Record<string, number> = {}
  #testIter: number | undefined
  readonly #series: ThinnedSeries
  #changed = false

  constructor (options: { maxIter: number | null, previous?: Progress | null, resumeIteration?: number, maxPoints?: number }) {
    this.#maxIter = options.maxIter
    const previous = options.previous ?? null
    const resumeAt = options.resumeIteration
    const seed = previous === null || resumeAt === undefined ? [] : previous.series.filter((p) => p.iteration < resumeAt)
    this.#series = new ThinnedSeries(options.maxPoints ?? MAX_SERIES_POINTS, seed)
    if (resumeAt !== undefined) {
      this.#iteration = resumeAt
      const last = seed[seed.length - 1]
      this.#loss = last?.loss ?? null
      this.#lr = last?.lr ?? null
    }
  }

  /** Folds one event in; true when the progress changed. */
  apply (e: CaffeLogEvent): boolean {
    switch (e.kind) {
      case 'max-iter':
        this.#maxIter = e.maxIter
        break
      case 'train-loss':
        this.#seen(e.iter)
        this.#loss = finite(e.loss)
        this.#series.add({ iteration: e.iter, loss: this.#loss, lr: null, test: null })
        break
      case 'lr':
        this.#seen(e.iter)
        this.#lr = finite(e.lr)
        this.#series.add({ iteration: e.iter, loss: null, lr: this.#lr, test: null })
        break
      case 'test-start':
        this.#seen(e.iter)
        this.#testIter = e.iter
        this.#test = {}
        break
      case 'test-output': {
        const value = finite(e.value)
        if (value === null) return false
        this.#test[e.name] = value
        this.#series.add({ iteration: e.iter ?? this.#testIter ?? this.#iteration, loss: null, lr: null, test: { [e.name]: value } })
        break
      }
      default:
        return false
    }
    this.#changed = true
    return true
  }

  /** True once since the last call if anything changed (for throttled saves). */
  takeChanged (): boolean {
    const changed = this.#changed
    this.#changed = false
    return changed
  }

  get iteration (): number {
    return this.#iteration
  }

  toJSON (): Progress {
    return {
      iteration: this.#iteration,
      'max-iter': this.#maxIter,
      loss: this.#loss,
      lr: this.#lr,
      'test-outputs': { ...this.#test },
      series: this.#series.toArray()
    }
  }

  #seen (iter: number): void {
    this.#iteration = Math.max(this.#iteration, iter)
  }
}

// CouchDB documents are JSON: NaN and ±Infinity (a diverged run) are stored as null.
function finite (value: number): number | null {
  return Number.isFinite(value) ? value : null
}
