import { z } from 'zod'

/**
 * A file a multipart request already streamed into the blob store. Only the server's form
 * reader creates these (JSON cannot produce a class instance), so a client can never make a
 * document point at a blob key of its choosing.
 */
export class UploadedFile {
  /** Id reserved for the document the upload belongs to; the blob key starts with it. */
  readonly docId: string
  readonly key: string
  readonly size: number
  readonly filename: string
  readonly contentType: string

  constructor (fields: { docId: string, key: string, size: number, filename: string, contentType: string }) {
    this.docId = fields.docId
    this.key = fields.key
    this.size = fields.size
    this.filename = fields.filename
    this.contentType = fields.contentType
  }
}

export const UploadedFileField = z.instanceof(UploadedFile).describe('a file part of a multipart/form-data request')
