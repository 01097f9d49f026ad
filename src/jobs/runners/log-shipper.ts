import { createWriteStream } from 'node:fs'
import type { WriteStream } from 'node:fs'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import type { BlobStore } from '../../../blobstore/blob-store.js'
import { blobUri } from '../../../blobstore/blob-uri.js'
import type { Logger } from '../../lib/logger.js'
import { logChunkKey, logChunkPrefix, wholeLogKey } from '../job-logs.js'
import type { LogStream } from '../job-logs.js'

export interface LogShipperOptions {
  blobs: BlobStore
  jobId: string
  stream: LogStream
  attempt: number
  /** Local copy in the work dir. */
  localPath: string
  log: Logger
  /** Flush at least this often while output arrives (default 2 s). */
  flushMs?: number
  /** Flush as soon as this much is buffered (default 64 KiB). */
  chunkBytes?: number
}

/**
 * Streams one output stream of a running process to a local file and to the blob store, as
 * numbered chunk objects (see job-logs.ts), so the log can be read while the job runs on any
 * backend. A failed chunk upload keeps its bytes and is tried again at the next flush, so a
 * short blob-store outage delays the log but loses nothing; only `close()` insists.
 */
export class LogShipper {
  readonly #o: Required<Omit<LogShipperOptions, 'flushMs' | 'chunkBytes'>> & { flushMs: number, chunkBytes: number }
  readonly #file: WriteStream
  #buffer: Buffer[] = []
  #buffered = 0
  #seq = 1
  #chain: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #lastError: unknown

  constructor (options: LogShipperOptions) {
    this.#o = { flushMs: 2000, chunkBytes: 64 * 1024, ...options }
    this.#file = createWriteStream(options.localPath, { flags: 'a' })
    this.#file.on('error', (err) => { this.#o.log.warn({ err, stream: options.stream }, 'local log copy could not be written') })
    this.#timer = setInterval(() => { this.flush().catch(() => {}) }, this.#o.flushMs)
  }

  write (chunk: Buffer | string): void {
    if (this.#closed) return
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
    if (bytes.length === 0) return
    this.#file.write(bytes)
    this.#buffer.push(bytes)
    this.#buffered += bytes.length
    if (this.#buffered >= this.#o.chunkBytes) this.flush().catch(() => {})
  }

  /** Uploads what is buffered as the next chunk; resolves when it and every earlier flush is done. */
  async flush (): Promise<void> {
    this.#chain = this.#chain.then(async () => { await this.#flushOnce() })
    await this.#chain
  }

  async #flushOnce (): Promise<void> {
    if (this.#buffered === 0) return
    const data = Buffer.concat(this.#buffer)
    this.#buffer = []
    this.#buffered = 0
    const key = logChunkKey(this.#o.jobId, this.#o.stream, this.#o.attempt, this.#seq)
    try {
      await this.#o.blobs.put(key, data, { contentType: 'text/plain; charset=utf-8' })
      this.#seq++
      this.#lastError = undefined
    } catch (err) {
      // Put the bytes back in front of anything written meanwhile; the same key is reused.
      this.#buffer.unshift(data)
      this.#buffered += data.length
      this.#lastError = err
      this.#o.log.warn({ err, key }, 'log chunk upload failed; will try again')
    }
  }

  /**
   * Stops shipping, uploads the rest, then stores the whole log (every chunk of every attempt,
   * in order) under `<job-id>/<stream>` and returns its cbfs:// URI. Throws if the rest
   * cannot be uploaded after a few tries.
   */
  async close (): Promise<string> {
    await this.#stop()
    for (let i = 0; i < 3 && this.#buffered > 0; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 500 * i))
      await this.flush()
    }
    if (this.#buffered > 0) throw this.#lastError ?? new Error('log upload failed')
    const { blobs, jobId, stream } = this.#o
    const chunks = await blobs.list(logChunkPrefix(jobId, stream))
    async function * whole (): AsyncGenerator<Buffer> {
      for (const c of chunks) {
        for await (const part of await blobs.get(c.key)) yield part as Buffer
      }
    }
    const key = wholeLogKey(jobId, stream)
    await blobs.put(key, Readable.from(whole(), { objectMode: false }), { contentType: 'text/plain; charset=utf-8' })
    return blobUri(key)
  }

  /** Best effort for failure paths: upload what is buffered, never throw. */
  async abandon (): Promise<void> {
    await this.#stop()
    await this.flush().catch(() => {})
  }

  async #stop (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.#file.end()
    if (!this.#file.closed) await once(this.#file, 'close').catch(() => {})
  }
}
