import { Readable } from 'node:stream'
import { NotFoundError, ValidationError } from '../src/lib/errors.js'
import { assertSafeKey, assertSafePrefix, compareBlobKeys } from './blob-key.js'
import { abortReasonOr, bodyChunks, byteRange, withSignal } from './blob-io.js'
import type { BlobBody, BlobEntry, BlobGetOptions, BlobPutOptions, BlobStat, BlobStore } from './blob-store.js'

interface MemoryBlob {
  data: Buffer
  contentType: string | undefined
}

/**
 * A BlobStore in a Map, for route and job tests. It keeps every byte in memory, so it
 * is not for big data; otherwise it honours the whole BlobStore contract (a put becomes
 * visible only once its body has been read completely).
 */
export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<string, MemoryBlob>()

  async put (key: string, body: BlobBody, options: BlobPutOptions = {}): Promise<{ size: number }> {
    assertSafeKey(key)
    const chunks: Uint8Array[] = []
    try {
      for await (const chunk of bodyChunks(body, options.signal)) chunks.push(chunk)
    } catch (err) {
      throw abortReasonOr(options.signal, err)
    }
    // Copy: the caller may reuse the buffers it gave us.
    const data = Buffer.concat(chunks)
    this.#blobs.set(key, { data, contentType: options.contentType })
    return { size: data.length }
  }

  async get (key: string, options: BlobGetOptions = {}): Promise<Readable> {
    assertSafeKey(key)
    const range = byteRange(options)
    options.signal?.throwIfAborted()
    const blob = this.#require(key)
    const end = range.end === undefined ? blob.data.length : Math.min(range.end + 1, blob.data.length)
    const slice = range.start >= end ? Buffer.alloc(0) : blob.data.subarray(range.start, end)
    return withSignal(Readable.from(slices(slice), { objectMode: false }), options.signal)
  }

  async stat (key: string): Promise<BlobStat> {
    assertSafeKey(key)
    const blob = this.#require(key)
    return blob.contentType === undefined ? { size: blob.data.length } : { size: blob.data.length, contentType: blob.contentType }
  }

  async exists (key: string): Promise<boolean> {
    assertSafeKey(key)
    return this.#blobs.has(key)
  }

  async delete (key: string): Promise<void> {
    assertSafeKey(key)
    this.#blobs.delete(key)
  }

  async list (prefix = ''): Promise<BlobEntry[]> {
    assertSafePrefix(prefix)
    const entries: BlobEntry[] = []
    for (const [key, blob] of this.#blobs) {
      if (key.startsWith(prefix)) entries.push({ key, size: blob.data.length })
    }
    return entries.sort((a, b) => compareBlobKeys(a.key, b.key))
  }

  async deletePrefix (prefix: string): Promise<number> {
    assertSafePrefix(prefix)
    if (prefix === '') throw new ValidationError('refusing to delete with an empty prefix (the whole store)')
    const entries = await this.list(prefix)
    for (const { key } of entries) this.#blobs.delete(key)
    return entries.length
  }

  // Nothing to release; the data stays readable so a test can inspect it after app.close().
  async close (): Promise<void> {}

  #require (key: string): MemoryBlob {
    const blob = this.#blobs.get(key)
    if (blob === undefined) throw new NotFoundError(`blob ${JSON.stringify(key)} not found`)
    return blob
  }
}

// Served in slices, like a file or socket would, so consumers see real streaming behaviour.
function * slices (data: Buffer): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += 64 * 1024) yield data.subarray(offset, offset + 64 * 1024)
}
