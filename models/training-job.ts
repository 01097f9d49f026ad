import { z } from 'zod'
import { BaseDocument, BlobUri, DocId, HttpUrl, JobFields, TenantId } from './common.js'
import { NotifyFields } from './notify.js'

/** Longest progress series kept in the document; older points are thinned, never the newest. */
export const MAX_SERIES_POINTS = 500

export const ProgressPoint = z.object({
  iteration: z.number().int().nonnegative(),
  loss: z.number().nullable().default(null),
  lr: z.number().nullable().default(null),
  /** Test net outputs at this iteration (e.g. `{accuracy: 0.98, loss: 0.05}`), when a test ran. */
  test: z.record(z.string(), z.number()).nullable().default(null)
})
export type ProgressPoint = z.infer<typeof ProgressPoint>

export const Progress = z.object({
  iteration: z.number().int().nonnegative(),
  'max-iter': z.number().int().nonnegative().nullable(),
  loss: z.number().nullable(),
  lr: z.number().nullable(),
  'test-outputs': z.record(z.string(), z.number()),
  series: z.array(ProgressPoint).max(MAX_SERIES_POINTS)
})
export type Progress = z.infer<typeof Progress>

export const Snapshot = z.object({
  iteration: z.number().int().nonnegative(),
  'model-url': BlobUri,
  'state-url': BlobUri.nullable()
})
export type Snapshot = z.infer<typeof Snapshot>

export const TrainingJob = BaseDocument.merge(JobFields).merge(NotifyFields).extend({
  type: z.literal('training-job'),
  'user-id': TenantId,
  'solver-id': z.string(),
  'std-out-url': BlobUri.nullable().default(null),
  'std-err-url': BlobUri.nullable().default(null),
  'trained-model-url': BlobUri.nullable().default(null),
  /** The label index: `labels[n]` is the name of class n. */
  labels: z.array(z.string()).nullable().default(null),
  progress: Progress.nullable().default(null),
  snapshots: z.array(Snapshot).default([]),
  /** POSTed a signed summary when the job ends (see README, Webhooks). */
  'notify-url': z.string().nullable().default(null)
})
export type TrainingJob = z.infer<typeof TrainingJob>

export const NewTrainingJob = z.object({
  'solver-id': DocId,
  'notify-url': HttpUrl.optional()
}).strict()
export type NewTrainingJob = z.infer<typeof NewTrainingJob>
