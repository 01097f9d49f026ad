import { readFile } from 'node:fs/promises'
import sharp from 'sharp'
import type { Metadata, OutputInfo } from 'sharp'
import type { Datum } from '../proto/caffe.js'
import { DataShapeError, ImageDecodeError } from './errors.js'

/**
 * How to decode, as OpenCV's imread flags: 'color' (IMREAD_COLOR: 3 channels, gray replicated,
 * alpha dropped), 'gray' (IMREAD_GRAYSCALE: 1 channel) or 'native' (IMREAD_UNCHANGED, which
 * Caffe uses for encoded Datums: gray stays 1 channel, alpha gives 4).
 */
export type ColorMode = 'color' | 'gray' | 'native'

/** A decoded 8-bit image in Caffe's Datum layout: channel-major (CHW), colour channels BGR(A). */
export interface ChwImage {
  channels: number
  height: number
  width: number
  data: Uint8Array
}

/** Pixels a transformer can consume: a raw Datum carries either bytes or float_data. */
export interface ChwArray {
  channels: number
  height: number
  width: number
  data: Uint8Array | Float32Array
}

export interface DecodeOptions {
  mode?: ColorMode
  /** Resize to new_height × new_width (cv::resize, INTER_LINEAR) when both are > 0, as Caffe does. */
  height?: number
  width?: number
}

/**
 * Decodes PNG/JPEG/WebP/GIF/TIFF bytes like OpenCV's imread: no EXIF rotation and no ICC
 * conversion (OpenCV applies neither), 16-bit samples reduced to their high byte. Throws
 * ImageDecodeError naming `source` when the bytes are not an image.
 */
export async function decodeImage (bytes: Uint8Array, source: string, options: DecodeOptions = {}): Promise<ChwImage> {
  const mode = options.mode ?? 'color'
  let meta: Metadata
  let raw: { data: Buffer, info: OutputInfo }
  try {
    const img = sharp(bytes, { ignoreIcc: true, failOn: 'error' })
    meta = await img.metadata()
    raw = await img.raw().toBuffer({ resolveWithObject: true })
  } catch (err) {
    throw new ImageDecodeError(source, bytes.length === 0 ? 'the file is empty' : lowerFirst((err as Error).message), { cause: err })
  }
  const { width, height, channels: inC } = raw.info
  const px = to8bit(raw.data, width * height * inC)
  if (px === undefined) throw new ImageDecodeError(source, `unsupported sample format (${raw.data.length} bytes for ${width}x${height}x${inC})`)
  const srcGray = meta.channels === 1 || meta.channels === 2
  const hasAlpha = meta.hasAlpha === true && (inC === 2 || inC === 4)
  const outC = mode === 'gray' ? 1 : mode === 'color' ? 3 : hasAlpha ? 4 : srcGray ? 1 : 3
  const n = width * height
  const out = new Uint8Array(outC * n)
  if (outC === 1) {
    // Caffe reaches grayscale through libpng's rgb_to_gray for PNG and cvtColor otherwise.
    const png = meta.format === 'png'
    const [rc, gc, bc, shift] = png ? [9797, 19234, 3737, 15] : [4899, 9617, 1868, 14]
    const half = 1 << (shift - 1)
    for (let i = 0, p = 0; i < n; i++, p += inC) {
      if (inC < 3) {
        out[i] = px[p] as number
      } else {
        out[i] = ((px[p] as number) * rc + (px[p + 1] as number) * gc + (px[p + 2] as number) * bc + half) >> shift
      }
    }
  } else {
    const gray = inC < 3
    for (let i = 0, p = 0; i < n; i++, p += inC) {
      const r = px[p] as number
      out[i] = gray ? r : px[p + 2] as number
      out[n + i] = gray ? r : px[p + 1] as number
      out[2 * n + i] = r
      if (outC === 4) out[3 * n + i] = px[p + inC - 1] as number
    }
  }
  const image: ChwImage = { channels: outC, height, width, data: out }
  const h = options.height ?? 0
  const w = options.width ?? 0
  return h > 0 && w > 0 ? resizeLinear(image, h, w) : image
}

/** Reads and decodes an image file; a missing or unreadable file is an ImageDecodeError naming it. */
export async function readImage (file: string, options: DecodeOptions = {}): Promise<ChwImage> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ImageDecodeError(file, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message, { cause: err })
  }
  return decodeImage(bytes, file, options)
}

const COEF_BITS = 11
const COEF_SCALE = 1 << COEF_BITS

/**
 * cv::resize with INTER_LINEAR on 8-bit data: half-pixel centres, edge replication and
 * OpenCV's 11-bit fixed-point weights, following its reference (scalar) path. SIMD builds of
 * OpenCV round the vertical pass slightly differently, so outputs can differ from those by 1.
 */
export function resizeLinear (img: ChwImage, height: number, width: number): ChwImage {
  const { channels, height: H, width: W, data } = img
  if (H === height && W === width) return img
  const xofs = new Int32Array(width)
  const xofs1 = new Int32Array(width)
  const ax0 = new Int32Array(width)
  const ax1 = new Int32Array(width)
  const scaleX = W / width
  for (let dx = 0; dx < width; dx++) {
    let fx = Math.fround((dx + 0.5) * scaleX - 0.5)
    let sx = Math.floor(fx)
    fx = Math.fround(fx - sx)
    if (sx < 0) { fx = 0; sx = 0 }
    if (sx >= W - 1) { fx = 0; sx = W - 1 }
    xofs[dx] = sx
    xofs1[dx] = Math.min(sx + 1, W - 1)
    ax0[dx] = roundEven(Math.fround(1 - fx) * COEF_SCALE)
    ax1[dx] = roundEven(fx * COEF_SCALE)
  }
  const yofs = new Int32Array(height)
  const yofs1 = new Int32Array(height)
  const by0 = new Int32Array(height)
  const by1 = new Int32Array(height)
  const scaleY = H / height
  for (let dy = 0; dy < height; dy++) {
    let fy = Math.fround((dy + 0.5) * scaleY - 0.5)
    const sy = Math.floor(fy)
    fy = Math.fround(fy - sy)
    // Rows are clamped but the weights kept, exactly as OpenCV does at the top and bottom edge.
    yofs[dy] = Math.min(Math.max(sy, 0), H - 1)
    yofs1[dy] = Math.min(Math.max(sy + 1, 0), H - 1)
    by0[dy] = roundEven(Math.fround(1 - fy) * COEF_SCALE)
    by1[dy] = roundEven(fy * COEF_SCALE)
  }
  const out = new Uint8Array(channels * height * width)
  const row0 = new Int32Array(width)
  const row1 = new Int32Array(width)
  const hpass = (plane: number, y: number, into: Int32Array): void => {
    const base = plane + y * W
    for (let dx = 0; dx < width; dx++) {
      into[dx] = (data[base + (xofs[dx] as number)] as number) * (ax0[dx] as number) + (data[base + (xofs1[dx] as number)] as number) * (ax1[dx] as number)
    }
  }
  const round = 1 << (2 * COEF_BITS - 1)
  for (let c = 0; c < channels; c++) {
    const plane = c * H * W
    for (let dy = 0; dy < height; dy++) {
      hpass(plane, yofs[dy] as number, row0)
      hpass(plane, yofs1[dy] as number, row1)
      const b0 = by0[dy] as number
      const b1 = by1[dy] as number
      const o = (c * height + dy) * width
      for (let dx = 0; dx < width; dx++) {
        const v = ((row0[dx] as number) * b0 + (row1[dx] as number) * b1 + round) >> (2 * COEF_BITS)
        out[o + dx] = v < 0 ? 0 : v > 255 ? 255 : v
      }
    }
  }
  return { channels, height, width, data: out }
}

/** File types Caffe's --encode_type accepts that we can also write. */
export type EncodeType = 'png' | 'jpg'

/**
 * Encodes a CHW image as cv::imencode would for convert_imageset --encoded: 1-channel images
 * stay grayscale, JPEG at OpenCV's default quality 95.
 */
export async function encodeImage (img: ChwImage, type: EncodeType): Promise<Uint8Array> {
  const { channels, height, width, data } = img
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new DataShapeError(`cannot encode a ${channels}-channel image`)
  const n = height * width
  const hwc = Buffer.alloc(n * channels)
  for (let i = 0; i < n; i++) {
    if (channels === 1) {
      hwc[i] = data[i] as number
      continue
    }
    const p = i * channels
    hwc[p] = data[2 * n + i] as number
    hwc[p + 1] = data[n + i] as number
    hwc[p + 2] = data[i] as number
    if (channels === 4) hwc[p + 3] = data[3 * n + i] as number
  }
  let pipeline = sharp(hwc, { raw: { width, height, channels } })
  if (channels === 1) pipeline = pipeline.toColourspace('b-w')
  const out = type === 'png' ? pipeline.png({ compressionLevel: 3 }) : pipeline.jpeg({ quality: 95 })
  return new Uint8Array(await out.toBuffer())
}

export interface DatumImageOptions {
  /** 'native' unless TransformationParameter.force_color/force_gray say otherwise. */
  mode?: ColorMode
  /** Names the datum in errors, e.g. its database key. */
  source?: string
}

/**
 * The pixels of a Datum: encoded ones are decoded (Caffe's DecodeDatumToCVMat[Native]), raw ones
 * are checked for a data size matching channels × height × width and returned as views.
 */
export async function datumToImage (datum: Datum, options: DatumImageOptions = {}): Promise<ChwArray> {
  const source = options.source ?? 'datum'
  if (datum.encoded === true) {
    return decodeImage(datum.data ?? new Uint8Array(0), source, { mode: options.mode ?? 'native' })
  }
  return rawDatumPixels(datum, source)
}

/** A raw (not encoded) Datum's pixels without copying; throws DataShapeError when sizes disagree. */
export function rawDatumPixels (datum: Datum, source = 'datum'): ChwArray {
  const channels = datum.channels ?? 0
  const height = datum.height ?? 0
  const width = datum.width ?? 0
  const size = channels * height * width
  const bytes = datum.data
  const data = bytes !== undefined && bytes.length > 0 ? bytes : datum.float_data
  if (size === 0 || data.length !== size) {
    throw new DataShapeError(`${source}: datum is ${channels}x${height}x${width} (${size} values) but holds ${data.length} ${data instanceof Float32Array ? 'float_data values' : 'bytes'}`)
  }
  return { channels, height, width, data }
}

/** Caffe's CVMatToDatum: a raw Datum holding the image bytes and the label. */
export function imageToDatum (img: ChwImage, label: number): Datum {
  return { channels: img.channels, height: img.height, width: img.width, data: img.data, label, float_data: new Float32Array(0) }
}

function to8bit (buf: Buffer, count: number): Uint8Array | undefined {
  if (buf.length === count) return buf
  // 16-bit input (PNG/TIFF): OpenCV without IMREAD_ANYDEPTH keeps the high byte.
  if (buf.length === 2 * count) {
    const out = new Uint8Array(count)
    for (let i = 0; i < count; i++) out[i] = buf.readUInt16LE(2 * i) >> 8
    return out
  }
  return undefined
}

function roundEven (v: number): number {
  const f = Math.floor(v)
  const d = v - f
  if (d > 0.5) return f + 1
  if (d < 0.5) return f
  return f % 2 === 0 ? f : f + 1
}

function lowerFirst (s: string): string {
  return s.length === 0 ? s : s[0]?.toLowerCase() + s.slice(1)
}
