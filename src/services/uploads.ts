import type { Readable } from 'node:stream'
import type { BlobStore } from '../../blobstore/blob-store.js'
import { UploadedFile } from '../../models/uploaded-file.js'
import { PayloadTooLargeError, ValidationError } from '../lib/errors.js'
import { newDocId } from '../lib/ids.js'

/** One file part of a multipart request, as the upload service needs it. */
export interface IncomingFile {
  fieldname: string
  filename: string
  mimetype: string
  file: Readable & { truncated?: boolean }
}

/**
 * Streams multipart file parts straight into the blob store under the id of the document the
 * request will create, and removes them again if the request then fails, so an upload is
 * never half-kept and never sits in memory.
 */
export class Uploads {
  private readonly blobs: BlobStore
  private readonly maxBytes: number
  private readonly perRequest = new WeakMap<object, { docId: string, keys: string[] }>()

  constructor (blobs: BlobStore, maxBytes: number) {
    this.blobs = blobs
    this.maxBytes = maxBytes
  }

  /** The document id reserved for this request's uploads (one per request). */
  docIdFor (request: object): string {
    let entry = this.perRequest.get(request)
    if (entry === undefined) {
      entry = { docId: newDocId(), keys: [] }
      this.perRequest.set(request, entry)
    }
    return entry.docId
  }

  /** Stores one file part under `<doc-id>/<name>`; rejects an empty or over-long file. */
  async store (request: object, part: IncomingFile, name: (docId: string, index: number) => string): Promise<UploadedFile> {
    const docId = this.docIdFor(request)
    const entry = this.perRequest.get(request)
    if (entry === undefined) throw new Error('upload bookkeeping lost')
    const key = name(docId, entry.keys.length)
    entry.keys.push(key)
    const { size } = await this.blobs.put(key, part.file, { contentType: part.mimetype })
    if (part.file.truncated === true) throw new PayloadTooLargeError(`body.${part.fieldname}: file is larger than the limit of ${Math.round(this.maxBytes / 1024 / 1024)} MiB`)
    if (size === 0) throw new ValidationError(`body.${part.fieldname}: the uploaded file is empty`)
    return new UploadedFile({ docId, key, size, filename: part.filename, contentType: part.mimetype })
  }

  /** Deletes what this request uploaded: called when the request did not create its document. */
  async discard (request: object): Promise<void> {
    const entry = this.perRequest.get(request)
    if (entry === undefined) return
    this.perRequest.delete(request)
    await Promise.all(entry.keys.map(async (key) => { await this.blobs.delete(key) }))
  }
}
