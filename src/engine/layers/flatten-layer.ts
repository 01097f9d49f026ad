import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/** Caffe's Flatten: merges axes [axis, end_axis] into one. Values are copied unchanged. */
export class FlattenLayer extends BaseLayer {
  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Flatten', { bottoms: [1, 1], tops: [1, 1] })
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    const y = at(top, 0)
    if (y === x) this.fail('cannot compute in place')
    const p = this.param.flatten_param
    const start = this.axisOf(x, p?.axis ?? 1, 'axis')
    const end = this.axisOf(x, p?.end_axis ?? -1, 'end_axis')
    if (end < start) this.fail(`end_axis (${end}) comes before axis (${start})`)
    y.reshape([...x.shape.slice(0, start), x.countRange(start, end + 1), ...x.shape.slice(end + 1)])
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    at(top, 0).data.set(at(bottom, 0).data)
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] === true) at(bottom, 0).diff.set(at(top, 0).diff)
  }
}
