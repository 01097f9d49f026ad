import { writeFile } from 'node:fs/promises'
import { parseBackend } from '../data/backend.js'
import type { Backend } from '../data/backend.js'
import { datumToImage } from '../data/image.js'
import type { ChwArray } from '../data/image.js'
import { encodeBlobProto } from '../proto/binary.js'
import { createMessage } from '../proto/caffe.js'
import type { BlobProto, Datum } from '../proto/caffe.js'
import { formatCxx } from '../solver/format-number.js'
import { str } from '../cli/flags.js'
import type { FlagSpecs } from '../cli/flags.js'
import { ToolCheckError, openDbForRead, runTool } from './tool-runtime.js'
import type { ToolIo, ToolUsage } from './tool-runtime.js'

const FLAGS: FlagSpecs = {
  backend: { type: 'string', default: 'lmdb', help: 'The backend {leveldb, lmdb} containing the images' }
}

const USAGE: ToolUsage = {
  message: 'compute_image_mean: Compute the mean_image of a set of images given by a leveldb/lmdb\n' +
    'Usage:\n' +
    '    compute_image_mean [FLAGS] INPUT_DB [OUTPUT_FILE]',
  file: 'tools/compute_image_mean.cpp',
  flags: FLAGS
}

/**
 * Caffe's compute_image_mean: the per-pixel mean of every Datum in the database (encoded ones
 * decoded as stored, DecodeDatumNative), summed in float32 as Caffe's BlobProto does, as a
 * 1×C×H×W BlobProto; written to `outputFile` when given. Logs the per-channel means.
 */
export async function computeImageMean (dbPath: string, backend: Backend, outputFile: string | undefined, io: ToolIo): Promise<BlobProto> {
  const src = await openDbForRead(dbPath, backend, io)
  try {
    const total = await src.count()
    const pixels = async (d: Datum): Promise<ChwArray> => datumToImage(d, { mode: 'native', source: `datum ${Buffer.from(src.peekKey()).toString('latin1')}` })
    // Like Caffe, the first record fixes the shape every other record must match.
    const first = await src.peek()
    if (first.encoded === true) io.log.info('compute_image_mean.cpp:57', 'Decoding Datum')
    const shape = await pixels(first)
    const dataSize = shape.channels * shape.height * shape.width
    const sum = new Float32Array(dataSize)
    io.log.info('compute_image_mean.cpp:70', 'Starting iteration')
    let count = 0
    for (let i = 0; i < total; i++) {
      const key = Buffer.from(src.peekKey()).toString('latin1')
      const img = await datumToImage(await src.next(), { mode: 'native', source: `datum ${key}` })
      const size = img.data.length
      if (size !== dataSize) {
        throw new ToolCheckError('compute_image_mean.cpp:79', `Check failed: size_in_datum == data_size (${size} vs. ${dataSize}) Incorrect data field size ${size}`)
      }
      // Float32Array arithmetic rounds every partial sum to float, exactly like Caffe's float blob.
      const d = img.data
      for (let j = 0; j < dataSize; j++) sum[j] = (sum[j] as number) + (d[j] as number)
      if (++count % 10000 === 0) io.log.info('compute_image_mean.cpp:95', `Processed ${count} files.`)
    }
    if (count % 10000 !== 0) io.log.info('compute_image_mean.cpp:101', `Processed ${count} files.`)
    for (let j = 0; j < dataSize; j++) sum[j] = (sum[j] as number) / count
    const blob = createMessage('BlobProto', { num: 1, channels: shape.channels, height: shape.height, width: shape.width, data: sum })
    if (outputFile !== undefined) {
      io.log.info('compute_image_mean.cpp:108', `Write to ${outputFile}`)
      await writeFile(outputFile, encodeBlobProto(blob))
    }
    const dim = shape.height * shape.width
    io.log.info('compute_image_mean.cpp:114', `Number of channels: ${shape.channels}`)
    for (let c = 0; c < shape.channels; c++) {
      let m = 0
      // Caffe sums into a std::vector<float>; rounding each step keeps the printed digits identical.
      for (let j = 0; j < dim; j++) m = Math.fround(m + (sum[c * dim + j] as number))
      io.log.info('compute_image_mean.cpp:119', `mean_value channel [${c}]: ${formatCxx(Math.fround(m / dim))}`)
    }
    return blob
  } finally {
    await src.close()
  }
}

/** `compute_image_mean [--backend=lmdb|leveldb] INPUT_DB [OUTPUT_FILE]` */
export async function runComputeImageMean (argv: readonly string[], io: ToolIo): Promise<number> {
  return runTool(argv, io, USAGE, { min: 1, max: 2 }, 'compute_image_mean.cpp:0', async ({ values, positional }) => {
    await computeImageMean(positional[0] as string, parseBackend(str(values, 'backend')), positional[1], io)
  })
}
