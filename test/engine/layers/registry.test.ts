import { describe, expect, it } from 'vitest'
import { Blob } from '../../../src/engine/blob.js'
import { LayerConfigError } from '../../../src/engine/layers/errors.js'
import { createLayer, SUPPORTED_LAYER_TYPES } from '../../../src/engine/layers/registry.js'
import type { MessageInit } from '../../../src/engine/proto/caffe.js'
import { context, layerParam, setUpLayer } from './helpers.js'

function setUpError (init: MessageInit<'LayerParameter'>, bottom: Blob[], tops = 1): LayerConfigError {
  try {
    setUpLayer(init, bottom, Array.from({ length: tops }, () => new Blob()))
  } catch (err) {
    expect(err).toBeInstanceOf(LayerConfigError)
    return err as LayerConfigError
  }
  return expect.fail('expected a LayerConfigError')
}

describe('createLayer', () => {
  it('knows the issue\'s layer types', () => {
    for (const t of ['Input', 'Data', 'ImageData', 'Convolution', 'Pooling', 'InnerProduct', 'ReLU', 'Sigmoid', 'TanH', 'Dropout', 'LRN',
      'BatchNorm', 'Scale', 'Eltwise', 'Concat', 'Flatten', 'Split', 'Softmax', 'SoftmaxWithLoss', 'Accuracy']) {
      expect(SUPPORTED_LAYER_TYPES).toContain(t)
      expect(createLayer(layerParam({ name: `l_${t}`, type: t }), context()).type).toBe(t)
    }
  })

  it('names the layer and the type it does not support', () => {
    expect(() => createLayer(layerParam({ name: 'fancy', type: 'Deconvolution' }), context())).toThrow(LayerConfigError)
    expect(() => createLayer(layerParam({ name: 'fancy', type: 'Deconvolution' }), context()))
      .toThrow('layer "fancy" (Deconvolution): layer type "Deconvolution" is not supported')
    expect(() => createLayer(layerParam({ name: 'anon' }), context())).toThrow('layer "anon" (?): the layer has no type')
  })

  it('rejects unsupported fields and bad parameters with the layer in the message', () => {
    const x = new Blob([2, 4, 6, 6])
    expect(setUpError({ name: 'p', type: 'Pooling', pooling_param: { pool: 'STOCHASTIC', kernel_size: 2 } }, [x]).message)
      .toBe('layer "p" (Pooling): pool: STOCHASTIC is not supported (MAX or AVE)')
    expect(setUpError({ name: 'p', type: 'Pooling', pooling_param: {} }, [x]).message).toMatch(/kernel_size .* is required/)
    expect(setUpError({ name: 'p', type: 'Pooling', pooling_param: { global_pooling: true, kernel_size: 2 } }, [x]).message).toMatch(/global_pooling/)
    expect(setUpError({ name: 'c', type: 'Convolution', convolution_param: { kernel_size: [3] } }, [x]).message)
      .toBe('layer "c" (Convolution): num_output must be set and greater than zero')
    expect(setUpError({ name: 'c', type: 'Convolution', convolution_param: { num_output: 3, kernel_size: [3], group: 3 } }, [x]).message)
      .toMatch(/channels \(4\) must be divisible by group \(3\)/)
    expect(setUpError({ name: 'c', type: 'Convolution', convolution_param: { num_output: 2, kernel_size: [3], weight_filler: { type: 'magic' } } }, [x]).message)
      .toMatch(/^layer "c" \(Convolution\): weight_filler: unknown filler type "magic"/)
    expect(setUpError({ name: 'c', type: 'Convolution', convolution_param: { num_output: 2, kernel_size: [7] } }, [x]).message).toMatch(/does not fit/)
    expect(setUpError({ name: 'c', type: 'Convolution', convolution_param: { num_output: 2, kernel_size: [3] } }, [new Blob([2, 3])]).message).toMatch(/4-axis bottom/)
    expect(setUpError({ name: 'r', type: 'ReLU' }, [x, x]).message).toBe('layer "r" (ReLU): takes 1 bottom blob, got 2')
    expect(setUpError({ name: 'l', type: 'LRN', lrn_param: { local_size: 4 } }, [x]).message).toMatch(/local_size must be odd/)
    expect(setUpError({ name: 'd', type: 'Dropout', dropout_param: { dropout_ratio: 1 } }, [x]).message).toMatch(/dropout_ratio/)
    expect(setUpError({ name: 'ip', type: 'InnerProduct', inner_product_param: { num_output: 2, axis: 4 } }, [x]).message).toMatch(/axis 4 is out of range/)
    expect(setUpError({ name: 'e', type: 'Eltwise', eltwise_param: { operation: 'PROD', coeff: [1, 2] } }, [x, x]).message).toMatch(/only allowed with operation SUM/)
    expect(setUpError({ name: 'e', type: 'Eltwise' }, [x, new Blob([2, 4, 6, 5])]).message).toMatch(/all must match/)
    expect(setUpError({ name: 's', type: 'SoftmaxWithLoss' }, [new Blob([4, 10]), new Blob([5])]).message).toMatch(/number of labels \(5/)
    expect(setUpError({ name: 'a', type: 'Accuracy', accuracy_param: { top_k: 11 } }, [new Blob([4, 10]), new Blob([4])]).message).toMatch(/top_k \(11\)/)
    expect(setUpError({ name: 'cat', type: 'Concat' }, [x, new Blob([2, 4, 5, 6])]).message).toMatch(/outside the concat axis 1/)
    expect(setUpError({ name: 'i', type: 'Input', input_param: { shape: [{ dim: [1] }, { dim: [2] }] } }, [], 3).message).toMatch(/2 shapes for 3 tops/)
  })

  it('reshape rejects a bottom whose size no longer fits the weights', () => {
    const x = new Blob([2, 3, 4])
    const y = new Blob()
    const ip = setUpLayer({ name: 'ip', type: 'InnerProduct', inner_product_param: { num_output: 2 } }, [x], [y])
    x.reshape([2, 3, 5])
    expect(() => ip.reshape([x], [y])).toThrow(/input size 15 .* does not match the weights' 12/)
  })

  it('loss and backward capabilities as Caffe declares them', () => {
    const loss = createLayer(layerParam({ type: 'SoftmaxWithLoss' }), context())
    expect([loss.defaultLossWeight(0), loss.defaultLossWeight(1)]).toEqual([1, 0])
    expect([loss.allowForceBackward(0), loss.allowForceBackward(1)]).toEqual([true, false])
    const acc = createLayer(layerParam({ type: 'Accuracy' }), context())
    expect(acc.defaultLossWeight(0)).toBe(0)
    expect(acc.allowForceBackward(0)).toBe(false)
    const conv = setUpLayer({ type: 'Convolution', convolution_param: { num_output: 2, kernel_size: [1] } }, [new Blob([1, 1, 2, 2])], [new Blob()])
    expect(conv.paramPropagateDown).toEqual([true, true])
    expect(conv.fixedParams).toEqual([])
  })
})
