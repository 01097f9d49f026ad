import { z } from 'zod'
import { BaseDocument, BlobUri, HttpUrl, JobFields, TenantId } from './common.js'
import { UploadedFileField } from './uploaded-file.js'

/** What a datafile holds, known once the worker has looked inside it. */
export const DatafileFormat = z.enum(['images-tar-gz', 'lmdb', 'leveldb'])
export type DatafileFormat = z.infer<typeof DatafileFormat>

export const Datafile = BaseDocument.merge(JobFields).extend({
  type: z.literal('datafile'),
  'user-id': TenantId,
  name: z.string().max(200).nullable().default(null),
  /** Where the data came from: the URL given at creation, or null for an upload. */
  url: z.string().nullable(),
  /** The stored copy in the blob store, set when the datafile is ready. */
  'blob-url': BlobUri.nullable().default(null),
  format: DatafileFormat.nullable().default(null),
  size: z.number().int().nonnegative().nullable().default(null),
  labels: z.array(z.string()).nullable().default(null),
  'image-count': z.number().int().nonnegative().nullable().default(null)
})
export type Datafile = z.infer<typeof Datafile>

export const NewDatafile = z.object({
  /** Where to download the datafile from; or upload it as the multipart `file` field. */
  url: HttpUrl.optional(),
  file: UploadedFileField.optional(),
  name: z.string().min(1).max(200).optional(),
  // Accepted for the original's clients (its API docs told them to send these); the format is
  // detected from the content instead.
  layers_type: z.enum(['IMAGE_DATA', 'DATA']).optional(),
  layers_data_param: z.object({ backend: z.enum(['LMDB', 'LEVELDB']).optional() }).strict().optional()
}).strict().superRefine((value, ctx) => {
  if ((value.url === undefined) === (value.file === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['url'], message: "give either 'url' (JSON or form field) or a 'file' upload (multipart/form-data)" })
  }
})
export type NewDatafile = z.infer<typeof NewDatafile>
