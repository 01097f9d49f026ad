import { z } from 'zod'
import { BaseDocument, BlobUri, HttpUrl, JobFields, TenantId } from './common.js'

/** Most images one classify request may carry. */
export const MAX_IMAGES_PER_CLASSIFY = 100

export const ClassifyImage = z.object({
  /** Stable key of this image in `results` and `predictions`: sha1 of its URL, as the original. */
  key: z.string(),
  url: z.string().nullable(),
  filename: z.string().nullable(),
  'blob-url': BlobUri.nullable()
})
export type ClassifyImage = z.infer<typeof ClassifyImage>

export const Prediction = z.object({
  label: z.string(),
  index: z.number().int().nonnegative(),
  probability: z.number()
})
export type Prediction = z.infer<typeof Prediction>

export const ClassifyJob = BaseDocument.merge(JobFields).extend({
  type: z.literal('classify-job'),
  'user-id': TenantId,
  'classifier-id': z.string(),
  images: z.array(ClassifyImage),
  /** The original's shape: image key → top label (or "pending" until classified). */
  results: z.record(z.string(), z.string()),
  /** image key → top-k labels with probabilities, best first. */
  predictions: z.record(z.string(), z.array(Prediction)).default({}),
  'std-out-url': BlobUri.nullable().default(null),
  'std-err-url': BlobUri.nullable().default(null),
  'notify-url': z.string().nullable().default(null)
})
export type ClassifyJob = z.infer<typeof ClassifyJob>

export const NewClassifyJob = z.object({
  urls: z.array(HttpUrl).min(1).max(MAX_IMAGES_PER_CLASSIFY),
  'notify-url': HttpUrl.optional()
}).strict()
export type NewClassifyJob = z.infer<typeof NewClassifyJob>
