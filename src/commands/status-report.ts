import type { JobType } from '../../models/common.js'
import { jobTypes } from '../../models/documents.js'
import type { JobDocument } from '../../models/documents.js'
import type { CouchDatabase } from '../db/couch.js'
import { DESIGN } from '../db/design.js'
import { parseStored } from '../db/parse-stored.js'
import { countJobs, processingStates, queueDepth } from '../metrics/job-counts.js'
import type { JobCounts } from '../metrics/job-counts.js'

export interface RunningJob {
  id: string
  type: JobType
  tenant: string
  worker: string | null
  attempt: number
  startedAt: string | null
  leaseExpiresAt: string | null
  /** Seconds left on the lease (negative: expired, waiting for the reaper). */
  leaseRemainingSeconds: number | null
  /** Training progress as the worker last saved it. */
  progress: { iteration: number, maxIter: number | null, loss: number | null, accuracy: number | null, lr: number | null } | null
}

export interface LiveWorker {
  id: string
  jobs: number
  /** Seconds until the earliest of its leases expires. */
  leaseRemainingSeconds: number
}

/** A snapshot of the whole cluster, all tenants: what `elastic-thought status` shows. */
export interface StatusReport {
  at: string
  database: string
  counts: JobCounts
  queueDepth: number
  running: RunningJob[]
  workers: LiveWorker[]
}

/**
 * Reads the job counts (the `by-state` view's reduce) and every processing job (the same view
 * with documents) straight from the database. Throws the database's error.
 */
export async function collectStatus (couch: CouchDatabase, database: string, now = Date.now()): Promise<StatusReport> {
  const [counts, running] = await Promise.all([countJobs(couch), runningJobs(couch, now)])
  const workers = new Map<string, LiveWorker>()
  for (const job of running) {
    // A worker is live while it keeps renewing a lease; an expired one may be dead.
    if (job.worker === null || job.leaseRemainingSeconds === null || job.leaseRemainingSeconds <= 0) continue
    const seen = workers.get(job.worker)
    if (seen === undefined) workers.set(job.worker, { id: job.worker, jobs: 1, leaseRemainingSeconds: job.leaseRemainingSeconds })
    else workers.set(job.worker, { ...seen, jobs: seen.jobs + 1, leaseRemainingSeconds: Math.min(seen.leaseRemainingSeconds, job.leaseRemainingSeconds) })
  }
  return {
    at: new Date(now).toISOString(),
    database,
    counts,
    queueDepth: queueDepth(counts),
    running,
    workers: [...workers.values()].sort((a, b) => a.id.localeCompare(b.id))
  }
}

async function runningJobs (couch: CouchDatabase, now: number): Promise<RunningJob[]> {
  const perType = await Promise.all(jobTypes.map(async (type) => {
    const res = await couch.view(DESIGN, 'by-state', { startkey: [type, 'processing', ''], endkey: [type, 'processing', {}], reduce: false, include_docs: true })
    const jobs: RunningJob[] = []
    for (const row of res.rows) {
      let doc: JobDocument
      try {
        doc = parseStored(type, row.doc)
      } catch {
        // A document that changed between the view and its read, or one we cannot parse:
        // the next refresh shows it as it is then.
        continue
      }
      if (doc['processing-state'] !== 'processing') continue
      jobs.push(describe(doc, now))
    }
    return jobs
  }))
  return perType.flat().sort((a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? '') || a.id.localeCompare(b.id))
}

function describe (doc: JobDocument, now: number): RunningJob {
  const lease = doc['lease-expires-at']
  const progress = doc.type === 'training-job' ? doc.progress : null
  return {
    id: doc._id,
    type: doc.type,
    tenant: doc['user-id'].replace(/^user:/, ''),
    worker: doc['worker-id'],
    attempt: doc.attempts,
    startedAt: doc['started-at'],
    leaseExpiresAt: lease,
    leaseRemainingSeconds: lease === null ? null : Math.round((Date.parse(lease) - now) / 1000),
    progress: progress === null
      ? null
      : { iteration: progress.iteration, maxIter: progress['max-iter'], loss: progress.loss, accuracy: progress['test-outputs'].accuracy ?? null, lr: progress.lr }
  }
}

/** Widest line formatStatus writes, so the table fits a 100-column terminal. */
export const STATUS_WIDTH = 99

const SHORT_TYPE: Record<JobType, string> = { datafile: 'datafile', dataset: 'dataset', 'training-job': 'training', 'classify-job': 'classify' }

/** The plain-text view: queue per type and state, running jobs with progress, live workers. */
export function formatStatus (report: StatusReport): string {
  const lines: string[] = []
  lines.push(`ElasticThought status at ${report.at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`)
  lines.push(fit(`Database: ${report.database}`, STATUS_WIDTH))
  lines.push('')

  const headers = ['JOBS', 'PENDING', 'PROCESSING', 'FINISHED', 'FAILED', 'CANCELLED']
  const rows = jobTypes.map((type) => [SHORT_TYPE[type], ...processingStates.map((state) => String(report.counts[type][state]))])
  rows.push(['all', ...processingStates.map((state) => String(jobTypes.reduce((n, type) => n + report.counts[type][state], 0)))])
  lines.push(...table(headers, rows, [10, 8, 11, 9, 7, 10], ['left', 'right', 'right', 'right', 'right', 'right']))
  lines.push(`Queue depth (pending + processing): ${report.queueDepth}`)
  lines.push('')

  if (report.running.length === 0) {
    lines.push('Running jobs: none')
  } else {
    lines.push(`Running jobs: ${report.running.length}`)
    const fixed = [8, 8, 8, 0, 3, 11, 7, 6, 7]
    // The worker column takes whatever the others leave of the width.
    fixed[3] = STATUS_WIDTH - fixed.reduce((a, b) => a + b, 0) - 2 * (fixed.length - 1)
    lines.push(...table(
      ['JOB', 'TYPE', 'TENANT', 'WORKER', 'TRY', 'ITERATION', 'LOSS', 'ACC', 'LEASE'],
      report.running.map((job) => [
        // Ids are 32 hex digits: a prefix names the job, as short commit hashes do (--json has them whole).
        job.id.slice(0, 8),
        SHORT_TYPE[job.type],
        job.tenant,
        job.worker ?? '-',
        String(job.attempt),
        job.progress === null ? '-' : `${job.progress.iteration}/${job.progress.maxIter ?? '?'}`,
        formatNumber(job.progress?.loss ?? null),
        formatNumber(job.progress?.accuracy ?? null),
        formatLease(job.leaseRemainingSeconds)
      ]),
      fixed,
      ['left', 'left', 'left', 'left', 'right', 'right', 'right', 'right', 'right']
    ))
  }
  lines.push('')

  if (report.workers.length === 0) {
    lines.push('Live workers: none holding a lease (idle workers hold none and are not listed)')
  } else {
    lines.push(`Live workers: ${report.workers.length} holding a lease (idle workers hold none and are not listed)`)
    lines.push(...table(['WORKER', 'JOBS', 'LEASE'], report.workers.map((w) => [w.id, String(w.jobs), formatLease(w.leaseRemainingSeconds)]), [STATUS_WIDTH - 4 - 7 - 4, 4, 7], ['left', 'right', 'right']))
  }
  return lines.join('\n') + '\n'
}

function table (headers: string[], rows: string[][], widths: number[], align: Array<'left' | 'right'>): string[] {
  const line = (cells: string[]): string => cells.map((cell, i) => {
    const width = widths[i] ?? cell.length
    const text = fit(cell, width)
    return align[i] === 'right' ? text.padStart(width) : text.padEnd(width)
  }).join('  ').trimEnd()
  return [line(headers), ...rows.map(line)]
}

/** Cuts `text` to `width`, keeping both ends: ids and worker names differ at either end. */
function fit (text: string, width: number): string {
  if (text.length <= width) return text
  if (width <= 1) return text.slice(0, width)
  const head = Math.ceil((width - 1) / 2)
  return `${text.slice(0, head)}…${text.slice(text.length - (width - 1 - head))}`
}

function formatNumber (value: number | null): string {
  if (value === null) return '-'
  // Training losses fall to 1e-5 and below; four decimals would show them all as 0.0000.
  if (value !== 0 && Math.abs(value) < 0.001) return value.toExponential(1)
  return Math.abs(value) >= 1000 ? value.toExponential(2) : value.toFixed(4)
}

function formatLease (seconds: number | null): string {
  if (seconds === null) return '-'
  if (seconds <= 0) return 'expired'
  if (seconds < 120) return `${seconds}s`
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`
  return `${Math.floor(seconds / 3600)}h${String(Math.floor(seconds / 60) % 60).padStart(2, '0')}m`
}
