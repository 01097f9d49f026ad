// BVLC's LeNet as the benchmarks build it: Input layers instead of Data (random pixels, so the
// figures are the compute engine's own), a training net ending in SoftmaxWithLoss and a deploy
// net ending in Softmax, as `caffe classify`-style inference runs it.

function body (): string {
  return `
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 20 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 50 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1" param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
`
}

/** The training net (TRAIN phase): data and label inputs, loss on top. */
export function lenetTrainNet (batch: number): string {
  return `name: "LeNet"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: ${batch} dim: 1 dim: 28 dim: 28 } shape { dim: ${batch} } } }
${body()}
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
`
}

/** The deploy net (run in the TEST phase): images in, class probabilities out. */
export function lenetDeployNet (batch: number): string {
  return `name: "LeNet"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: ${batch} dim: 1 dim: 28 dim: 28 } } }
${body()}
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
`
}
