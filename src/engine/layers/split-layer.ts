import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/**
 * Caffe's Split, which the net inserts where one top feeds several bottoms: every top gets
 * a copy of the bottom, and the bottom's gradient is the sum of the tops' gradients.
 */
export class SplitLayer extends BaseLayer {
  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Split', { bottoms: [1, 1], tops: [1, Infinity] })
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    for (const t of top) {
      if (t === x) this.fail('a Split top cannot be its bottom (in place)')
      t.reshapeLike(x)
    }
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0).data
    for (const t of top) t.data.set(x)
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const dx = at(bottom, 0).diff
    dx.set(at(top, 0).diff)
    for (let k = 1; k < top.length; k++) {
      const d = at(top, k).diff
      for (let i = 0; i < dx.length; i++) dx[i]! += d[i]!
    }
  }
}
