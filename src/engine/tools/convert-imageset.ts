import { readFile } from 'node:fs/promises'
import { parseBackend } from '../data/backend.js'
import type { Backend } from '../data/backend.js'
import { ImageDecodeError } from '../data/errors.js'
import { decodeImage, encodeImage, imageToDatum } from '../data/image.js'
import type { ChwImage, EncodeType } from '../data/image.js'
import { joinRoot, readImageList, shuffleInPlace } from '../data/image-list.js'
import type { ImageListEntry } from '../data/image-list.js'
import type { Datum } from '../proto/caffe.js'
import { bool, int, str } from '../cli/flags.js'
import type { FlagSpecs } from '../cli/flags.js'
import { ToolCheckError, formatInt, openNewDb, runTool } from './tool-runtime.js'
import type { ToolIo, ToolUsage } from './tool-runtime.js'

const FLAGS: FlagSpecs = {
  gray: { type: 'bool', default: false, help: 'When this option is on, treat images as grayscale ones' },
  shuffle: { type: 'bool', default: false, help: 'Randomly shuffle the order of images and their labels' },
  backend: { type: 'string', default: 'lmdb', help: 'The backend {lmdb, leveldb} for storing the result' },
  resize_width: { type: 'int32', default: 0, help: 'Width images are resized to' },
  resize_height: { type: 'int32', default: 0, help: 'Height images are resized to' },
  check_size: { type: 'bool', default: false, help: 'When this option is on, check that all the datum have the same size' },
  encoded: { type: 'bool', default: false, help: 'When this option is on, the encoded image will be save in datum' },
  encode_type: { type: 'string', default: '', help: "Optional: What type should we encode the image as ('png','jpg',...)." },
  // Not in Caffe: makes --shuffle reproducible (Caffe seeds its shuffle from the system entropy pool).
  random_seed: { type: 'int32', default: -1, help: 'Seed for --shuffle (not in Caffe); -1 picks one at random' }
}

const USAGE: ToolUsage = {
  message: 'convert_imageset: Convert a set of images to the leveldb/lmdb\n' +
    'format used as input for Caffe.\n' +
    'Usage:\n' +
    '    convert_imageset [FLAGS] ROOTFOLDER/ LISTFILE DB_NAME\n' +
    'The ImageNet dataset for the training demo is at\n' +
    '    http://www.image-net.org/download-images',
  file: 'tools/convert_imageset.cpp',
  flags: FLAGS
}

export interface ConvertImagesetOptions {
  rootFolder: string
  listFile: string
  dbPath: string
  backend: Backend
  gray?: boolean
  shuffle?: boolean
  /** Drives --shuffle; Math.random when absent. */
  random?: () => number
  resizeHeight?: number
  resizeWidth?: number
  checkSize?: boolean
  encoded?: boolean
  encodeType?: string
  /** Images decoded at once (sharp works on libuv's pool). */
  concurrency?: number
}

/**
 * What was read into one record, or why not: `error` is skipped with a log line as Caffe does,
 * `fatal` stops the run when its turn comes (held as a value so that no rejection goes unhandled
 * while earlier records are still being written).
 */
type Converted = { datum: Datum, size: number } | { error: ImageDecodeError } | { fatal: unknown }

/**
 * Caffe's convert_imageset: every listed image becomes a Datum (raw BGR CHW bytes, or the
 * encoded file with --encoded) under the key `%08d_<path>` of its list position. Unreadable
 * images are logged as errors and skipped, as Caffe does; a bad list file or a failed
 * --check_size stops the run. Returns the number of records written.
 */
export async function convertImageset (o: ConvertImagesetOptions, io: ToolIo): Promise<number> {
  const lines = await readImageList(o.listFile)
  if (o.shuffle === true) {
    io.log.info('convert_imageset.cpp:86', 'Shuffling data')
    shuffleInPlace(lines, o.random ?? Math.random)
  }
  io.log.info('convert_imageset.cpp:89', `A total of ${lines.length} images.`)
  const encodeType = (o.encodeType ?? '').toLowerCase()
  if (encodeType !== '' && o.encoded !== true) io.log.info('convert_imageset.cpp:92', 'encode_type specified, assuming encoded=true.')
  const encoded = o.encoded === true || encodeType !== ''
  const height = Math.max(0, o.resizeHeight ?? 0)
  const width = Math.max(0, o.resizeWidth ?? 0)
  const isColor = o.gray !== true

  const convert = async (entry: ImageListEntry): Promise<Converted> => {
    const file = joinRoot(o.rootFolder, entry.path)
    let enc = encodeType
    if (encoded && enc === '') {
      const dot = entry.path.lastIndexOf('.')
      if (dot < 0) io.log.warning('convert_imageset.cpp:117', `Failed to guess the encoding of '${entry.path}'`)
      enc = entry.path.slice(dot + 1).toLowerCase()
    }
    let bytes: Uint8Array
    let image: ChwImage
    try {
      bytes = await readFile(file)
      image = await decodeImage(bytes, file, { mode: isColor ? 'color' : 'gray', height, width })
    } catch (err) {
      if (err instanceof ImageDecodeError) return { error: err }
      const code = (err as NodeJS.ErrnoException).code
      return { error: new ImageDecodeError(file, code === 'ENOENT' ? 'no such file' : (err as Error).message, { cause: err }) }
    }
    const size = image.channels * image.height * image.width
    if (!encoded) return { datum: imageToDatum(image, entry.label), size }
    // Caffe's ReadImageToDatum keeps the original file when nothing about it would change.
    const keep = (image.channels === 3) === isColor && height === 0 && width === 0 && matchExt(entry.path, enc)
    try {
      const data = keep ? bytes : await encodeImage(image, encodeTypeOf(enc))
      return { datum: { data, label: entry.label, encoded: true, float_data: new Float32Array(0) }, size }
    } catch (err) {
      return { fatal: err }
    }
  }

  const sink = await openNewDb(o.dbPath, o.backend, io)
  let count = 0
  try {
    let dataSize = -1
    // Decoding runs ahead of writing by a small window; records still go out in list order.
    const window = Math.max(1, o.concurrency ?? 8)
    const pending: Array<Promise<Converted>> = []
    for (let i = 0; i < Math.min(window, lines.length); i++) pending.push(convert(lines[i] as ImageListEntry))
    for (let lineId = 0; lineId < lines.length; lineId++) {
      const result = await (pending[lineId] as Promise<Converted>)
      const next = lineId + window
      if (next < lines.length) pending.push(convert(lines[next] as ImageListEntry))
      // Let finished work be collected; the array index keeps positions stable.
      pending[lineId] = Promise.resolve(result)
      if ('fatal' in result) throw result.fatal
      if ('error' in result) {
        io.log.error('io.cpp:80', `Could not open or find file ${result.error.source} (${result.error.reason})`)
        continue
      }
      if (o.checkSize === true) {
        if (dataSize < 0) {
          dataSize = result.size
        } else if (result.size !== dataSize) {
          throw new ToolCheckError('convert_imageset.cpp:131', `Check failed: data.size() == data_size (${result.size} vs. ${dataSize}) Incorrect data field size ${result.size}`)
        }
      }
      await sink.put(`${formatInt(lineId)}_${(lines[lineId] as ImageListEntry).path}`, result.datum)
      if (++count % 1000 === 0) io.log.info('convert_imageset.cpp:147', `Processed ${count} files.`)
    }
    await sink.close()
  } catch (err) {
    await sink.abort()
    throw err
  }
  if (count % 1000 !== 0) io.log.info('convert_imageset.cpp:153', `Processed ${count} files.`)
  return count
}

/** Caffe's matchExt: the file's extension equals the encoding, with jpg also matching jpeg. */
function matchExt (path: string, enc: string): boolean {
  const dot = path.lastIndexOf('.')
  const ext = (dot >= 0 ? path.slice(dot + 1) : path).toLowerCase()
  return ext === enc || (enc === 'jpg' && ext === 'jpeg')
}

function encodeTypeOf (enc: string): EncodeType {
  if (enc === 'png') return 'png'
  if (enc === 'jpg' || enc === 'jpeg') return 'jpg'
  throw new ToolCheckError('convert_imageset.cpp:0', `cannot encode images as '${enc}': supported encode types are png and jpg`)
}

/** `convert_imageset [FLAGS] ROOTFOLDER/ LISTFILE DB_NAME` */
export async function runConvertImageset (argv: readonly string[], io: ToolIo): Promise<number> {
  return runTool(argv, io, USAGE, { min: 3, max: Number.POSITIVE_INFINITY }, 'convert_imageset.cpp:0', async ({ values, positional }) => {
    const [rootFolder, listFile, dbPath] = positional as [string, string, string]
    const seed = int(values, 'random_seed')
    await convertImageset({
      rootFolder,
      listFile,
      dbPath,
      backend: parseBackend(str(values, 'backend')),
      gray: bool(values, 'gray'),
      shuffle: bool(values, 'shuffle'),
      random: seed >= 0 ? seededRandom(seed) : Math.random,
      resizeHeight: int(values, 'resize_height'),
      resizeWidth: int(values, 'resize_width'),
      checkSize: bool(values, 'check_size'),
      encoded: bool(values, 'encoded'),
      encodeType: str(values, 'encode_type')
    }, io)
  })
}

/** A small deterministic generator for --random_seed (mulberry32). */
function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
