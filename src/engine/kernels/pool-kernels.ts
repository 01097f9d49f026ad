// Pooling loops over a range of planes (image × channel), written as free functions of plain
// arguments so that worker threads can run the same source (see tasks.ts): they may refer
// only to each other and to FLT_MAX. Indices into typed arrays are in range by construction;
// `!` only tells noUncheckedIndexedAccess so.

/** Geometry of one pooling layer: input and output plane sizes, window, padding and stride. */
export interface PoolGeometry {
  readonly inH: number
  readonly inW: number
  readonly outH: number
  readonly outW: number
  readonly kernelH: number
  readonly kernelW: number
  readonly padH: number
  readonly padW: number
  readonly strideH: number
  readonly strideW: number
}

const FLT_MAX = 3.4028234663852886e38

/**
 * MAX pooling of planes [p0, p1): y gets the maxima, mask the argmax as an index into its input
 * plane (h·W + w), or −1 for a window of NaN/−inf. Caffe starts from −FLT_MAX with a strict '>',
 * so the first maximum wins. Windows wholly inside the image take an unrolled path (2×2, 3×3)
 * or an offset-table loop; V8 runs tiny nested loops slowly, and for LeNet's 2×2 pooling the
 * unrolled path is several times faster. Border windows take the clipped general loop.
 */
export function maxPoolForward (g: PoolGeometry, x: Float32Array, y: Float32Array, mask: Int32Array, p0: number, p1: number): void {
  const { inH, inW, outH, outW, kernelH, kernelW, padH, padW, strideH, strideW } = g
  const pwLo = Math.min(outW, Math.ceil(padW / strideW))
  const pwHi = Math.max(pwLo, Math.min(outW, Math.floor((inW + padW - kernelW) / strideW) + 1))
  const n = kernelH * kernelW
  const offsets = new Int32Array(n)
  for (let h = 0; h < kernelH; h++) for (let w = 0; w < kernelW; w++) offsets[h * kernelW + w] = h * inW + w
  const k22 = kernelH === 2 && kernelW === 2
  const k33 = kernelH === 3 && kernelW === 3
  const w2 = 2 * inW
  let o = p0 * outH * outW
  for (let p = p0; p < p1; p++) {
    const base = p * inH * inW
    for (let ph = 0; ph < outH; ph++) {
      const hs = ph * strideH - padH
      const rowInside = hs >= 0 && hs + kernelH <= inH
      const lo = rowInside ? pwLo : outW
      const hi = rowInside ? pwHi : outW
      for (let pw = 0; pw < lo; pw++) maxWindow(g, x, y, mask, base, hs, pw * strideW - padW, o + pw)
      let i = base + hs * inW + lo * strideW - padW
      if (k22) {
        for (let pw = lo; pw < hi; pw++, i += strideW) {
          let best = -FLT_MAX
          let arg = -1
          let v = x[i]!
          if (v > best) { best = v; arg = i }
          v = x[i + 1]!
          if (v > best) { best = v; arg = i + 1 }
          v = x[i + inW]!
          if (v > best) { best = v; arg = i + inW }
          v = x[i + inW + 1]!
          if (v > best) { best = v; arg = i + inW + 1 }
          y[o + pw] = best
          mask[o + pw] = arg < 0 ? -1 : arg - base
        }
      } else if (k33) {
        for (let pw = lo; pw < hi; pw++, i += strideW) {
          let best = -FLT_MAX
          let arg = -1
          let v = x[i]!
          if (v > best) { best = v; arg = i }
          v = x[i + 1]!
          if (v > best) { best = v; arg = i + 1 }
          v = x[i + 2]!
          if (v > best) { best = v; arg = i + 2 }
          v = x[i + inW]!
          if (v > best) { best = v; arg = i + inW }
          v = x[i + inW + 1]!
          if (v > best) { best = v; arg = i + inW + 1 }
          v = x[i + inW + 2]!
          if (v > best) { best = v; arg = i + inW + 2 }
          v = x[i + w2]!
          if (v > best) { best = v; arg = i + w2 }
          v = x[i + w2 + 1]!
          if (v > best) { best = v; arg = i + w2 + 1 }
          v = x[i + w2 + 2]!
          if (v > best) { best = v; arg = i + w2 + 2 }
          y[o + pw] = best
          mask[o + pw] = arg < 0 ? -1 : arg - base
        }
      } else {
        for (let pw = lo; pw < hi; pw++, i += strideW) {
          let best = -FLT_MAX
          let arg = -1
          for (let t = 0; t < n; t++) {
            const j = i + offsets[t]!
            const v = x[j]!
            if (v > best) { best = v; arg = j }
          }
          y[o + pw] = best
          mask[o + pw] = arg < 0 ? -1 : arg - base
        }
      }
      for (let pw = hi; pw < outW; pw++) maxWindow(g, x, y, mask, base, hs, pw * strideW - padW, o + pw)
      o += outW
    }
  }
}

/** MAX over one window clipped to the image (the border case of maxPoolForward). */
export function maxWindow (g: PoolGeometry, x: Float32Array, y: Float32Array, mask: Int32Array, base: number, hs: number, ws: number, o: number): void {
  const hEnd = Math.min(hs + g.kernelH, g.inH)
  const wEnd = Math.min(ws + g.kernelW, g.inW)
  const hStart = Math.max(hs, 0)
  const wStart = Math.max(ws, 0)
  const inW = g.inW
  let best = -FLT_MAX
  let arg = -1
  for (let h = hStart; h < hEnd; h++) {
    const row = h * inW
    for (let w = wStart; w < wEnd; w++) {
      const v = x[base + row + w]!
      if (v > best) {
        best = v
        arg = row + w
      }
    }
  }
  y[o] = best
  mask[o] = arg
}

/** MAX pooling gradient for planes [p0, p1): dx is overwritten, each dy goes to its argmax. */
export function maxPoolBackward (g: PoolGeometry, dy: Float32Array, mask: Int32Array, dx: Float32Array, p0: number, p1: number): void {
  const inPlane = g.inH * g.inW
  const outPlane = g.outH * g.outW
  dx.fill(0, p0 * inPlane, p1 * inPlane)
  for (let p = p0; p < p1; p++) {
    const xo = p * inPlane
    for (let o = p * outPlane, end = o + outPlane; o < end; o++) {
      const m = mask[o]!
      if (m >= 0) dx[xo + m]! += dy[o]!
    }
  }
}

/**
 * AVE pooling of planes [p0, p1). Caffe divides by the window clipped to the padded image
 * (padding cells count), then sums only the cells inside the image.
 */
export function avePoolForward (g: PoolGeometry, x: Float32Array, y: Float32Array, p0: number, p1: number): void {
  const { inH, inW, outH, outW, kernelH, kernelW, padH, padW, strideH, strideW } = g
  let o = p0 * outH * outW
  for (let p = p0; p < p1; p++) {
    const base = p * inH * inW
    for (let ph = 0; ph < outH; ph++) {
      const hs = ph * strideH - padH
      const hEndPad = Math.min(hs + kernelH, inH + padH)
      const hStart = Math.max(hs, 0)
      const hEnd = Math.min(hEndPad, inH)
      for (let pw = 0; pw < outW; pw++, o++) {
        const ws = pw * strideW - padW
        const wEndPad = Math.min(ws + kernelW, inW + padW)
        const size = (hEndPad - hs) * (wEndPad - ws)
        const wStart = Math.max(ws, 0)
        const wEnd = Math.min(wEndPad, inW)
        let s = 0
        for (let h = hStart; h < hEnd; h++) {
          const row = base + h * inW
          for (let w = wStart; w < wEnd; w++) s += x[row + w]!
        }
        y[o] = s / size
      }
    }
  }
}

/** AVE pooling gradient for planes [p0, p1): dx is overwritten. */
export function avePoolBackward (g: PoolGeometry, dy: Float32Array, dx: Float32Array, p0: number, p1: number): void {
  const { inH, inW, outH, outW, kernelH, kernelW, padH, padW, strideH, strideW } = g
  dx.fill(0, p0 * inH * inW, p1 * inH * inW)
  let o = p0 * outH * outW
  for (let p = p0; p < p1; p++) {
    const base = p * inH * inW
    for (let ph = 0; ph < outH; ph++) {
      const hs = ph * strideH - padH
      const hEndPad = Math.min(hs + kernelH, inH + padH)
      const hStart = Math.max(hs, 0)
      const hEnd = Math.min(hEndPad, inH)
      for (let pw = 0; pw < outW; pw++, o++) {
        const ws = pw * strideW - padW
        const wEndPad = Math.min(ws + kernelW, inW + padW)
        const d = dy[o]! / ((hEndPad - hs) * (wEndPad - ws))
        const wStart = Math.max(ws, 0)
        const wEnd = Math.min(wEndPad, inW)
        for (let h = hStart; h < hEnd; h++) {
          const row = base + h * inW
          for (let w = wStart; w < wEnd; w++) dx[row + w]! += d
        }
      }
    }
  }
}

export const POOL_CONSTANTS = { FLT_MAX } as const
export const POOL_FUNCTIONS = [maxPoolForward, maxWindow, maxPoolBackward, avePoolForward, avePoolBackward] as const
