import { allocFloats, Blob } from '../blob.js'
import { convOutputSize, type ConvGeometry } from '../kernels/im2col.js'
import type { LayerContext } from '../layer.js'
import type { ConvolutionParameter, LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/**
 * Caffe's Convolution layer (2-D, groups, pad, stride, dilation) with weights
 * num_output × (channels/group) × kH × kW and an optional bias of num_output. Two ways to
 * the same numbers: im2col of a chunk of the batch and one large GEMM per group (needed by
 * backward, and the portable path's way to use its threads), or, in the TEST phase on kernels
 * whose small products are fast, a row unfolding per image and one small GEMM per kernel row
 * writing straight into the top (see unfoldRows): for LeNet a quarter to a third of the
 * copying, and no reordering.
 */
export class ConvolutionLayer extends BaseLayer {
  /**
   * Cap on one layer's column buffer, in floats (32 MiB). Images are unfolded side by side
   * into one buffer so that a single large GEMM covers a chunk of the batch (OpenBLAS only
   * uses both cores on large products); larger inputs are processed in several chunks.
   * Tests lower it to exercise chunking.
   */
  static columnLimit = 1 << 23
  /** Which forward to use: 'auto' as described above; tests force either on any kernels. */
  static forwardMethod: 'auto' | 'batched' | 'rows' = 'auto'

  private geom: ConvGeometry | undefined
  private numOutput = 0
  private group = 1
  private biasTerm = true
  private kernelH = 0
  private kernelW = 0
  private padH = 0
  private padW = 0
  private strideH = 1
  private strideW = 1
  private dilationH = 1
  private dilationW = 1
  private channels = 0
  /** Images unfolded per GEMM; 1 = the per-image path that needs no gather/scatter. */
  private chunk = 1
  private col: Float32Array = allocFloats(0)
  private out: Float32Array = allocFloats(0)
  /** Floats col and out need for the batched method (allocated on first use). */
  private colSize = 0
  private outSize = 0
  /** Forward by row unfolding (per image) rather than by im2col of the batch. */
  private byRows = false
  /** The weights as kH blocks of num_output × (channels/group·kW): one GEMM operand per kernel row. */
  private rowWeights: Float32Array = allocFloats(0)
  private onesVector: Float32Array = allocFloats(0)
  /** The column buffer holds the whole batch's im2col from the last forward (reused by backward). */
  private colHoldsBatch = false
  private batch = -1

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Convolution', { bottoms: [1, 1], tops: [1, 1] })
  }

  protected override layerSetUp (bottom: Blob[]): void {
    const p = this.param.convolution_param ?? {} as Partial<ConvolutionParameter>
    const x = at(bottom, 0)
    if ((p.axis ?? 1) !== 1) this.fail(`axis ${p.axis ?? 1} is not supported (only 1)`)
    if (p.force_nd_im2col === true) this.fail('force_nd_im2col is not supported')
    if (x.shape.length !== 4) this.fail(`needs a 4-axis bottom (N×C×H×W), got ${x.shapeString()}`)
    ;[this.kernelH, this.kernelW] = this.pair(p, 'kernel', p.kernel_size ?? [], p.kernel_h, p.kernel_w, undefined)
    ;[this.padH, this.padW] = this.pair(p, 'pad', p.pad ?? [], p.pad_h, p.pad_w, 0)
    ;[this.strideH, this.strideW] = this.pair(p, 'stride', p.stride ?? [], p.stride_h, p.stride_w, 1)
    const dil = p.dilation ?? []
    if (dil.length > 2) this.fail(`dilation has ${dil.length} values; 2-D convolution takes 1 or 2`)
    this.dilationH = dil[0] ?? 1
    this.dilationW = dil[1] ?? dil[0] ?? 1
    if (this.kernelH <= 0 || this.kernelW <= 0) this.fail('kernel dimensions must be greater than zero')
    if (this.strideH <= 0 || this.strideW <= 0) this.fail('stride dimensions must be greater than zero')
    if (this.dilationH <= 0 || this.dilationW <= 0) this.fail('dilation must be greater than zero')
    if (p.num_output === undefined || p.num_output <= 0) this.fail('num_output must be set and greater than zero')
    this.numOutput = p.num_output
    this.group = p.group ?? 1
    this.biasTerm = p.bias_term ?? true
    this.channels = x.dim(1)
    if (this.group <= 0 || this.channels % this.group !== 0) this.fail(`channels (${this.channels}) must be divisible by group (${this.group})`)
    if (this.numOutput % this.group !== 0) this.fail(`num_output (${this.numOutput}) must be divisible by group (${this.group})`)
    const weights = new Blob([this.numOutput, this.channels / this.group, this.kernelH, this.kernelW])
    this.fill(weights, p.weight_filler, 'weight_filler')
    this.blobs.push(weights)
    if (this.biasTerm) {
      const bias = new Blob([this.numOutput])
      this.fill(bias, p.bias_filler, 'bias_filler')
      this.blobs.push(bias)
    }
  }

  /** Caffe's rules for kernel/pad/stride: either _h and _w, or 1 value for both, or 2 values (h, w). */
  private pair (_p: Partial<ConvolutionParameter>, field: string, values: readonly number[], h: number | undefined, w: number | undefined,
    dflt: number | undefined): [number, number] {
    if (h !== undefined || w !== undefined) {
      if (h === undefined || w === undefined) this.fail(`${field}_h and ${field}_w must be given together`)
      if (values.length > 0) this.fail(`give either ${field}_size or ${field}_h/${field}_w, not both`)
      return [h, w]
    }
    if (values.length > 2) this.fail(`${field} has ${values.length} values; 2-D convolution takes 1 or 2`)
    const a = values[0] ?? dflt
    const b = values[1] ?? a
    if (a === undefined || b === undefined) this.fail(`${field}_size (or ${field}_h and ${field}_w) is required`)
    return [a, b]
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    if (x.shape.length !== 4) this.fail(`needs a 4-axis bottom (N×C×H×W), got ${x.shapeString()}`)
    if (x.dim(1) !== this.channels) this.fail(`bottom has ${x.dim(1)} channels but the weights expect ${this.channels}`)
    const height = x.dim(2)
    const width = x.dim(3)
    const outH = convOutputSize(height, this.kernelH, this.padH, this.strideH, this.dilationH)
    const outW = convOutputSize(width, this.kernelW, this.padW, this.strideW, this.dilationW)
    if (outH <= 0 || outW <= 0) this.fail(`kernel ${this.kernelH}x${this.kernelW} does not fit the ${height}x${width} input (pad ${this.padH}x${this.padW})`)
    const y = at(top, 0)
    // The net reshapes before every forward; nothing to redo when the input is unchanged.
    if (this.geom !== undefined && this.geom.height === height && this.geom.width === width && this.batch === x.dim(0) &&
      y.shape.length === 4 && y.dim(0) === this.batch && y.dim(1) === this.numOutput && y.dim(2) === outH && y.dim(3) === outW) {
      this.colHoldsBatch = false
      return
    }
    this.batch = x.dim(0)
    this.geom = {
      channels: this.channels,
      height,
      width,
      kernelH: this.kernelH,
      kernelW: this.kernelW,
      padH: this.padH,
      padW: this.padW,
      strideH: this.strideH,
      strideW: this.strideW,
      dilationH: this.dilationH,
      dilationW: this.dilationW,
      outH,
      outW
    }
    y.reshape([x.dim(0), this.numOutput, outH, outW])
    const spatial = outH * outW
    const kRows = this.channels * this.kernelH * this.kernelW
    const batch = x.dim(0)
    this.chunk = this.is1x1() ? 1 : Math.max(1, Math.min(batch, Math.floor(ConvolutionLayer.columnLimit / Math.max(1, kRows * spatial))))
    this.colSize = this.is1x1() ? 0 : kRows * spatial * this.chunk
    this.outSize = this.chunk > 1 ? this.numOutput * spatial * this.chunk : 0
    const method = ConvolutionLayer.forwardMethod
    // Row unfolding needs stride 1 in height (each kernel row's window is then contiguous);
    // backward needs the whole batch's im2col anyway, so training keeps the batched method.
    this.byRows = this.strideH === 1 && !this.is1x1() &&
      (method === 'rows' || (method === 'auto' && this.ctx.phase === 'TEST' && this.ctx.kernels.smallProductsFast))
    if (!this.byRows) this.batchBuffers()
    this.colHoldsBatch = false
  }

  /** The batched method's buffers, grown to the current shape. */
  private batchBuffers (): void {
    this.col = grow(this.col, this.colSize)
    this.out = grow(this.out, this.outSize)
  }

  /** A 1×1 kernel with stride 1 and no pad: the image already is its own column matrix. */
  private is1x1 (): boolean {
    return this.kernelH === 1 && this.kernelW === 1 && this.padH === 0 && this.padW === 0 && this.strideH === 1 && this.strideW === 1
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    if (this.byRows) {
      this.forwardByRows(bottom, top)
      return
    }
    const g = this.geometry()
    const xb = at(bottom, 0)
    const x = xb.data
    const y = at(top, 0).data
    const w = at(this.blobs, 0).data
    const bias = this.biasTerm ? at(this.blobs, 1).data : undefined
    const k = this.ctx.kernels
    const batch = xb.dim(0)
    const N = g.outH * g.outW
    const M = this.numOutput
    const Mg = M / this.group
    const Kg = (this.channels / this.group) * g.kernelH * g.kernelW
    const inDim = this.channels * g.height * g.width
    const one = this.is1x1()
    for (let b0 = 0; b0 < batch; b0 += this.chunk) {
      const bc = Math.min(this.chunk, batch - b0)
      const ld = bc * N
      let src: Float32Array = this.col
      let srcOff = 0
      if (one) {
        src = x
        srcOff = b0 * inDim
      } else {
        k.run('im2col', bc, bc * Kg * this.group * N, g, x, inDim, this.col, N, ld, b0)
      }
      // The bias is written first and the GEMM adds to it (beta = 1): cheaper than a pass after.
      const beta = bias === undefined ? 0 : 1
      if (bc === 1) {
        // One image: the GEMM writes straight into the top, which has the same M×N layout.
        const yOff = b0 * M * N
        if (bias !== undefined) for (let m = 0; m < M; m++) y.fill(bias[m]!, yOff + m * N, yOff + (m + 1) * N)
        for (let gi = 0; gi < this.group; gi++) {
          k.gemm(false, false, Mg, N, Kg, 1, w, gi * Mg * Kg, src, srcOff + gi * Kg * ld, beta, y, yOff + gi * Mg * N)
        }
        continue
      }
      if (bias !== undefined) for (let m = 0; m < M; m++) this.out.fill(bias[m]!, m * ld, (m + 1) * ld)
      for (let gi = 0; gi < this.group; gi++) {
        k.gemm(false, false, Mg, ld, Kg, 1, w, gi * Mg * Kg, src, srcOff + gi * Kg * ld, beta, this.out, gi * Mg * ld)
      }
      k.run('scatter', M, M * ld, this.out, y, b0, bc, M, N, undefined)
    }
    this.colHoldsBatch = !one && this.chunk >= batch
  }

  /** The row-unfolding forward: per image, unfold, then one GEMM per kernel row and group (see tasks.ts convRows). */
  private forwardByRows (bottom: Blob[], top: Blob[]): void {
    const g = this.geometry()
    const xb = at(bottom, 0)
    const k = this.ctx.kernels
    const M = this.numOutput
    const bias = this.biasTerm ? at(this.blobs, 1).data : undefined
    // With one group the bias rides in the first GEMM (a ones row meets a bias column) instead
    // of a pass that writes it into the top first (measured 0.33 ms of LeNet's 4.8 ms forward).
    const onesRow = bias !== undefined && this.group === 1
    this.rearrangeWeights(onesRow ? bias : undefined)
    const batch = xb.dim(0)
    const work = batch * M * g.outH * g.outW * (this.channels / this.group) * g.kernelH * g.kernelW
    k.run('convRows', batch, work, g, xb.data, this.channels * g.height * g.width, at(top, 0).data,
      M, this.group, this.rowWeights, bias, onesRow)
    this.colHoldsBatch = false
  }

  /**
   * rowWeights: kH blocks of num_output rows of lda floats, row m of block kh holding
   * w[m][c][kh][kw] at c·kW + kw (c within m's group), and with `bias` (lda one longer) the
   * bias in the last column of block 0 and zeros in the others'.
   */
  private rearrangeWeights (bias: Float32Array | undefined): void {
    const w = at(this.blobs, 0).data
    const { kernelH, kernelW, numOutput } = this
    const cg = this.channels / this.group
    const Kr = cg * kernelW
    const lda = bias === undefined ? Kr : Kr + 1
    this.rowWeights = grow(this.rowWeights, kernelH * numOutput * lda)
    const wr = this.rowWeights
    for (let m = 0, s = 0; m < numOutput; m++) {
      for (let c = 0; c < cg; c++) {
        for (let kh = 0; kh < kernelH; kh++) {
          const d = (kh * numOutput + m) * lda + c * kernelW
          for (let kw = 0; kw < kernelW; kw++) wr[d + kw] = w[s++]!
        }
      }
      if (bias !== undefined) for (let kh = 0; kh < kernelH; kh++) wr[(kh * numOutput + m) * lda + Kr] = kh === 0 ? bias[m]! : 0
    }
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    this.batchBuffers()
    const g = this.geometry()
    const xb = at(bottom, 0)
    const x = xb.data
    const dy = at(top, 0).diff
    const weights = at(this.blobs, 0)
    const w = weights.data
    const k = this.ctx.kernels
    const batch = xb.dim(0)
    const N = g.outH * g.outW
    const M = this.numOutput
    const Mg = M / this.group
    const Kg = (this.channels / this.group) * g.kernelH * g.kernelW
    const inDim = this.channels * g.height * g.width
    const one = this.is1x1()
    const wantW = this.paramPropagateDown[0] === true
    const wantX = propagateDown[0] === true
    const db = this.biasTerm && this.paramPropagateDown[1] === true ? at(this.blobs, 1).diff : undefined
    if (!wantW && !wantX && db === undefined) return
    const dw = weights.diff
    const dx = wantX ? xb.diff : undefined
    for (let b0 = 0; b0 < batch; b0 += this.chunk) {
      const bc = Math.min(this.chunk, batch - b0)
      const ld = bc * N
      let dOut = dy
      let dOutOff = b0 * M * N
      if (bc > 1) {
        k.run('gather', M, M * ld, dy, this.out, b0, bc, M, N)
        dOut = this.out
        dOutOff = 0
      }
      // Bias gradient: row sums of the chunk's M × bc·N top gradient, as a GEMV with ones.
      if (db !== undefined) k.gemv(false, M, ld, 1, dOut, dOutOff, this.ones(ld), 0, 1, db, 0)
      if (wantW) {
        let src: Float32Array = this.col
        let srcOff = 0
        if (one) {
          src = x
          srcOff = b0 * inDim
        } else if (!this.colHoldsBatch) {
          k.run('im2col', bc, bc * Kg * this.group * N, g, x, inDim, this.col, N, ld, b0)
        }
        for (let gi = 0; gi < this.group; gi++) {
          k.gemm(false, true, Mg, Kg, ld, 1, dOut, dOutOff + gi * Mg * ld, src, srcOff + gi * Kg * ld, 1, dw, gi * Mg * Kg)
        }
      }
      if (dx !== undefined) {
        if (one) {
          for (let gi = 0; gi < this.group; gi++) {
            k.gemm(true, false, Kg, ld, Mg, 1, w, gi * Mg * Kg, dOut, dOutOff + gi * Mg * ld, 0, dx, b0 * inDim + gi * Kg * ld)
          }
          continue
        }
        // The columns are no longer needed once the weight gradient has been taken, so their
        // gradient overwrites them.
        for (let gi = 0; gi < this.group; gi++) {
          k.gemm(true, false, Kg, ld, Mg, 1, w, gi * Mg * Kg, dOut, dOutOff + gi * Mg * ld, 0, this.col, gi * Kg * ld)
        }
        this.colHoldsBatch = false
        k.run('col2im', bc, bc * Kg * this.group * N, g, this.col, N, ld, dx, inDim, b0)
      }
    }
  }

  /** A vector of `n` ones (for bias gradients), grown on demand. */
  private ones (n: number): Float32Array {
    if (this.onesVector.length < n) this.onesVector = allocFloats(n).fill(1)
    return this.onesVector
  }

  private geometry (): ConvGeometry {
    if (this.geom === undefined) this.fail('used before setUp')
    return this.geom
  }
}

function grow (a: Float32Array, n: number): Float32Array {
  return a.length >= n ? a : allocFloats(n)
}
