/** Geometry of a 2-D convolution window over one C×H×W image. */
export interface ConvGeometry {
  readonly channels: number
  readonly height: number
  readonly width: number
  readonly kernelH: number
  readonly kernelW: number
  readonly padH: number
  readonly padW: number
  readonly strideH: number
  readonly strideW: number
  readonly dilationH: number
  readonly dilationW: number
  /** Output size, Caffe's rule: (in + 2·pad − (dilation·(k − 1) + 1)) / stride + 1, rounded down. */
  readonly outH: number
  readonly outW: number
}

// Indices into the typed arrays below are in range by construction; `!` only tells
// noUncheckedIndexedAccess so, at no run-time cost.

/**
 * Unfolds one image into columns, Caffe's im2col layout: row r = (c·kH + kh)·kW + kw holds the
 * outH·outW input values that kernel tap meets, zero where it falls into the padding. Row r
 * starts at dst[dstOff + r·ld], so with ld = batch·outH·outW and dstOff = b·outH·outW the
 * images of a batch sit side by side and one GEMM covers them all.
 */
export function im2col (g: ConvGeometry, src: Float32Array, srcOff: number, dst: Float32Array, dstOff: number, ld: number): void {
  const { channels, height, width, kernelH, kernelW, padH, padW, strideH, strideW, dilationH, dilationW, outH, outW } = g
  let row = dstOff
  if (padH === 0 && padW === 0 && strideH === 1 && strideW === 1 && dilationH === 1 && dilationW === 1) {
    im2colDense(channels, height, width, kernelH, kernelW, outH, outW, src, srcOff, dst, dstOff, ld)
    return
  }
  for (let c = 0; c < channels; c++) {
    const plane = srcOff + c * height * width
    for (let kh = 0; kh < kernelH; kh++) {
      for (let kw = 0; kw < kernelW; kw++, row += ld) {
        const wShift = kw * dilationW - padW
        // Output columns whose input column lies inside the image: lo ≤ ow < hi.
        const lo = Math.min(outW, Math.max(0, Math.ceil(-wShift / strideW)))
        const hi = Math.max(lo, Math.min(outW, Math.ceil((width - wShift) / strideW)))
        // Inner loops index from fixed bases (no running pointers): measurably faster in V8.
        for (let oh = 0, o = row; oh < outH; oh++, o += outW) {
          const ih = oh * strideH + kh * dilationH - padH
          if (ih < 0 || ih >= height) {
            dst.fill(0, o, o + outW)
            continue
          }
          for (let ow = 0; ow < lo; ow++) dst[o + ow] = 0
          const base = plane + ih * width + wShift
          if (strideW === 1) {
            for (let ow = lo; ow < hi; ow++) dst[o + ow] = src[base + ow]!
          } else {
            for (let ow = lo; ow < hi; ow++) dst[o + ow] = src[base + ow * strideW]!
          }
          for (let ow = hi; ow < outW; ow++) dst[o + ow] = 0
        }
      }
    }
  }
}

/**
 * The adjoint of im2col: sums the columns back into one image (Caffe's col2im). The image
 * region dst[dstOff .. dstOff + C·H·W) is overwritten, not accumulated into.
 */
export function col2im (g: ConvGeometry, src: Float32Array, srcOff: number, ld: number, dst: Float32Array, dstOff: number): void {
  const { channels, height, width, kernelH, kernelW, padH, padW, strideH, strideW, dilationH, dilationW, outH, outW } = g
  dst.fill(0, dstOff, dstOff + channels * height * width)
  let row = srcOff
  if (padH === 0 && padW === 0 && strideH === 1 && strideW === 1 && dilationH === 1 && dilationW === 1) {
    col2imDense(channels, height, width, kernelH, kernelW, outH, outW, src, srcOff, ld, dst, dstOff)
    return
  }
  for (let c = 0; c < channels; c++) {
    const plane = dstOff + c * height * width
    for (let kh = 0; kh < kernelH; kh++) {
      for (let kw = 0; kw < kernelW; kw++, row += ld) {
        const wShift = kw * dilationW - padW
        const lo = Math.min(outW, Math.max(0, Math.ceil(-wShift / strideW)))
        const hi = Math.max(lo, Math.min(outW, Math.ceil((width - wShift) / strideW)))
        for (let oh = 0, o = row; oh < outH; oh++, o += outW) {
          const ih = oh * strideH + kh * dilationH - padH
          if (ih < 0 || ih >= height) continue
          const base = plane + ih * width + wShift
          if (strideW === 1) {
            for (let ow = lo; ow < hi; ow++) dst[base + ow]! += src[o + ow]!
          } else {
            for (let ow = lo; ow < hi; ow++) dst[base + ow * strideW]! += src[o + ow]!
          }
        }
      }
    }
  }
}

/**
 * im2col for the common dense case (no padding, stride 1, no dilation: LeNet, most unpadded
 * layers). Rows are short there, so the general loop's per-row bookkeeping costs a third of
 * the time; a separate small function also optimises better in V8.
 */
export function im2colDense (channels: number, height: number, width: number, kernelH: number, kernelW: number, outH: number, outW: number,
  src: Float32Array, srcOff: number, dst: Float32Array, dstOff: number, ld: number): void {
  let row = dstOff
  for (let c = 0; c < channels; c++) {
    const plane = srcOff + c * height * width
    for (let kh = 0; kh < kernelH; kh++) {
      for (let kw = 0; kw < kernelW; kw++, row += ld) {
        for (let oh = 0, o = row, s = plane + kh * width + kw; oh < outH; oh++, o += outW, s += width) {
          for (let ow = 0; ow < outW; ow++) dst[o + ow] = src[s + ow]!
        }
      }
    }
  }
}

/** col2im for the dense case of im2colDense (the caller has zeroed the image). */
export function col2imDense (channels: number, height: number, width: number, kernelH: number, kernelW: number, outH: number, outW: number,
  src: Float32Array, srcOff: number, ld: number, dst: Float32Array, dstOff: number): void {
  let row = srcOff
  for (let c = 0; c < channels; c++) {
    const plane = dstOff + c * height * width
    for (let kh = 0; kh < kernelH; kh++) {
      for (let kw = 0; kw < kernelW; kw++, row += ld) {
        for (let oh = 0, o = row, d = plane + kh * width + kw; oh < outH; oh++, o += outW, d += width) {
          for (let ow = 0; ow < outW; ow++) dst[d + ow]! += src[o + ow]!
        }
      }
    }
  }
}

/** Output size of a convolution along one axis (Caffe's ConvolutionLayer::compute_output_shape). */
export function convOutputSize (input: number, kernel: number, pad: number, stride: number, dilation: number): number {
  const extent = dilation * (kernel - 1) + 1
  return Math.floor((input + 2 * pad - extent) / stride) + 1
}
