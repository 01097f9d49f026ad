import { parseBackend } from '../data/backend.js'
import type { Backend } from '../data/backend.js'
import { str } from '../cli/flags.js'
import type { FlagSpecs } from '../cli/flags.js'
import { readIdxFile } from './idx-file.js'
import { ToolCheckError, formatInt, openNewDb, runTool } from './tool-runtime.js'
import type { ToolIo, ToolUsage } from './tool-runtime.js'

const FLAGS: FlagSpecs = {
  backend: { type: 'string', default: 'lmdb', help: 'The backend for storing the result' }
}

const USAGE: ToolUsage = {
  message: 'convert_mnist_data: This script converts the MNIST dataset to\n' +
    'the lmdb/leveldb format used by Caffe to load data.\n' +
    'Usage:\n' +
    '    convert_mnist_data [FLAGS] input_image_file input_label_file output_db_file\n' +
    'The MNIST dataset could be downloaded at\n' +
    '    http://yann.lecun.com/exdb/mnist/\n' +
    'Gzipped files (.gz) are read as they are.',
  file: 'examples/mnist/convert_mnist_data.cpp',
  flags: FLAGS
}

const IMAGE_MAGIC = 2051
const LABEL_MAGIC = 2049

/**
 * Caffe's convert_mnist_data: one raw Datum (1 × rows × cols bytes + label) per image under keys
 * `%08d`, with Caffe's log lines. IDX files may be gzipped. Returns the number of records written.
 */
export async function convertMnistData (imageFile: string, labelFile: string, dbPath: string, backend: Backend, io: ToolIo): Promise<number> {
  const images = await readIdxFile(imageFile, { magic: IMAGE_MAGIC, what: 'image', openWhere: 'convert_mnist_data.cpp:48', where: 'convert_mnist_data.cpp:59' })
  const labels = await readIdxFile(labelFile, { magic: LABEL_MAGIC, what: 'label', openWhere: 'convert_mnist_data.cpp:49', where: 'convert_mnist_data.cpp:62' })
  const [numItems = 0, rows = 0, cols = 0] = images.dims
  const numLabels = labels.dims[0] ?? 0
  if (numItems !== numLabels) throw new ToolCheckError('convert_mnist_data.cpp:67', `Check failed: num_items == num_labels (${numItems} vs. ${numLabels})`)
  // Headers are checked before the database is created, so a bad input leaves nothing behind.
  const sink = await openNewDb(dbPath, backend, io)
  try {
    io.log.info('convert_mnist_data.cpp:88', `A total of ${numItems} items.`)
    io.log.info('convert_mnist_data.cpp:89', `Rows: ${rows} Cols: ${cols}`)
    const size = rows * cols
    for (let i = 0; i < numItems; i++) {
      // Caffe reads the label into a (signed) char.
      const raw = labels.data[i] as number
      await sink.put(formatInt(i), {
        channels: 1,
        height: rows,
        width: cols,
        data: images.data.subarray(i * size, (i + 1) * size),
        label: raw > 127 ? raw - 256 : raw,
        float_data: new Float32Array(0)
      })
    }
    await sink.close()
  } catch (err) {
    await sink.abort()
    throw err
  }
  io.log.info('convert_mnist_data.cpp:108', `Processed ${numItems} files.`)
  return numItems
}

/** `convert_mnist_data [--backend=lmdb|leveldb] input_image_file input_label_file output_db_file` */
export async function runConvertMnistData (argv: readonly string[], io: ToolIo): Promise<number> {
  return runTool(argv, io, USAGE, { min: 3, max: 3 }, 'convert_mnist_data.cpp:0', async ({ values, positional }) => {
    const [images, labels, db] = positional as [string, string, string]
    await convertMnistData(images, labels, db, parseBackend(str(values, 'backend')), io)
  })
}
