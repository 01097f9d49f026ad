import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import { ToolCheckError } from './tool-runtime.js'

const gunzipAsync = promisify(gunzip)

/** An IDX file (the MNIST distribution format): big-endian dimensions, then unsigned bytes. */
export interface IdxFile {
  magic: number
  dims: number[]
  /** The payload after the header (rows of uint8 samples). */
  data: Uint8Array
}

/** What the caller expects of an IDX file, and the Caffe source tags of the CHECKs that test it. */
export interface IdxExpectation {
  magic: number
  what: 'image' | 'label'
  /** Tag of the "Unable to open file" CHECK. */
  openWhere: string
  /** Tag of the magic CHECK (also used for truncation, which Caffe does not check). */
  where: string
}

/**
 * Reads an IDX file, gunzipping it first when it starts with the gzip magic (so both
 * `train-images-idx3-ubyte` and the distributed `.gz` work). Checks the magic the way
 * convert_mnist_data does (`where` is its CHECK's source tag) and that the payload is complete.
 */
export async function readIdxFile (file: string, expect: IdxExpectation): Promise<IdxFile> {
  const { magic: expectedMagic, what, where } = expect
  let bytes: Uint8Array
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new ToolCheckError(expect.openWhere, `Check failed: ${what}_file Unable to open file ${file}`, { cause: err })
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await gunzipAsync(bytes)
    } catch (err) {
      throw new ToolCheckError(where, `${file}: corrupt gzip data (${(err as Error).message})`, { cause: err })
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magic = bytes.length >= 4 ? view.getUint32(0) : 0
  if (magic !== expectedMagic) {
    throw new ToolCheckError(where, `Check failed: magic == ${expectedMagic} (${magic} vs. ${expectedMagic}) Incorrect ${what} file magic.`)
  }
  // The low byte of the magic is the number of dimensions (0x0803: unsigned bytes, 3 dims).
  const ndims = magic & 0xff
  const header = 4 + 4 * ndims
  if (bytes.length < header) throw new ToolCheckError(where, `${file}: truncated IDX header`)
  const dims: number[] = []
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i))
  const size = dims.reduce((a, b) => a * b, 1)
  if (bytes.length - header < size) {
    throw new ToolCheckError(where, `${file} is truncated: its header promises ${dims.join('x')} = ${size} bytes of data but only ${bytes.length - header} follow`)
  }
  return { magic, dims, data: bytes.subarray(header, header + size) }
}
