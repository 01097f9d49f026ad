import { z } from 'zod'
import { BaseDocument, BlobUri, DocId, HttpUrl, TenantId } from './common.js'
import { MAX_PROTOTXT_BYTES } from './solver.js'

/**
 * The original sent these as strings ("255", "28"); both strings and numbers are accepted and
 * stored as strings so its clients read back what they wrote.
 */
const NumericString = (what: string, min: number, max: number) => z.union([z.string(), z.number()])
  .transform((value, ctx) => {
    const n = typeof value === 'number' ? value : Number(value.trim())
    if (!Number.isFinite(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a number between ${min} and ${max}` })
      return z.NEVER
    }
    return String(n)
  })

export const Classifier = BaseDocument.extend({
  type: z.literal('classifier'),
  'user-id': TenantId,
  'training-job-id': z.string(),
  /** The stored deploy prototxt. */
  'specification-url': BlobUri,
  'source-specification-url': z.string().nullable().default(null),
  scale: z.string(),
  'image-width': z.string(),
  'image-height': z.string(),
  color: z.boolean(),
  gpu: z.boolean()
})
export type Classifier = z.infer<typeof Classifier>

export const NewClassifier = z.object({
  'training-job-id': DocId,
  'specification-url': HttpUrl.optional(),
  specification: z.string().min(1).max(MAX_PROTOTXT_BYTES).optional(),
  scale: NumericString('scale', 0, 1e6),
  'image-width': NumericString('image-width', 1, 4096),
  'image-height': NumericString('image-height', 1, 4096),
  color: z.boolean().default(false),
  gpu: z.boolean().default(false)
}).strict().superRefine((value, ctx) => {
  if ((value['specification-url'] === undefined) === (value.specification === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['specification-url'], message: "give exactly one of 'specification-url' or 'specification'" })
  }
})
export type NewClassifier = z.infer<typeof NewClassifier>
