import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import type { BlobStore } from '../../../blobstore/blob-store.js'
import { keyFromBlobUri } from '../../../blobstore/blob-uri.js'
import { NotFoundError, PermanentJobError } from '../../lib/errors.js'

/**
 * Reads a small text blob (a prototxt) named by a cbfs:// URI. A missing blob is permanent:
 * the document points at a file that is gone. `what` names it in the error.
 */
export async function readBlobText (blobs: BlobStore, uri: string, what: string, maxBytes: number, signal?: AbortSignal): Promise<string> {
  const key = keyOf(uri, what)
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of await blobs.get(key, signal === undefined ? {} : { signal })) {
      size += (chunk as Buffer).length
      if (size > maxBytes) throw new PermanentJobError(`${what} is larger than ${maxBytes} bytes`)
      chunks.push(chunk as Buffer)
    }
  } catch (err) {
    throw missing(err, what, uri)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** Copies a blob named by a cbfs:// URI to a local file. */
export async function downloadBlob (blobs: BlobStore, uri: string, file: string, what: string, signal?: AbortSignal): Promise<void> {
  const key = keyOf(uri, what)
  try {
    await pipeline(await blobs.get(key, signal === undefined ? {} : { signal }), createWriteStream(file, { flags: 'wx' }), signal === undefined ? {} : { signal })
  } catch (err) {
    throw missing(err, what, uri)
  }
}

function keyOf (uri: string, what: string): string {
  try {
    return keyFromBlobUri(uri)
  } catch (err) {
    throw new PermanentJobError(`${what} has an unusable location ${JSON.stringify(uri.slice(0, 200))}`, { cause: err })
  }
}

function missing (err: unknown, what: string, uri: string): unknown {
  return err instanceof NotFoundError ? new PermanentJobError(`${what} (${uri}) is missing from the blob store`, { cause: err }) : err
}
