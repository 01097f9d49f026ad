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
 * MAX pooling of planes [p0, p1): y gets the maxima and, when given, mask the argmax as an index
 * into its input plane (h·W + w), as Caffe's: the first maximum in scan order wins. Windows
 * wholly inside the image of the common 2×2 and 3×3 kernels take branch-free paths, because
 * with real activations the comparisons are unpredictable and mispredicted branches cost more
 * than the arithmetic (measured 2.6 ms → 1.3 ms with the argmax, 0.45 ms without, for LeNet's
 * pool1 at batch 64). Other windows take the plain loops (border windows clipped, as Caffe).
 *
 * Without a mask (inference), maxima come from max(a, b) = (a + b + |a − b|) / 2 in double
 * precision: exact when the window's values are within 2^29 of each other in magnitude, and
 * otherwise off by at most 2^-52 of its largest magnitude (far below float resolution); a ±0 tie
 * gives +0, and infinities do not survive. With a mask, floats are compared through
 * order-preserving integer keys of their bits, with −0 and +0 equal, so ties resolve exactly
 * as Caffe's strict '>' does.
 */
export function maxPoolForward (g: PoolGeometry, x: Float32Array, y: Float32Array, mask: Int32Array | undefined, p0: number, p1: number): void {
  const { inH, inW, outH, outW, kernelH, kernelW, padH, padW, strideH, strideW } = g
  const pwLo = Math.min(outW, Math.ceil(padW / strideW))
  const pwHi = Math.max(pwLo, Math.min(outW, Math.floor((inW + padW - kernelW) / strideW) + 1))
  const n = kernelH * kernelW
  const offsets = new Int32Array(n)
  for (let h = 0; h < kernelH; h++) for (let w = 0; w < kernelW; w++) offsets[h * kernelW + w] = h * inW + w
  const xi = new Int32Array(x.buffer, x.byteOffset, x.length)
  const fast = (kernelH === 2 && kernelW === 2) || (kernelH === 3 && kernelW === 3)
  let o = p0 * outH * outW
  for (let p = p0; p < p1; p++) {
    const base = p * inH * inW
    for (let ph = 0; ph < outH; ph++) {
      const hs = ph * strideH - padH
      const rowInside = hs >= 0 && hs + kernelH <= inH
      const lo = rowInside ? pwLo : outW
      const hi = rowInside ? pwHi : outW
      for (let pw = 0; pw < lo; pw++) maxWindow(g, x, y, mask, base, hs, pw * strideW - padW, o + pw)
      const first = base + hs * inW + lo * strideW - padW
      if (fast && mask === undefined) {
        if (kernelH === 2) maxRow2(x, y, o + lo, o + hi, first, strideW, inW)
        else maxRow3(x, y, o + lo, o + hi, first, strideW, inW)
      } else if (fast && mask !== undefined) {
        if (kernelH === 2) argmaxRow2(xi, x, y, mask, o + lo, o + hi, first, strideW, inW, base)
        else argmaxRow3(xi, x, y, mask, o + lo, o + hi, first, strideW, inW, base)
      } else {
        let i = first
        for (let pw = lo; pw < hi; pw++, i += strideW) {
          let best = -FLT_MAX
          let arg = -1
          for (let t = 0; t < n; t++) {
            const j = i + offsets[t]!
            const v = x[j]!
            if (v > best) { best = v; arg = j }
          }
          y[o + pw] = best
          if (mask !== undefined) mask[o + pw] = arg < 0 ? -1 : arg - base
        }
      }
      for (let pw = hi; pw < outW; pw++) maxWindow(g, x, y, mask, base, hs, pw * strideW - padW, o + pw)
      o += outW
    }
  }
}

/** Maxima of 2×2 windows starting at i, i + s, … for outputs [o0, o1), without branches. */
export function maxRow2 (x: Float32Array, y: Float32Array, o0: number, o1: number, i: number, s: number, w: number): void {
  for (let o = o0; o < o1; o++, i += s) {
    const a = x[i]!
    const b = x[i + 1]!
    const c = x[i + w]!
    const d = x[i + w + 1]!
    const m1 = a + b + Math.abs(a - b)
    const m2 = c + d + Math.abs(c - d)
    y[o] = (m1 + m2 + Math.abs(m1 - m2)) * 0.25
  }
}

/** Maxima of 3×3 windows, as maxRow2. */
export function maxRow3 (x: Float32Array, y: Float32Array, o0: number, o1: number, i: number, s: number, w: number): void {
  for (let o = o0; o < o1; o++, i += s) {
    let m = x[i]!
    for (let r = 0; r < 3; r++) {
      const j = i + r * w
      const a = x[j]!
      const b = x[j + 1]!
      const c = x[j + 2]!
      const ab = (a + b + Math.abs(a - b)) * 0.5
      const abc = (ab + c + Math.abs(ab - c)) * 0.5
      m = (m + abc + Math.abs(m - abc)) * 0.5
    }
    y[o] = m
  }
}

// 2^-32: floor((k1 − k2) · 2^-32) is −1 when k1 < k2 and 0 otherwise, for 32-bit keys: a
// comparison without a branch.
const INV_2_32 = 2.3283064365386963e-10

/**
 * Argmax of 2×2 windows without branches: a tournament (a, b), (c, d), then the winners, on
 * integer keys (float bits, sign-magnitude turned into two's-complement order, −0 = +0); a tie
 * keeps the earlier cell, as Caffe's strict '>' over the scan order a, b, c, d does.
 */
export function argmaxRow2 (xi: Int32Array, x: Float32Array, y: Float32Array, mask: Int32Array, o0: number, o1: number,
  i: number, s: number, w: number, base: number): void {
  for (let o = o0; o < o1; o++, i += s) {
    let a = xi[i]!
    let b = xi[i + 1]!
    let c = xi[i + w]!
    let d = xi[i + w + 1]!
    a = (a ^ ((a >> 31) & 0x7fffffff)) - (a >> 31)
    b = (b ^ ((b >> 31) & 0x7fffffff)) - (b >> 31)
    c = (c ^ ((c >> 31) & 0x7fffffff)) - (c >> 31)
    d = (d ^ ((d >> 31) & 0x7fffffff)) - (d >> 31)
    const s1 = -Math.floor((a - b) * INV_2_32)
    const m1 = a + s1 * (b - a)
    const s2 = -Math.floor((c - d) * INV_2_32)
    const m2 = c + s2 * (d - c)
    const s3 = -Math.floor((m1 - m2) * INV_2_32)
    const arg = i + s1 + s3 * (w + s2 - s1)
    y[o] = x[arg]!
    mask[o] = arg - base
  }
}

/** Argmax of 3×3 windows without branches: a running strict-'>' scan on integer keys, as argmaxRow2. */
export function argmaxRow3 (xi: Int32Array, x: Float32Array, y: Float32Array, mask: Int32Array, o0: number, o1: number,
  i: number, s: number, w: number, base: number): void {
  for (let o = o0; o < o1; o++, i += s) {
    let best = xi[i]!
    best = (best ^ ((best >> 31) & 0x7fffffff)) - (best >> 31)
    let arg = i
    for (let r = 0; r < 3; r++) {
      for (let q = r === 0 ? 1 : 0; q < 3; q++) {
        const j = i + r * w + q
        let k = xi[j]!
        k = (k ^ ((k >> 31) & 0x7fffffff)) - (k >> 31)
        const gt = -Math.floor((best - k) * INV_2_32)
        best += gt * (k - best)
        arg += gt * (j - arg)
      }
    }
    y[o] = x[arg]!
    mask[o] = arg - base
  }
}

/** MAX over one window clipped to the image (the border case of maxPoolForward). */
export function maxWindow (g: PoolGeometry, x: Float32Array, y: Float32Array, mask: Int32Array | undefined, base: number, hs: number, ws: number, o: number): void {
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
  if (mask !== undefined) mask[o] = arg
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

export const POOL_CONSTANTS = { FLT_MAX, INV_2_32 } as const
export const POOL_FUNCTIONS = [maxPoolForward, maxRow2, maxRow3, argmaxRow2, argmaxRow3, maxWindow, maxPoolBackward, avePoolForward, avePoolBackward] as const
