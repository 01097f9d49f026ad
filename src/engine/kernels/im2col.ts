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
 * layers). Rows are short there, so loop bookkeeping is most of the cost: a separate small
 * function optimises better in V8, and copying eight values per step halves the rest (LeNet's
 * conv2 batch, 2 M floats: 2.7 ms one value per step, 1.3 ms eight).
 */
export function im2colDense (channels: number, height: number, width: number, kernelH: number, kernelW: number, outH: number, outW: number,
  src: Float32Array, srcOff: number, dst: Float32Array, dstOff: number, ld: number): void {
  const w8 = outW - 7
  let row = dstOff
  for (let c = 0; c < channels; c++) {
    const plane = srcOff + c * height * width
    for (let kh = 0; kh < kernelH; kh++) {
      for (let kw = 0; kw < kernelW; kw++, row += ld) {
        for (let oh = 0, o = row, s = plane + kh * width + kw; oh < outH; oh++, o += outW, s += width) {
          let ow = 0
          for (; ow < w8; ow += 8) {
            dst[o + ow] = src[s + ow]!
            dst[o + ow + 1] = src[s + ow + 1]!
            dst[o + ow + 2] = src[s + ow + 2]!
            dst[o + ow + 3] = src[s + ow + 3]!
            dst[o + ow + 4] = src[s + ow + 4]!
            dst[o + ow + 5] = src[s + ow + 5]!
            dst[o + ow + 6] = src[s + ow + 6]!
            dst[o + ow + 7] = src[s + ow + 7]!
          }
          for (; ow < outW; ow++) dst[o + ow] = src[s + ow]!
        }
      }
    }
  }
}

/** col2im for the dense case of im2colDense (the caller has zeroed the image), eight sums per step likewise. */
export function col2imDense (channels: number, height: number, width: number, kernelH: number, kernelW: number, outH: number, outW: number,
  src: Float32Array, srcOff: number, ld: number, dst: Float32Array, dstOff: number): void {
  const w8 = outW - 7
  let row = srcOff
  for (let c = 0; c < channels; c++) {
    const plane = dstOff + c * height * width
    for (let kh = 0; kh < kernelH; kh++) {
      for (let kw = 0; kw < kernelW; kw++, row += ld) {
        for (let oh = 0, o = row, d = plane + kh * width + kw; oh < outH; oh++, o += outW, d += width) {
          let ow = 0
          for (; ow < w8; ow += 8) {
            dst[d + ow]! += src[o + ow]!
            dst[d + ow + 1]! += src[o + ow + 1]!
            dst[d + ow + 2]! += src[o + ow + 2]!
            dst[d + ow + 3]! += src[o + ow + 3]!
            dst[d + ow + 4]! += src[o + ow + 4]!
            dst[d + ow + 5]! += src[o + ow + 5]!
            dst[d + ow + 6]! += src[o + ow + 6]!
            dst[d + ow + 7]! += src[o + ow + 7]!
          }
          for (; ow < outW; ow++) dst[d + ow]! += src[o + ow]!
        }
      }
    }
  }
}

/**
 * Row unfolding of one image for a convolution with stride 1 in height: row r = c·kW + kw of
 * dst holds, for every padded input row hp in [0, H + 2·padH) and output column ow, the value
 * kernel column kw meets there, x[c, hp − padH, ow·strideW + kw·dilationW − padW] (zero in the
 * padding); rows start ld apart at dstOff. Kernel row kh then meets exactly the contiguous
 * window of columns [kh·dilationH·outW, +outH·outW) of every row, so one GEMM per kernel row
 * (leading dimension ld) sums its taps straight into the image's C×outH×outW output: a kW-th
 * of im2col's copying for LeNet-sized kernels, and no reordering of the result.
 */
export function unfoldRows (g: ConvGeometry, src: Float32Array, srcOff: number, dst: Float32Array, dstOff: number, ld: number): void {
  const { channels, height, width, kernelW, padH, padW, strideW, dilationW, outW } = g
  const plane = height * width
  if (padH === 0 && padW === 0 && strideW === 1) {
    unfoldRowsDense(channels, height, width, kernelW, dilationW, outW, src, srcOff, dst, dstOff, ld)
    return
  }
  const top = padH * outW
  const bottom = (padH + height) * outW
  for (let c = 0, row = dstOff; c < channels; c++) {
    const p = srcOff + c * plane
    for (let kw = 0; kw < kernelW; kw++, row += ld) {
      const wShift = kw * dilationW - padW
      // Output columns whose input column lies inside the image: lo ≤ ow < hi.
      const lo = Math.min(outW, Math.max(0, Math.ceil(-wShift / strideW)))
      const hi = Math.max(lo, Math.min(outW, Math.ceil((width - wShift) / strideW)))
      dst.fill(0, row, row + top)
      for (let h = 0, o = row + top, base = p + wShift; h < height; h++, o += outW, base += width) {
        for (let ow = 0; ow < lo; ow++) dst[o + ow] = 0
        for (let ow = lo; ow < hi; ow++) dst[o + ow] = src[base + ow * strideW]!
        for (let ow = hi; ow < outW; ow++) dst[o + ow] = 0
      }
      dst.fill(0, row + bottom, row + bottom + top)
    }
  }
}

/**
 * unfoldRows without padding and with stride 1: plain copies of outW values per input row,
 * eight at a time (rows are short, so loop overhead is most of the cost: LeNet's conv2 unfold
 * measured 0.71 ms one at a time, 0.39 ms eight at a time).
 */
export function unfoldRowsDense (channels: number, height: number, width: number, kernelW: number, dilationW: number, outW: number,
  src: Float32Array, srcOff: number, dst: Float32Array, dstOff: number, ld: number): void {
  const w8 = outW - 7
  for (let c = 0, row = dstOff; c < channels; c++) {
    const p = srcOff + c * height * width
    for (let kw = 0; kw < kernelW; kw++, row += ld) {
      for (let h = 0, o = row, s = p + kw * dilationW; h < height; h++, o += outW, s += width) {
        let ow = 0
        for (; ow < w8; ow += 8) {
          dst[o + ow] = src[s + ow]!
          dst[o + ow + 1] = src[s + ow + 1]!
          dst[o + ow + 2] = src[s + ow + 2]!
          dst[o + ow + 3] = src[s + ow + 3]!
          dst[o + ow + 4] = src[s + ow + 4]!
          dst[o + ow + 5] = src[s + ow + 5]!
          dst[o + ow + 6] = src[s + ow + 6]!
          dst[o + ow + 7] = src[s + ow + 7]!
        }
        for (; ow < outW; ow++) dst[o + ow] = src[s + ow]!
      }
    }
  }
}

/** Output size of a convolution along one axis (Caffe's ConvolutionLayer::compute_output_shape). */
export function convOutputSize (input: number, kernel: number, pad: number, stride: number, dilation: number): number {
  const extent = dilation * (kernel - 1) + 1
  return Math.floor((input + 2 * pad - extent) / stride) + 1
}
