import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { BaseLayer } from './base-layer.js'

/** Placeholder until the data module's transformer lands. TODO(#4) */
export class ImageDataLayer extends BaseLayer {
  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'ImageData', { bottoms: [0, 0], tops: [1, 2] })
  }

  protected override layerSetUp (): void {
    this.fail('not implemented yet')
  }

  override reshape (): void {}
  override forward (): void {}
  override backward (): void {}
}
