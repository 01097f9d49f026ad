import { z } from 'zod'
import { BaseDocument, BlobUri, DocId, HttpUrl, TenantId } from './common.js'

/** Largest prototxt accepted, inline or fetched: real solver and net files are a few KB. */
export const MAX_PROTOTXT_BYTES = 256 * 1024

const Prototxt = z.string().min(1).max(MAX_PROTOTXT_BYTES)

export const Solver = BaseDocument.extend({
  type: z.literal('solver'),
  'user-id': TenantId,
  'dataset-id': z.string(),
  /** The stored, rewritten solver prototxt (`net` and `snapshot_prefix` set by the server). */
  'specification-url': BlobUri,
  /** The stored net prototxt. */
  'specification-net-url': BlobUri,
  /** Where the client said the files were, or null when they were sent inline. */
  'source-specification-url': z.string().nullable().default(null),
  'source-specification-net-url': z.string().nullable().default(null),
  /** Caffe data layer kind the net uses for its inputs. */
  'data-layer-type': z.enum(['Data', 'ImageData']).nullable().default(null),
  'max-iter': z.number().int().nonnegative().nullable().default(null)
})
export type Solver = z.infer<typeof Solver>

/**
 * A solver is the original's `{dataset-id, specification-url, specification-net-url}`, or the
 * same with the prototxt text inline (`specification`, `specification-net`) for clients that
 * have the files locally.
 */
export const NewSolver = z.object({
  'dataset-id': DocId,
  'specification-url': HttpUrl.optional(),
  'specification-net-url': HttpUrl.optional(),
  specification: Prototxt.optional(),
  'specification-net': Prototxt.optional()
}).strict().superRefine((value, ctx) => {
  for (const [url, inline] of [['specification-url', 'specification'], ['specification-net-url', 'specification-net']] as const) {
    const given = Number(value[url] !== undefined) + Number(value[inline] !== undefined)
    if (given !== 1) ctx.addIssue({ code: 'custom', path: [url], message: `give exactly one of '${url}' or '${inline}'` })
  }
})
export type NewSolver = z.infer<typeof NewSolver>
