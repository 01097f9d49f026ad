import { z } from 'zod'
import { ProcessingState } from './processing-state.js'

/** The owner of a document: `user:<username>`, as the original stored it. Set by the server only. */
export const TenantId = z.string().regex(/^user:[a-z0-9][a-z0-9._-]*$/).brand<'TenantId'>()
export type TenantId = z.infer<typeof TenantId>

/** A document id as it appears in URLs and references. */
export const DocId = z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9:._-]*$/, 'must be a document id').brand<'DocId'>()
export type DocId = z.infer<typeof DocId>

export const DocumentType = z.enum(['user', 'datafile', 'dataset', 'solver', 'training-job', 'classifier', 'classify-job'])
export type DocumentType = z.infer<typeof DocumentType>

/** Types that carry a processing state and are run by workers. */
export const JobType = z.enum(['datafile', 'dataset', 'training-job', 'classify-job'])
export type JobType = z.infer<typeof JobType>

export const Timestamp = z.iso.datetime({ offset: true })

/** http(s) only: other schemes (file:, gopher:, data:) are never fetched. */
export const HttpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .max(2048)
  .describe('an http:// or https:// URL')

/** A reference to a blob in the configured store, in the original's `cbfs://<key>` form. */
export const BlobUri = z.string().regex(/^cbfs:\/\/[^/].*$/, 'must be a cbfs:// blob URI').max(1024)

/** Fields every stored document has. `_rev` is CouchDB's; clients never send it. */
export const BaseDocument = z.object({
  _id: z.string(),
  _rev: z.string().optional(),
  'created-at': Timestamp,
  'updated-at': Timestamp
})

/**
 * Fields of the job life cycle (../shared/docs/architecture.md): a worker claims a pending doc
 * by writing `worker-id`, `attempts` and `lease-expires-at` in one rev-checked update.
 */
export const JobFields = z.object({
  'processing-state': ProcessingState,
  'processing-log': z.string().max(16_384).default(''),
  attempts: z.number().int().nonnegative().default(0),
  'worker-id': z.string().max(200).nullable().default(null),
  'lease-expires-at': Timestamp.nullable().default(null),
  'started-at': Timestamp.nullable().default(null),
  'finished-at': Timestamp.nullable().default(null),
  /** After a retryable failure: not to be started again before this time (backoff). */
  'retry-at': Timestamp.nullable().default(null)
})

/** Longest processing-log kept; longer messages are cut in the middle. */
export const MAX_PROCESSING_LOG = 16_384

/** Listing query: newest first, `limit` per page, `cursor` from the previous page's `next`. */
export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional()
}).strict()
export type ListQuery = z.infer<typeof ListQuery>

export const IdParams = z.object({ id: DocId }).strict()

export function pageOf<T extends z.ZodType> (item: T) {
  return z.object({
    items: z.array(item),
    next: z.string().nullable().describe('cursor for the next page; null on the last page')
  })
}
