import { z } from 'zod'
import { CliError } from './cli-error.js'

/*
 * The parts of the API's answers `et` reads. Loose on purpose: fields the server adds later are
 * kept (and shown by --json), and only what the commands use must be there.
 */

export const Created = z.object({ id: z.string() }).loose()

export const JobView = z.object({
  id: z.string(),
  type: z.string(),
  'processing-state': z.string(),
  'processing-log': z.string().default(''),
  'created-at': z.string(),
  'started-at': z.string().nullable().default(null),
  'finished-at': z.string().nullable().default(null),
  attempts: z.number().default(0)
}).loose()
export type JobView = z.infer<typeof JobView>

export const Progress = z.object({
  iteration: z.number(),
  'max-iter': z.number().nullable(),
  loss: z.number().nullable(),
  lr: z.number().nullable().default(null),
  'test-outputs': z.record(z.string(), z.number()).default({})
}).loose()
export type Progress = z.infer<typeof Progress>

export const TrainingJobView = JobView.extend({
  'solver-id': z.string(),
  progress: Progress.nullable().default(null)
}).loose()
export type TrainingJobView = z.infer<typeof TrainingJobView>

export const ClassifyJobView = JobView.extend({
  images: z.array(z.object({ key: z.string(), url: z.string().nullable(), filename: z.string().nullable() }).loose()),
  results: z.record(z.string(), z.string()),
  predictions: z.record(z.string(), z.array(z.object({ label: z.string(), probability: z.number() }).loose())).default({})
}).loose()
export type ClassifyJobView = z.infer<typeof ClassifyJobView>

export const DatafileView = JobView.extend({
  name: z.string().nullable().default(null),
  labels: z.array(z.string()).nullable().default(null),
  'image-count': z.number().nullable().default(null)
}).loose()

export const Page = z.object({ items: z.array(z.unknown()), next: z.string().nullable() })

export const UserView = z.object({ username: z.string() }).loose()

export const WebhookSecret = z.object({ secret: z.string(), 'created-at': z.string().nullable() }).loose()

/** Parses an answer of the server, or fails saying the server answered something unexpected. */
export function parseAnswer<T extends z.ZodType> (schema: T, value: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(value)
  if (!result.success) throw new CliError(`unexpected answer from the server for ${what}: ${result.error.issues[0]?.path.join('.') ?? ''} ${result.error.issues[0]?.message ?? ''}`)
  return result.data
}

export const ENDED = ['finished_successfully', 'failed', 'cancelled']
