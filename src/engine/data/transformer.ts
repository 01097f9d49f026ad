import { readFile } from 'node:fs/promises'
import { blobProtoData, blobProtoShape, decodeBlobProto } from '../proto/binary.js'
import type { TransformationParameter } from '../proto/caffe.js'
import type { ChwArray, ColorMode } from './image.js'
import { DataShapeError } from './errors.js'

export type Phase = 'TRAIN' | 'TEST'

/** A mean image (from a .binaryproto mean file), CHW like the images it is subtracted from. */
export interface MeanImage {
  channels: number
  height: number
  width: number
  data: Float32Array
}

export interface TransformerOptions {
  phase: Phase
  /** Uniform in [0, 1); the only source of randomness, so a seeded generator reproduces a run. */
  random: () => number
  /** Mean image for `mean_file`; createTransformer loads it from disk. */
  mean?: MeanImage
  /** Receives Caffe's informational lines ("Loading mean file from: …"). */
  info?: (message: string) => void
}

/**
 * Loads a mean .binaryproto (compute_image_mean's output). The blob must be 1×C×H×W (or C×H×W);
 * a malformed file throws ProtoDecodeError, a wrong shape DataShapeError.
 */
export async function loadMeanFile (file: string): Promise<MeanImage> {
  const blob = decodeBlobProto(await readFile(file))
  const shape = blobProtoShape(blob)
  const dims = shape.length === 4 && shape[0] === 1 ? shape.slice(1) : shape
  if (dims.length !== 3) throw new DataShapeError(`mean file ${file} has shape [${shape.join(', ')}]; expected 1 x channels x height x width`)
  const [channels, height, width] = dims as [number, number, number]
  return { channels, height, width, data: blobProtoData(blob) }
}

/**
 * How an encoded Datum is decoded for this transform, as Caffe's DataTransformer chooses:
 * force_color → colour, force_gray → gray, otherwise as stored (DecodeDatumToCVMatNative).
 */
export function decodeModeOf (param: TransformationParameter | undefined): ColorMode {
  if (param?.force_color === true) return 'color'
  if (param?.force_gray === true) return 'gray'
  return 'native'
}

/** Builds a DataTransformer, reading `mean_file` when the parameter names one. */
export async function createTransformer (param: TransformationParameter | undefined, options: TransformerOptions): Promise<DataTransformer> {
  const p = param ?? { mean_value: [] }
  let mean = options.mean
  if (p.mean_file !== undefined && mean === undefined) {
    options.info?.(`Loading mean file from: ${p.mean_file}`)
    mean = await loadMeanFile(p.mean_file)
  }
  return new DataTransformer(p, { ...options, mean })
}

/**
 * Caffe's DataTransformer::Transform for one image into a float batch slot:
 * out = (pixel − mean) × scale, with the mean from a mean file (per pixel) or mean_value (per
 * channel, one value repeated for all channels), a crop_size window (random offsets in TRAIN,
 * centred in TEST) and a horizontal mirror. Random draws follow Caffe's order — mirror, then
 * crop row, then crop column — and, as in Caffe, `mirror` also flips at random in TEST.
 * Shape mismatches throw DataShapeError with Caffe's wording.
 */
export class DataTransformer {
  readonly phase: Phase
  readonly scale: number
  readonly mirror: boolean
  readonly cropSize: number
  private readonly mean: MeanImage | undefined
  private readonly meanValues: number[]
  private readonly random: () => number

  constructor (param: TransformationParameter, options: TransformerOptions) {
    this.phase = options.phase
    this.random = options.random
    this.scale = Math.fround(param.scale ?? 1)
    this.mirror = param.mirror ?? false
    this.cropSize = param.crop_size ?? 0
    this.meanValues = [...param.mean_value]
    this.mean = options.mean
    if (param.mean_file !== undefined && this.meanValues.length > 0) {
      throw new DataShapeError('Cannot specify mean_file and mean_value at the same time')
    }
    if (param.mean_file !== undefined && this.mean === undefined) {
      throw new DataShapeError(`mean file ${param.mean_file} was not loaded (use createTransformer)`)
    }
    if (param.force_color === true && param.force_gray === true) throw new DataShapeError('cannot set both force_color and force_gray')
  }

  /** Caffe's InferBlobShape for one image: [1, channels, crop or height, crop or width]. */
  inferShape (img: { channels: number, height: number, width: number }): [number, number, number, number] {
    const crop = this.cropSize
    if (img.height < crop || img.width < crop) {
      throw new DataShapeError(`crop_size ${crop} is larger than the ${img.height}x${img.width} image`)
    }
    return [1, img.channels, crop > 0 ? crop : img.height, crop > 0 ? crop : img.width]
  }

  /** Caffe's Rand(n): a uniform integer in [0, n). */
  private rand (n: number): number {
    return Math.min(n - 1, Math.floor(this.random() * n))
  }

  /**
   * Writes the transformed image to out[offset …] as CHW floats (channels × crop × crop, or the
   * full image without cropping).
   */
  transform (img: ChwArray, out: Float32Array, offset: number): void {
    const { channels: C, height: H, width: W, data } = img
    const crop = this.cropSize
    const scale = this.scale
    if (C <= 0) throw new DataShapeError('Check failed: datum_channels > 0')
    if (H < crop || W < crop) throw new DataShapeError(`crop_size ${crop} is larger than the ${H}x${W} image`)
    if (data.length < C * H * W) throw new DataShapeError(`image data holds ${data.length} values; ${C}x${H}x${W} needs ${C * H * W}`)
    const doMirror = this.mirror && this.rand(2) === 1
    const mean = this.mean
    if (mean !== undefined && (mean.channels !== C || mean.height !== H || mean.width !== W)) {
      throw new DataShapeError(`mean file is ${mean.channels}x${mean.height}x${mean.width} but the image is ${C}x${H}x${W}`)
    }
    let mv: number[] | undefined
    if (mean === undefined && this.meanValues.length > 0) {
      if (this.meanValues.length !== 1 && this.meanValues.length !== C) {
        throw new DataShapeError(`Specify either 1 mean_value or as many as channels: ${C}`)
      }
      mv = this.meanValues.length === 1 ? new Array<number>(C).fill(this.meanValues[0] as number) : this.meanValues
    }
    let h = H
    let w = W
    let hOff = 0
    let wOff = 0
    if (crop > 0) {
      h = crop
      w = crop
      if (this.phase === 'TRAIN') {
        hOff = this.rand(H - crop + 1)
        wOff = this.rand(W - crop + 1)
      } else {
        hOff = (H - crop) >> 1
        wOff = (W - crop) >> 1
      }
    }
    if (out.length < offset + C * h * w) throw new DataShapeError(`batch slot at ${offset} too small for ${C}x${h}x${w}`)
    // One specialised loop per case: this runs for every image of every batch.
    for (let c = 0; c < C; c++) {
      const m = mv === undefined ? 0 : Math.fround(mv[c] as number)
      for (let y = 0; y < h; y++) {
        const src = (c * H + hOff + y) * W + wOff
        const dst = offset + (c * h + y) * w
        if (mean !== undefined) {
          const md = mean.data
          if (doMirror) for (let x = 0; x < w; x++) out[dst + w - 1 - x] = Math.fround((data[src + x] as number) - (md[src + x] as number)) * scale
          else for (let x = 0; x < w; x++) out[dst + x] = Math.fround((data[src + x] as number) - (md[src + x] as number)) * scale
        } else if (mv !== undefined) {
          if (doMirror) for (let x = 0; x < w; x++) out[dst + w - 1 - x] = Math.fround((data[src + x] as number) - m) * scale
          else for (let x = 0; x < w; x++) out[dst + x] = Math.fround((data[src + x] as number) - m) * scale
        } else if (scale === 1) {
          if (doMirror) for (let x = 0; x < w; x++) out[dst + w - 1 - x] = data[src + x] as number
          else for (let x = 0; x < w; x++) out[dst + x] = data[src + x] as number
        } else {
          if (doMirror) for (let x = 0; x < w; x++) out[dst + w - 1 - x] = (data[src + x] as number) * scale
          else for (let x = 0; x < w; x++) out[dst + x] = (data[src + x] as number) * scale
        }
      }
    }
  }
}
