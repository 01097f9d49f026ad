import type { ClassifyJob } from '../../models/classify-job.js'
import type { WebhookPayload } from '../../models/notify.js'
import type { TrainingJob } from '../../models/training-job.js'

export type NotifiableJob = TrainingJob | ClassifyJob

/** The end states a webhook reports; any other state has nothing to report yet. */
export function isEnded (state: string): state is WebhookPayload['state'] {
  return state === 'finished_successfully' || state === 'failed' || state === 'cancelled'
}

/**
 * The summary POSTed when a job ends. Built only from the ended document, which no longer
 * changes (bar its notify fields), so every retry sends the same body.
 */
export function webhookPayload (job: NotifiableJob): WebhookPayload {
  const state = job['processing-state']
  if (!isEnded(state)) throw new Error(`job ${job._id} has not ended (${state})`)
  const path = `/${job.type}s/${encodeURIComponent(job._id)}`
  const base = job['notify-base-url']?.replace(/\/+$/, '') ?? ''
  const finished = job['finished-at']
  const since = (from: string | null): number | null => from === null || finished === null ? null : Math.max(0, Date.parse(finished) - Date.parse(from))
  return {
    event: `${job.type}.${state}`,
    'delivery-id': job._id,
    id: job._id,
    type: job.type,
    state,
    'user-id': job['user-id'],
    'created-at': job['created-at'],
    'started-at': job['started-at'],
    'finished-at': finished,
    'duration-ms': since(job['created-at']),
    'run-ms': since(job['started-at']),
    attempts: job.attempts,
    'processing-log': job['processing-log'],
    url: base + path,
    training: job.type === 'training-job' ? trainingSummary(job, base + path) : null,
    classify: job.type === 'classify-job' ? classifySummary(job) : null
  }
}

function trainingSummary (job: TrainingJob, url: string): WebhookPayload['training'] {
  const progress = job.progress
  const outputs = progress?.['test-outputs'] ?? {}
  return {
    'solver-id': job['solver-id'],
    iteration: progress?.iteration ?? null,
    'max-iter': progress?.['max-iter'] ?? null,
    loss: progress?.loss ?? null,
    accuracy: outputs.accuracy ?? null,
    'test-outputs': { ...outputs },
    labels: job.labels === null ? null : [...job.labels],
    'model-url': job['processing-state'] === 'finished_successfully' && job['trained-model-url'] !== null ? `${url}/model` : null
  }
}

function classifySummary (job: ClassifyJob): WebhookPayload['classify'] {
  return {
    'classifier-id': job['classifier-id'],
    // Until a classify job finishes its results say "pending": no label to report.
    images: job.images.map((image) => ({
      key: image.key,
      url: image.url,
      filename: image.filename,
      label: job['processing-state'] === 'finished_successfully' ? job.results[image.key] ?? null : null,
      predictions: (job.predictions[image.key] ?? []).map((p) => ({ label: p.label, probability: p.probability }))
    }))
  }
}
