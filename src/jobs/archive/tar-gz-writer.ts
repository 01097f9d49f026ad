import type { Readable, Writable } from 'node:stream'
import { createGzip } from 'node:zlib'
import { Header, Pax } from 'tar'

/** Header fields of a regular file written by TarGzWriter. */
export interface TarFileMeta {
  path: string
  size: number
  mode: number
  uid: number
  gid: number
  uname: string
  gname: string
  mtime: Date | undefined
}

const BLOCK = 512
// zlib does one thread-pool round trip per write; tar headers and small images are batched first.
const BATCH_BYTES = 64 * 1024
const ZEROS = Buffer.alloc(2 * BLOCK)

function waitForDrain (stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('drain', onDrain)
      stream.off('close', onClose)
      stream.off('error', onError)
    }
    const onDrain = (): void => { cleanup(); resolve() }
    const onError = (err: Error): void => { cleanup(); reject(err) }
    const onClose = (): void => { cleanup(); reject(stream.errored ?? new Error('the output stream was closed before the archive was complete')) }
    stream.on('drain', onDrain)
    stream.on('close', onClose)
    stream.on('error', onError)
  })
}

/**
 * Writes a .tar.gz of regular files to a stream, respecting the reader's pace. Output is a
 * pure function of the calls (gzip header mtime is 0), so the same files give the same bytes.
 * Names that do not fit a ustar header get a pax record, written with tar@7.
 */
export class TarGzWriter {
  readonly #gzip: ReturnType<typeof createGzip>
  #batch: Buffer[] = []
  #batchBytes = 0
  /** Uncompressed tar bytes written so far. */
  bytes = 0

  constructor (options: { level?: number } = {}) {
    this.#gzip = createGzip({ level: options.level ?? 6 })
    // destroy(err) must not crash a process whose consumer has not attached yet; readers
    // (pipeline, for await) still see the error through their own listeners.
    this.#gzip.on('error', () => {})
  }

  /** The compressed stream; it must be read (or piped) for writes to make progress. */
  get output (): Readable {
    return this.#gzip
  }

  /** Appends one file; a Buffer body is batched without awaiting unless the batch is full. */
  async writeFile (meta: TarFileMeta, body: Buffer | AsyncIterable<Buffer>): Promise<void> {
    const header = new Header({ ...meta, type: 'File', mtime: meta.mtime ?? new Date(0) })
    const block = Buffer.alloc(BLOCK)
    if (header.encode(block)) {
      this.#append(new Pax({ path: meta.path, uid: meta.uid, gid: meta.gid, uname: meta.uname, gname: meta.gname, size: meta.size, mtime: meta.mtime }).encode())
    }
    this.#append(block)
    if (Buffer.isBuffer(body)) {
      if (body.length !== meta.size) throw new Error(`tar body of '${meta.path}' is ${body.length} bytes, its header says ${meta.size}`)
      this.#append(body)
    } else {
      let written = 0
      for await (const chunk of body) {
        written += chunk.length
        if (written > meta.size) throw new Error(`tar body of '${meta.path}' is longer than its header says`)
        this.#append(chunk)
        if (this.#batchBytes >= BATCH_BYTES) await this.#flush()
      }
      if (written !== meta.size) throw new Error(`tar body of '${meta.path}' is shorter than its header says`)
    }
    const pad = (BLOCK - (meta.size % BLOCK)) % BLOCK
    if (pad > 0) this.#append(ZEROS.subarray(0, pad))
    if (this.#batchBytes >= BATCH_BYTES) await this.#flush()
  }

  /** Writes the end-of-archive blocks and ends the gzip stream. */
  async end (): Promise<void> {
    this.#append(ZEROS)
    await this.#flush()
    this.#gzip.end()
  }

  destroy (err: Error): void {
    this.#gzip.destroy(err)
  }

  #append (buf: Buffer): void {
    this.bytes += buf.length
    // Views are kept as they are: tar bodies come from fresh zlib buffers that nobody reuses.
    this.#batch.push(buf)
    this.#batchBytes += buf.length
  }

  async #flush (): Promise<void> {
    if (this.#batchBytes === 0) return
    const data = this.#batch.length === 1 ? this.#batch[0] as Buffer : Buffer.concat(this.#batch, this.#batchBytes)
    this.#batch = []
    this.#batchBytes = 0
    await this.#push(data)
  }

  async #push (data: Buffer): Promise<void> {
    const gzip = this.#gzip
    if (gzip.destroyed) throw gzip.errored ?? new Error('the output stream was closed before the archive was complete')
    if (!gzip.write(data)) await waitForDrain(gzip)
  }
}
