import { AppError } from '../../lib/errors.js'

/**
 * A layer that cannot be built or run as configured: an unsupported type or field, a missing
 * or out-of-range parameter, bottoms whose shapes do not fit. The message always starts with
 * the layer's name and type, e.g. `layer "conv1" (Convolution): kernel_size is required`.
 */
export class LayerConfigError extends AppError {
  readonly layer: string
  readonly layerType: string

  constructor (layer: string, layerType: string, problem: string) {
    super(400, 'ET_LAYER_CONFIG', `layer "${layer}" (${layerType}): ${problem}`, { details: { layer, layerType } })
    this.layer = layer
    this.layerType = layerType
  }
}

/** Input data a layer cannot compute with, such as a label outside [0, classes). */
export class LayerDataError extends AppError {
  constructor (layer: string, layerType: string, problem: string) {
    super(400, 'ET_LAYER_DATA', `layer "${layer}" (${layerType}): ${problem}`, { details: { layer, layerType } })
  }
}
