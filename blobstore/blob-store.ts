import type { Readable } from 'node:stream'

/** What `put` accepts: a byte stream (consumed, and destroyed on failure), bytes, or UTF-8 text. */
export type BlobBody = Readable | Uint8Array | string

/** Options for `put`; both optional. */
export interface BlobPutOptions {
  /** Stored with the blob where the backend can (see each store's notes). */
  contentType?: string
  /** Aborting rejects the put with the signal's reason and leaves nothing under the key. */
  signal?: AbortSignal
}

/** Options for `get`: an optional inclusive byte range and an abort signal. */
export interface BlobGetOptions {
  /** First byte to return (default 0). At or past the end gives an empty stream, not an error. */
  start?: number
  /** Last byte to return, INCLUSIVE as in HTTP Range and fs.createReadStream; clipped to the size. */
  end?: number
  /** Aborting destroys the returned stream with the signal's reason. */
  signal?: AbortSignal
}

/** What `stat` knows about a stored blob. */
export interface BlobStat {
  size: number
  /** The type given at put, or one derived by the backend (file extension, S3 default). */
  contentType?: string
}

/** One row of `list`: a key and its size in bytes. */
export interface BlobEntry {
  key: string
  size: number
}

/**
 * A flat namespace of byte blobs under safe relative keys (`<owner-or-doc-id>/<...>`).
 * Contract shared by every implementation (checked by one conformance suite):
 * - every method validates keys with assertSafeKey and throws ValidationError before any I/O;
 * - `put` streams end to end and is all-or-nothing: readers see the old value or the complete
 *   new one, never part of one; a failed or aborted put leaves nothing new under the key;
 *   concurrent puts to one key leave exactly one of the complete values;
 * - `get` and `stat` throw NotFoundError for a missing key; `delete` of a missing key is a no-op;
 * - `list(prefix)` matches keys as plain string prefixes and returns them sorted by code point;
 * - backend outages surface as UnavailableError (retryable); aborts as the signal's reason.
 */
export interface BlobStore {
  put: (key: string, body: BlobBody, options?: BlobPutOptions) => Promise<{ size: number }>
  /** The caller must consume or destroy the stream: it holds a file handle or a connection. */
  get: (key: string, options?: BlobGetOptions) => Promise<Readable>
  stat: (key: string) => Promise<BlobStat>
  exists: (key: string) => Promise<boolean>
  delete: (key: string) => Promise<void>
  list: (prefix?: string) => Promise<BlobEntry[]>
  /** Deletes every key matching `prefix` (which must not be empty) and returns how many. */
  deletePrefix: (prefix: string) => Promise<number>
  /** Releases connections; idempotent. The store must not be used afterwards. */
  close: () => Promise<void>
}

export { assertSafeKey, assertSafePrefix, compareBlobKeys } from './blob-key.js'
export { blobUri, keyFromBlobUri, isBlobUri } from './blob-uri.js'
