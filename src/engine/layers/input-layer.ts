import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { BaseLayer } from './base-layer.js'

/**
 * Caffe's Input layer: gives its tops the shapes in input_param (one shape for all tops, or
 * one per top); the caller writes the data. Deploy nets' `input:`/`input_dim:` map onto it.
 */
export class InputLayer extends BaseLayer {
  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Input', { bottoms: [0, 0], tops: [1, Infinity] })
  }

  protected override layerSetUp (_bottom: Blob[], top: Blob[]): void {
    const shapes = this.param.input_param?.shape ?? []
    if (shapes.length !== 0 && shapes.length !== 1 && shapes.length !== top.length) {
      this.fail(`input_param has ${shapes.length} shapes for ${top.length} tops; give 1 or one per top`)
    }
    for (let i = 0; i < top.length && shapes.length > 0; i++) {
      const dims = (shapes.length === 1 ? shapes[0] : shapes[i])?.dim ?? []
      for (const d of dims) if (!Number.isInteger(d) || d < 0) this.fail(`input shape dimension ${d} is not a non-negative integer`)
      top[i]?.reshape(dims.map(Number))
    }
  }

  override reshape (): void {}
  override forward (): void {}
  override backward (): void {}
}
