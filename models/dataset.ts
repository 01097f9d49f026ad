import { z } from 'zod'
import { BaseDocument, BlobUri, DocId, JobFields, TenantId } from './common.js'

/**
 * A split percentage as the original's clients send it: a fraction (`0.7`) or a percentage
 * (`70`) — both mean 70%. The original truncated `0.7` to 0 and silently refused to split.
 */
export const SplitPercentage = z.number().min(0).max(100)

/** Normalises a split percentage to a fraction in [0, 1]. */
export function splitFraction (value: number): number {
  return value <= 1 ? value : value / 100
}

export const DatasetPart = z.object({
  'datafile-id': z.string(),
  'split-percentage': SplitPercentage,
  /** The part's archive in the blob store, set when the split is done. */
  url: BlobUri.nullable().default(null)
})

export const Dataset = BaseDocument.merge(JobFields).extend({
  type: z.literal('dataset'),
  'user-id': TenantId,
  training: DatasetPart,
  test: DatasetPart,
  /** One label map for both parts, built from the training part. */
  labels: z.array(z.string()).nullable().default(null)
})
export type Dataset = z.infer<typeof Dataset>

const NewDatasetPart = z.object({
  'datafile-id': DocId,
  'split-percentage': SplitPercentage.default(0)
}).strict()

export const NewDataset = z.object({
  training: NewDatasetPart,
  test: NewDatasetPart
}).strict().superRefine((value, ctx) => {
  if (value.training['datafile-id'] !== value.test['datafile-id']) return
  // One datafile split in two: the fractions must be positive and leave nothing double-counted.
  const train = splitFraction(value.training['split-percentage'])
  const test = splitFraction(value.test['split-percentage'])
  if (train <= 0) ctx.addIssue({ code: 'custom', path: ['training', 'split-percentage'], message: 'must be above 0 when training and test use the same datafile' })
  if (test <= 0) ctx.addIssue({ code: 'custom', path: ['test', 'split-percentage'], message: 'must be above 0 when training and test use the same datafile' })
  if (train + test > 1 + 1e-9) ctx.addIssue({ code: 'custom', path: ['test', 'split-percentage'], message: `training and test together are ${Math.round((train + test) * 100)}%, more than 100%` })
})
export type NewDataset = z.infer<typeof NewDataset>
