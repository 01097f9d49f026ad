import { openDatumSource, RESTART_MESSAGE, type DatumSource } from '../data/datum-source.js'
import { datumToImage, rawDatumPixels } from '../data/image.js'
import { createTransformer, decodeModeOf, type DataTransformer } from '../data/transformer.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { BatchDataLayer, type Batch, type DataLayerState } from './batch-data-layer.js'

/**
 * Caffe's Data layer: batches of Datums from an LMDB or LevelDB database in key order, wrapping
 * around at the end ("Restarting data prefetching from start."), each transformed by
 * transform_param (scale, mean, crop, mirror). Encoded (PNG/JPEG) and raw Datums both work.
 * Tops: data (batch × C × H × W) and, optionally, label (batch).
 */
export class DataLayer extends BatchDataLayer {
  private source: DatumSource | undefined
  private transformer: DataTransformer | undefined
  private recordCount = 0
  private position = 0

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Data')
  }

  protected async openSource (): Promise<number[]> {
    const p = this.param.data_param
    if (p?.source === undefined || p.source === '') this.fail('data_param.source is required')
    if (p.batch_size === undefined || p.batch_size <= 0) this.fail('data_param.batch_size must be set and greater than zero')
    this.batchSize = p.batch_size
    const backend = p.backend ?? 'LEVELDB'
    const log = this.ctx.log
    this.source = await openDatumSource(p.source, backend, {
      onRestart: () => log?.info('data_layer.cpp:73', RESTART_MESSAGE)
    })
    log?.info(backend === 'LMDB' ? 'db_lmdb.cpp:35' : 'db_leveldb.cpp:18', `Opened ${backend === 'LMDB' ? 'lmdb' : 'leveldb'} ${p.source}`)
    this.transformer = await createTransformer(this.param.transform_param, {
      phase: this.ctx.phase,
      random: () => this.rng.uniform(),
      info: (m) => log?.info('data_transformer.cpp:25', m)
    })
    this.recordCount = await this.source.count()
    const skip = (p.rand_skip ?? 0) > 0 ? this.rng.int(p.rand_skip ?? 0) : 0
    if (skip > 0) {
      log?.info('data_reader.cpp:94', `Skipping first ${skip} data points.`)
      await this.source.skip(skip)
      this.position = skip
    }
    const first = await this.source.peek()
    const img = first.encoded === true
      ? await datumToImage(first, { mode: decodeModeOf(this.param.transform_param), source: `${p.source} (first record)` })
      : rawDatumPixels(first, `${p.source} (first record)`)
    return this.transformer.inferShape(img).slice(1)
  }

  protected async loadBatch (batch: Batch): Promise<void> {
    const source = this.source
    const transformer = this.transformer
    if (source === undefined || transformer === undefined) this.fail('loading before open()')
    const mode = decodeModeOf(this.param.transform_param)
    for (let i = 0; i < batch.count; i++) {
      const datum = await source.next()
      this.position++
      const where = `${source.path} record ${(this.position - 1) % Math.max(1, this.recordCount)}`
      const img = datum.encoded === true ? await datumToImage(datum, { mode, source: where }) : rawDatumPixels(datum, where)
      if (i === 0) {
        batch.itemShape = transformer.inferShape(img).slice(1)
        this.ensureCapacity(batch, itemSize(batch.itemShape))
      }
      transformer.transform(img, batch.data, i * itemSize(batch.itemShape))
      batch.labels[i] = datum.label ?? 0
    }
  }

  protected async seek (state: DataLayerState): Promise<void> {
    const source = this.source
    if (source === undefined) this.fail('seek before open()')
    await source.reset()
    const offset = this.recordCount > 0 ? state.position % this.recordCount : 0
    await source.skip(offset)
    this.position = state.position
  }

  protected sourcePosition (): number {
    return this.position
  }

  protected async closeSource (): Promise<void> {
    const s = this.source
    this.source = undefined
    await s?.close()
  }
}

function itemSize (shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}
