import { describe, expect, it } from 'vitest'
import { col2im, convOutputSize, im2col, unfoldRows, type ConvGeometry } from '../../../src/engine/kernels/im2col.js'
import { Rng } from '../../../src/engine/random.js'

function geometry (channels: number, height: number, width: number, k: [number, number], pad: [number, number], stride: [number, number], dil: [number, number]): ConvGeometry {
  return {
    channels,
    height,
    width,
    kernelH: k[0],
    kernelW: k[1],
    padH: pad[0],
    padW: pad[1],
    strideH: stride[0],
    strideW: stride[1],
    dilationH: dil[0],
    dilationW: dil[1],
    outH: convOutputSize(height, k[0], pad[0], stride[0], dil[0]),
    outW: convOutputSize(width, k[1], pad[1], stride[1], dil[1])
  }
}

const cases: ConvGeometry[] = [
  geometry(1, 3, 3, [2, 2], [0, 0], [1, 1], [1, 1]),
  geometry(2, 5, 7, [3, 3], [1, 1], [2, 2], [1, 1]),
  geometry(3, 6, 4, [2, 3], [2, 0], [1, 3], [1, 1]),
  geometry(2, 7, 8, [3, 2], [1, 2], [1, 1], [2, 3]),
  geometry(1, 4, 4, [5, 5], [2, 2], [1, 1], [1, 1])
]

/** The value im2col must put at (row, column) of one image's matrix, from the definition. */
function expected (g: ConvGeometry, img: Float32Array, row: number, col: number): number {
  const kw = row % g.kernelW
  const kh = Math.floor(row / g.kernelW) % g.kernelH
  const c = Math.floor(row / (g.kernelW * g.kernelH))
  const ow = col % g.outW
  const oh = Math.floor(col / g.outW)
  const ih = oh * g.strideH - g.padH + kh * g.dilationH
  const iw = ow * g.strideW - g.padW + kw * g.dilationW
  if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) return 0
  return img[(c * g.height + ih) * g.width + iw] ?? Number.NaN
}

describe('im2col / col2im', () => {
  const rng = new Rng(3)

  it('lays out every kernel tap as Caffe does, zero in the padding, side by side for a batch', () => {
    for (const g of cases) {
      const batch = 3
      const inDim = g.channels * g.height * g.width
      const n = g.outH * g.outW
      const rows = g.channels * g.kernelH * g.kernelW
      const x = Float32Array.from({ length: batch * inDim }, () => rng.uniformRange(1, 2))
      const col = new Float32Array(rows * n * batch).fill(Number.NaN)
      for (let b = 0; b < batch; b++) im2col(g, x, b * inDim, col, b * n, batch * n)
      for (let b = 0; b < batch; b++) {
        const img = x.subarray(b * inDim, (b + 1) * inDim)
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < n; j++) {
            const got = col[r * batch * n + b * n + j]
            if (got !== expected(g, img, r, j)) expect.fail(`case ${JSON.stringify(g)} image ${b} row ${r} col ${j}: ${got} vs ${expected(g, img, r, j)}`)
          }
        }
      }
    }
  })

  it('unfoldRows: the window of kernel row kh holds im2col\'s rows (c, kh, ·) for stride 1 in height', () => {
    const rowCases = [
      ...cases.filter((g) => g.strideH === 1),
      geometry(20, 12, 12, [5, 5], [0, 0], [1, 1], [1, 1]),
      geometry(1, 28, 28, [5, 5], [0, 0], [1, 1], [1, 1]),
      geometry(2, 9, 19, [3, 2], [0, 0], [1, 1], [1, 4]),
      geometry(2, 6, 11, [3, 3], [2, 1], [1, 2], [2, 1])
    ]
    for (const g of rowCases) {
      const inDim = g.channels * g.height * g.width
      const n = g.outH * g.outW
      const ld = (g.height + 2 * g.padH) * g.outW + 3
      const x = Float32Array.from({ length: 2 * inDim }, () => rng.uniformRange(1, 2))
      const rows = new Float32Array(2 + g.channels * g.kernelW * ld).fill(Number.NaN)
      unfoldRows(g, x, inDim, rows, 2, ld)
      const img = x.subarray(inDim)
      for (let c = 0; c < g.channels; c++) {
        for (let kw = 0; kw < g.kernelW; kw++) {
          const r = 2 + (c * g.kernelW + kw) * ld
          for (let kh = 0; kh < g.kernelH; kh++) {
            const window = r + kh * g.dilationH * g.outW
            for (let j = 0; j < n; j++) {
              const want = expected(g, img, (c * g.kernelH + kh) * g.kernelW + kw, j)
              if (rows[window + j] !== want) expect.fail(`case ${JSON.stringify(g)} c ${c} kh ${kh} kw ${kw} col ${j}: ${rows[window + j]} vs ${want}`)
            }
          }
        }
      }
      // Nothing before dstOff, and only the padding gap of each row's ld is left unwritten.
      expect(rows[0]).toBeNaN()
      expect(rows[1]).toBeNaN()
    }
  })

  it('col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>', () => {
    for (const g of cases) {
      const inDim = g.channels * g.height * g.width
      const size = g.channels * g.kernelH * g.kernelW * g.outH * g.outW
      const x = Float32Array.from({ length: inDim }, () => rng.gaussian())
      const c = Float32Array.from({ length: size }, () => rng.gaussian())
      const cx = new Float32Array(size)
      im2col(g, x, 0, cx, 0, g.outH * g.outW)
      const back = new Float32Array(inDim + 2).fill(7)
      col2im(g, c, 0, g.outH * g.outW, back, 1)
      expect(back[0]).toBe(7)
      expect(back[inDim + 1]).toBe(7)
      let lhs = 0
      let rhs = 0
      for (let i = 0; i < size; i++) lhs += (cx[i] ?? 0) * (c[i] ?? 0)
      for (let i = 0; i < inDim; i++) rhs += (x[i] ?? 0) * (back[i + 1] ?? 0)
      expect(Math.abs(lhs - rhs)).toBeLessThan(1e-3 * (1 + Math.abs(lhs)))
    }
  })
})
