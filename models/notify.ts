import { z } from 'zod'
import { Timestamp } from './common.js'

/**
 * Where a job's webhook (its `notify-url`) is: `none` (no URL, or a document from before
 * webhooks), `pending` (to be sent once the job has ended, or again at `notify-next-at`),
 * `sending` (claimed by `notify-sender` until `notify-lease-expires-at`), then `delivered` or
 * `failed` (given up; the reason in `notify-last-error`).
 */
export const NotifyState = z.enum(['none', 'pending', 'sending', 'delivered', 'failed'])
export type NotifyState = z.infer<typeof NotifyState>

/**
 * Webhook delivery state kept in the job document itself, so any server can resume a delivery
 * another one started, and rev-checked updates decide which server sends. Every field has a
 * default, so documents written before webhooks existed still parse.
 */
export const NotifyFields = z.object({
  'notify-state': NotifyState.default('none').describe('webhook delivery: none, pending (sent when the job ends), sending, delivered or failed'),
  'notify-attempts': z.number().int().nonnegative().default(0).describe('webhook POSTs tried so far'),
  'notify-next-at': Timestamp.nullable().default(null).describe('when the next webhook attempt is due (after a failed one)'),
  'notify-sender': z.string().max(200).nullable().default(null).describe('the server process that made (or is making) the last attempt'),
  'notify-lease-expires-at': Timestamp.nullable().default(null).describe('a claimed delivery not recorded by then is taken over by another server'),
  'notify-last-error': z.string().max(2000).nullable().default(null).describe('why the last webhook attempt failed'),
  'notify-last-status': z.number().int().nullable().default(null).describe('HTTP status of the last webhook answer'),
  'notify-delivered-at': Timestamp.nullable().default(null),
  'notify-base-url': z.string().max(2048).nullable().default(null).describe('the API URL the job was created through; links in the webhook use it')
})
export type NotifyFields = z.infer<typeof NotifyFields>

/** The notify fields of a new job: pending delivery when it has a URL, none otherwise. */
export function initialNotifyFields (notifyUrl: string | null, baseUrl: string | null): NotifyFields {
  return {
    'notify-state': notifyUrl === null ? 'none' : 'pending',
    'notify-attempts': 0,
    'notify-next-at': null,
    'notify-sender': null,
    'notify-lease-expires-at': null,
    'notify-last-error': null,
    'notify-last-status': null,
    'notify-delivered-at': null,
    'notify-base-url': notifyUrl === null ? null : baseUrl
  }
}

/** One image of a classify job as a webhook reports it: its top label and top-k predictions. */
export const WebhookImage = z.object({
  key: z.string(),
  url: z.string().nullable(),
  filename: z.string().nullable(),
  label: z.string().nullable(),
  predictions: z.array(z.object({ label: z.string(), probability: z.number() }))
})

/**
 * The JSON body POSTed to a job's `notify-url` when it ends. `training` is set for training
 * jobs, `classify` for classify jobs. URLs are absolute when the job was created through the
 * API (they use the address the client reached it at), else paths.
 */
export const WebhookPayload = z.object({
  event: z.string().describe('"<type>.<state>", e.g. "training-job.finished_successfully"'),
  'delivery-id': z.string().describe('the same for every retry of this delivery: receivers dedupe on it'),
  id: z.string(),
  type: z.enum(['training-job', 'classify-job']),
  state: z.enum(['finished_successfully', 'failed', 'cancelled']),
  'user-id': z.string(),
  'created-at': z.string(),
  'started-at': z.string().nullable(),
  'finished-at': z.string().nullable(),
  'duration-ms': z.number().nullable().describe('creation to end, queueing included'),
  'run-ms': z.number().nullable().describe('start of the last attempt to end'),
  attempts: z.number(),
  'processing-log': z.string().describe('why it failed or was cancelled; empty on success'),
  url: z.string().describe('the job in the API'),
  training: z.object({
    'solver-id': z.string(),
    iteration: z.number().nullable(),
    'max-iter': z.number().nullable(),
    loss: z.number().nullable(),
    accuracy: z.number().nullable(),
    'test-outputs': z.record(z.string(), z.number()),
    labels: z.array(z.string()).nullable(),
    'model-url': z.string().nullable().describe('download of the trained model; null unless finished_successfully')
  }).nullable(),
  classify: z.object({
    'classifier-id': z.string(),
    images: z.array(WebhookImage)
  }).nullable()
})
export type WebhookPayload = z.infer<typeof WebhookPayload>
