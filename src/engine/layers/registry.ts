import type { Layer, LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { AccuracyLayer } from './accuracy-layer.js'
import { BatchNormLayer } from './batch-norm-layer.js'
import { ConcatLayer } from './concat-layer.js'
import { ConvolutionLayer } from './convolution-layer.js'
import { DataLayer } from './data-layer.js'
import { DropoutLayer } from './dropout-layer.js'
import { EltwiseLayer } from './eltwise-layer.js'
import { LayerConfigError } from './errors.js'
import { FlattenLayer } from './flatten-layer.js'
import { ImageDataLayer } from './image-data-layer.js'
import { InnerProductLayer } from './inner-product-layer.js'
import { InputLayer } from './input-layer.js'
import { LrnLayer } from './lrn-layer.js'
import { PoolingLayer } from './pooling-layer.js'
import { ReluLayer } from './relu-layer.js'
import { ScaleLayer } from './scale-layer.js'
import { SigmoidLayer } from './sigmoid-layer.js'
import { SoftmaxLayer } from './softmax-layer.js'
import { SoftmaxWithLossLayer } from './softmax-with-loss-layer.js'
import { SplitLayer } from './split-layer.js'
import { TanhLayer } from './tanh-layer.js'

type LayerClass = new (param: LayerParameter, ctx: LayerContext) => Layer

/** Caffe's V2 type names of every layer this engine runs. */
const LAYERS: ReadonlyMap<string, LayerClass> = new Map<string, LayerClass>([
  ['Input', InputLayer],
  ['Data', DataLayer],
  ['ImageData', ImageDataLayer],
  ['Convolution', ConvolutionLayer],
  ['Pooling', PoolingLayer],
  ['InnerProduct', InnerProductLayer],
  ['ReLU', ReluLayer],
  ['Sigmoid', SigmoidLayer],
  ['TanH', TanhLayer],
  ['Dropout', DropoutLayer],
  ['LRN', LrnLayer],
  ['BatchNorm', BatchNormLayer],
  ['Scale', ScaleLayer],
  ['Eltwise', EltwiseLayer],
  ['Concat', ConcatLayer],
  ['Flatten', FlattenLayer],
  ['Split', SplitLayer],
  ['Softmax', SoftmaxLayer],
  ['SoftmaxWithLoss', SoftmaxWithLossLayer],
  ['Accuracy', AccuracyLayer]
])

/** The layer types createLayer() accepts. */
export const SUPPORTED_LAYER_TYPES: readonly string[] = [...LAYERS.keys()]

/**
 * Builds the layer a LayerParameter describes (V2 type names; the proto module upgrades V1).
 * Throws LayerConfigError naming the layer for an unknown type, or, from the layer's set-up,
 * for a field it does not support. The layer is not set up yet: the net calls setUp with blobs.
 */
export function createLayer (param: LayerParameter, ctx: LayerContext): Layer {
  const type = param.type ?? ''
  const name = param.name ?? ''
  const Cls = LAYERS.get(type)
  if (Cls === undefined) {
    throw new LayerConfigError(name, type === '' ? '?' : type,
      type === '' ? 'the layer has no type' : `layer type "${type}" is not supported (supported: ${SUPPORTED_LAYER_TYPES.join(', ')})`)
  }
  return new Cls(param, ctx)
}
