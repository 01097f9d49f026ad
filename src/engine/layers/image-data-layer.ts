import { ImageListSource, type ImageListEntry } from '../data/image-list.js'
import { createTransformer, type DataTransformer } from '../data/transformer.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { BatchDataLayer, type Batch, type DataLayerState } from './batch-data-layer.js'

/**
 * Caffe's ImageData layer: images named in a list file (`path label` per line, paths relative
 * to root_folder), decoded in colour (BGR) or gray (is_color: false), resized to
 * new_height × new_width when both are set, optionally shuffled at open and at every pass,
 * then transformed by transform_param. Tops: data and, optionally, label.
 */
export class ImageDataLayer extends BatchDataLayer {
  private source: ImageListSource | undefined
  private transformer: DataTransformer | undefined
  private position = 0
  private baseIndex = new Map<ImageListEntry, number>()
  private baseEntries: ImageListEntry[] = []

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'ImageData')
  }

  protected async openSource (): Promise<number[]> {
    const p = this.param.image_data_param
    if (p?.source === undefined || p.source === '') this.fail('image_data_param.source is required')
    this.batchSize = p.batch_size ?? 1
    if (this.batchSize <= 0) this.fail('image_data_param.batch_size must be greater than zero')
    const log = this.ctx.log
    this.source = await ImageListSource.open(p.source, {
      rootFolder: p.root_folder ?? '',
      isColor: p.is_color ?? true,
      newHeight: p.new_height ?? 0,
      newWidth: p.new_width ?? 0,
      shuffle: p.shuffle ?? false,
      random: () => this.rng.uniform(),
      info: (m) => log?.info('image_data_layer.cpp:38', m),
      onRestart: () => log?.info('image_data_layer.cpp:164', 'Restarting data prefetching from start.')
    })
    this.baseEntries = [...this.source.entries]
    this.baseIndex = new Map(this.baseEntries.map((e, i) => [e, i]))
    this.transformer = await createTransformer(this.param.transform_param, {
      phase: this.ctx.phase,
      random: () => this.rng.uniform(),
      info: (m) => log?.info('data_transformer.cpp:25', m)
    })
    if ((p.rand_skip ?? 0) > 0) {
      const skip = this.rng.int(p.rand_skip ?? 0)
      log?.info('image_data_layer.cpp:69', `Skipping first ${skip} data points.`)
      this.source.skip(skip)
      this.position = skip
    }
    const first = await this.source.peek()
    return this.transformer.inferShape(first.image).slice(1)
  }

  protected async loadBatch (batch: Batch): Promise<void> {
    const source = this.source
    const transformer = this.transformer
    if (source === undefined || transformer === undefined) this.fail('loading before open()')
    const images = await source.nextBatch(batch.count)
    this.position += batch.count
    images.forEach((item, i) => {
      if (i === 0) {
        batch.itemShape = transformer.inferShape(item.image).slice(1)
        this.ensureCapacity(batch, batch.itemShape.reduce((a, b) => a * b, 1))
      }
      transformer.transform(item.image, batch.data, i * batch.itemShape.reduce((a, b) => a * b, 1))
      batch.labels[i] = item.label
    })
  }

  protected override order (): number[] | undefined {
    if (this.source === undefined || this.param.image_data_param?.shuffle !== true) return undefined
    return this.source.entries.map((e) => this.baseIndex.get(e) ?? -1)
  }

  protected async seek (state: DataLayerState): Promise<void> {
    const source = this.source
    if (source === undefined) this.fail('seek before open()')
    if (state.order !== undefined) {
      if (state.order.length !== source.entries.length) this.fail(`snapshot lists ${state.order.length} images, ${source.file} has ${source.entries.length}`)
      state.order.forEach((k, i) => {
        const e = this.baseEntries[k]
        if (e === undefined) this.fail(`snapshot image order refers to entry ${k} of ${source.entries.length}`)
        source.entries[i] = e
      })
    }
    source.skip(state.position % source.entries.length)
    this.position = state.position
  }

  protected sourcePosition (): number {
    return this.position
  }

  protected async closeSource (): Promise<void> {
    this.source = undefined
  }
}
