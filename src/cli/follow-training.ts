import type { ApiClient } from './api-client.js'
import { ENDED, TrainingJobView, parseAnswer } from './api-types.js'
import { ApiError, CliError, InterruptedError } from './cli-error.js'
import type { CommandContext } from './command.js'
import { bar, num, seconds } from './format.js'
import { watchJob } from './job-events.js'
import { InterruptWatcher } from './terminal.js'

/**
 * Shows a training job's progress on the status line (iteration/max-iter, loss, accuracy) until
 * it ends, from the server's event stream (polling while it is unavailable, see watchJob).
 * Ctrl-C asks whether to cancel the job: yes cancels it (POST …/cancel), no leaves it running;
 * either way the command stops with exit code 130. A second Ctrl-C while asking stops at once
 * and leaves the job running. Resolves to the exit code: 0 finished, 1 failed or cancelled
 * elsewhere.
 */
export async function followTraining (ctx: CommandContext, client: ApiClient, id: string): Promise<number> {
  const watcher = new InterruptWatcher()
  const stop = new AbortController()
  const updates = watchJob(client, '/training-jobs', id, TrainingJobView, {
    signal: stop.signal,
    onOutage: (message) => { if (message !== null) ctx.term.status(`training ${id.slice(0, 8)}: ${message}`) }
  })
  try {
    for (;;) {
      const next = await Promise.race([updates.next(), watcher.next().then(() => 'interrupted' as const)])
      if (next === 'interrupted') {
        // No updates while the question is asked; the stream need not stay open for it.
        stop.abort()
        return await offerCancel(ctx, client, id, watcher)
      }
      if (next.done === true) throw new CliError(`stopped following training job ${id}`)
      const job = next.value
      if (ENDED.includes(job['processing-state'])) return report(ctx, job)
      ctx.term.status(describe(job))
    }
  } finally {
    stop.abort()
    watcher.dispose()
    // Settles at once now that it is aborted; a read it was making has already failed or
    // finished, unobserved.
    await updates.return().catch(() => {})
  }
}

async function offerCancel (ctx: CommandContext, client: ApiClient, id: string, watcher: InterruptWatcher): Promise<number> {
  ctx.term.clearStatus()
  const answer = await Promise.race([
    ctx.term.ask(`\ncancel the training job ${id}? [y/N] `),
    watcher.next().then(() => 'interrupted' as const)
  ])
  if (answer === 'interrupted') {
    ctx.term.note(`\ntraining job ${id} keeps running`)
    throw new InterruptedError()
  }
  if (answer !== null && /^\s*y(es)?\s*$/i.test(answer)) {
    try {
      const cancelled = parseAnswer(TrainingJobView, await client.post(`/training-jobs/${encodeURIComponent(id)}/cancel`), 'POST /training-jobs/:id/cancel')
      ctx.term.note(`training job ${id} cancelled`)
      ctx.result(cancelled, '')
    } catch (err) {
      // It ended on its own while we asked: say how, rather than fail.
      if (!(err instanceof ApiError) || err.status !== 409) throw err
      ctx.term.note(`training job ${id} could not be cancelled: ${err.message}`)
    }
    return 130
  }
  ctx.term.note(`training job ${id} keeps running; follow it again with: et follow ${id}`)
  if (ctx.json) ctx.result(parseAnswer(TrainingJobView, await client.get(`/training-jobs/${encodeURIComponent(id)}`), 'GET /training-jobs/:id'), '')
  return 130
}

function describe (job: TrainingJobView): string {
  const state = job['processing-state']
  const progress = job.progress
  const short = job.id.slice(0, 8)
  if (progress === null) {
    const log = job['processing-log'].split('\n')[0]?.slice(0, 100) ?? ''
    return `training ${short}: ${state === 'processing' ? `starting (attempt ${job.attempts})` : state}${log === '' ? '' : ` (${log})`}`
  }
  const max = progress['max-iter']
  const parts = [
    `training ${short}: ${max === null ? '' : `${bar(progress.iteration / Math.max(1, max))} `}${progress.iteration}/${max ?? '?'}`,
    `loss ${num(progress.loss)}`
  ]
  const accuracy = accuracyOf(progress['test-outputs'])
  if (accuracy !== null) parts.push(`accuracy ${num(accuracy)}`)
  if (job.attempts > 1) parts.push(`attempt ${job.attempts}`)
  return parts.join('  ')
}

function report (ctx: CommandContext, job: TrainingJobView): number {
  ctx.term.clearStatus()
  const state = job['processing-state']
  const progress = job.progress
  const took = job['finished-at'] !== null && job['started-at'] !== null ? ` in ${seconds(Date.parse(job['finished-at']) - Date.parse(job['started-at']))}` : ''
  if (state === 'finished_successfully') {
    const accuracy = progress === null ? null : accuracyOf(progress['test-outputs'])
    ctx.term.note(`training job ${job.id} finished_successfully${took}: ${progress?.iteration ?? '?'}/${progress?.['max-iter'] ?? '?'} iterations, loss ${num(progress?.loss)}${accuracy === null ? '' : `, accuracy ${num(accuracy)}`}`)
  } else {
    ctx.term.note(`training job ${job.id} ${state}: ${job['processing-log']}`)
  }
  ctx.result(job, '')
  return state === 'finished_successfully' ? 0 : 1
}

/** The test accuracy when the net reports one (Caffe's Accuracy layer: "accuracy"). */
function accuracyOf (outputs: Record<string, number>): number | null {
  if (outputs.accuracy !== undefined) return outputs.accuracy
  const key = Object.keys(outputs).find((k) => k.includes('accuracy'))
  return key === undefined ? null : outputs[key] ?? null
}
