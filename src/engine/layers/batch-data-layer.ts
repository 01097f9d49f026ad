import { allocFloats, type Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { Rng } from '../random.js'
import { at, BaseLayer } from './base-layer.js'

/** One batch as loaded: `count` items of `itemShape` (C×H×W) and their labels. */
export interface Batch {
  data: Float32Array
  labels: Float32Array
  itemShape: number[]
  count: number
}

/** Where a data layer stands, for snapshots: records delivered so far and its RNG. */
export interface DataLayerState {
  /** Records handed to forward since the source was opened (rand_skip included). */
  position: number
  rng: number[]
  /** ImageData with shuffle: the list order at that point, as indices into the order at open. */
  order?: number[] | undefined
}

/**
 * Caffe's BasePrefetchingDataLayer: double-buffered batches. prefetch() makes the batch loaded in
 * the background current and starts loading the next one into the other buffer; forward()
 * copies the current batch into the tops. Decoding that runs off the main thread (LevelDB reads,
 * image decoding in libuv's pool) overlaps with the net's compute this way.
 *
 * Randomness (crop offsets, mirrors, rand_skip, shuffles) comes from a generator of the layer's
 * own, seeded from the net's RNG when the layer is created: the order in which background loads
 * interleave with other layers' draws then cannot change a run.
 */
export abstract class BatchDataLayer extends BaseLayer {
  protected readonly rng: Rng
  protected batchSize = 0
  private current: Batch = emptyBatch()
  private next: Batch = emptyBatch()
  private pending: Promise<void> | undefined
  private opened = false
  /** State as of the last delivered batch (taken before the next background load starts). */
  private snapshot: DataLayerState | undefined
  private restoreTo: DataLayerState | undefined
  private firstShape: number[] = []

  constructor (param: LayerParameter, ctx: LayerContext, type: string) {
    super(param, ctx, type, { bottoms: [0, 0], tops: [1, 2] })
    this.rng = new Rng(ctx.rng.nextUint32())
  }

  /** Opens the source and returns the item shape (C×H×W after the transform) of its first record. */
  protected abstract openSource (): Promise<number[]>
  /** Reads the next `batch.count` records into the batch (setting itemShape). */
  protected abstract loadBatch (batch: Batch): Promise<void>
  /** Moves the source so that the next record read is record `position` of the run. */
  protected abstract seek (state: DataLayerState): Promise<void>
  /** Source position in records (since open) for the state snapshot. */
  protected abstract sourcePosition (): number
  protected abstract closeSource (): Promise<void>
  /** The list order for the state, when the source shuffles. */
  protected order (): number[] | undefined {
    return undefined
  }

  async open (): Promise<void> {
    if (this.opened) return
    this.firstShape = await this.openSource()
    this.opened = true
  }

  protected override layerSetUp (_bottom: Blob[], top: Blob[]): void {
    if (!this.opened) this.fail('the data source was not opened (the net must await layer.open() before setUp)')
    this.ctx.log?.info('data_layer.cpp:45', `output data size: ${[this.batchSize, ...this.firstShape].join(',')}`)
    at(top, 0).reshape([this.batchSize, ...this.firstShape])
    if (top.length > 1) at(top, 1).reshape([this.batchSize])
  }

  override reshape (_bottom: Blob[], top: Blob[]): void {
    // Like Caffe, each batch takes the shape of its own first record (encoded images may vary).
    const shape = this.current.count > 0 ? this.current.itemShape : this.firstShape
    at(top, 0).reshape([this.batchSize, ...shape])
    if (top.length > 1) at(top, 1).reshape([this.batchSize])
  }

  async prefetch (): Promise<void> {
    if (!this.opened) this.fail('prefetch before open()')
    if (this.restoreTo !== undefined) {
      await this.settle()
      const state = this.restoreTo
      this.restoreTo = undefined
      await this.seek(state)
      this.rng.setState(state.rng)
    }
    this.pending ??= this.startLoad()
    await this.pending
    const loaded = this.next
    this.next = this.current
    this.current = loaded
    this.pending = this.startLoad()
  }

  override forward (_bottom: Blob[], top: Blob[]): void {
    const b = this.current
    if (b.count === 0) this.fail('forward before the first batch was prefetched')
    const y = at(top, 0)
    y.data.set(b.data.subarray(0, y.count))
    if (top.length > 1) at(top, 1).data.set(b.labels.subarray(0, b.count))
  }

  override backward (): void {}

  /** Snapshot support (the net's ResumableLayer): where the next batch after the delivered ones starts. */
  saveState (): DataLayerState {
    return this.snapshot ?? { position: this.sourcePosition(), rng: this.rng.getState(), order: this.order() }
  }

  /** Takes effect at the next prefetch (a load may be in flight now). */
  restoreState (state: unknown): void {
    if (!isDataLayerState(state)) this.fail('cannot restore data layer state: unrecognised snapshot record')
    this.restoreTo = state
  }

  async close (): Promise<void> {
    await this.settle()
    if (this.opened) await this.closeSource()
    this.opened = false
  }

  private startLoad (): Promise<void> {
    this.snapshot = { position: this.sourcePosition(), rng: this.rng.getState(), order: this.order() }
    this.next.count = this.batchSize
    const p = this.loadBatch(this.next)
    // Nobody awaits a background load until the next prefetch; an error then surfaces there.
    p.catch(() => {})
    return p
  }

  /** Waits for an in-flight load, discarding its result and error. */
  private async settle (): Promise<void> {
    const p = this.pending
    this.pending = undefined
    if (p !== undefined) await p.catch(() => {})
  }

  /** Grows the batch buffers for `itemSize` values per item. */
  protected ensureCapacity (batch: Batch, itemSize: number): void {
    const need = this.batchSize * itemSize
    if (batch.data.length < need) batch.data = allocFloats(need)
    if (batch.labels.length < this.batchSize) batch.labels = new Float32Array(this.batchSize)
  }
}

function emptyBatch (): Batch {
  return { data: allocFloats(0), labels: new Float32Array(0), itemShape: [], count: 0 }
}

function isDataLayerState (s: unknown): s is DataLayerState {
  if (typeof s !== 'object' || s === null) return false
  const r = s as Record<string, unknown>
  return typeof r.position === 'number' && Array.isArray(r.rng) && (r.order === undefined || Array.isArray(r.order))
}
