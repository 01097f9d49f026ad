import { z } from 'zod'
import { BaseDocument, BlobUri, HttpUrl, JobFields, TenantId } from './common.js'
import { NotifyFields } from './notify.js'
import { UploadedFileField } from './uploaded-file.js'

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

export const ClassifyJob = BaseDocument.merge(JobFields).merge(NotifyFields).extend({
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
  /** Images to fetch; each is keyed in the results by the sha1 of its URL, as the original did. */
  urls: z.array(HttpUrl).max(MAX_IMAGES_PER_CLASSIFY).default([]),
  /** Uploaded images (multipart `files` parts); each is keyed by its file name. */
  files: z.array(UploadedFileField).max(MAX_IMAGES_PER_CLASSIFY).default([]),
  'notify-url': HttpUrl.optional()
}).strict().superRefine((value, ctx) => {
  const count = value.urls.length + value.files.length
  if (count === 0) ctx.addIssue({ code: 'custom', path: ['urls'], message: 'give at least one image: "urls", or "files" in a multipart/form-data request' })
  if (count > MAX_IMAGES_PER_CLASSIFY) ctx.addIssue({ code: 'custom', path: ['files'], message: `at most ${MAX_IMAGES_PER_CLASSIFY} images per request` })
})
export type NewClassifyJob = z.infer<typeof NewClassifyJob>
