import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { jobTypes } from '../../models/documents.js'
import type { JobDocument } from '../../models/documents.js'
import { JobActivity } from './job-activity.js'
import { processingStates, queueDepth } from './job-counts.js'
import type { JobCounts } from './job-counts.js'

/** Where cluster-wide job counts come from (the database view, cached); none on workers. */
export interface JobCountSource {
  get: () => Promise<JobCounts>
}

export interface MetricsOptions {
  /** Cluster-wide counts: only processes that should report them (the API servers). */
  counts?: JobCountSource | undefined
  /** Node's process metrics (CPU, memory, event loop, GC); default true. */
  processMetrics?: boolean
}

/**
 * One process's Prometheus registry. Job counts come from the database, so every server reports
 * the whole cluster; durations, attempts, running jobs and HTTP latency are this process's own.
 * `render()` never throws for an unreachable database: the counts are left out and
 * `elastic_thought_database_up` says 0.
 */
export interface Metrics {
  readonly registry: Registry
  /** Wrap the job handler with `activity.wrap()` so durations know which runs were ours. */
  readonly activity: JobActivity
  /** For JobHandlerDeps.onEnded: a job this process handled reached an end state. */
  jobEnded: (job: JobDocument) => void
  /** One answered HTTP request; `route` is the route pattern, never the raw URL. */
  observeHttp: (method: string, route: string, statusCode: number, seconds: number) => void
  render: () => Promise<{ contentType: string, body: string }>
}

const PREFIX = 'elastic_thought_'

// Jobs run from a fraction of a second (a datafile check) to a day (a long training run).
const DURATION_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 43_200, 86_400]
const ATTEMPT_BUCKETS = [1, 2, 3, 4, 5, 10, 20, 50, 100]
// Uploads and followed logs keep requests open far longer than ordinary API calls.
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

export function createMetrics (options: MetricsOptions = {}): Metrics {
  const registry = new Registry()
  const activity = new JobActivity()
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry })

  const counts = options.counts
  if (counts !== undefined) {
    // Read once per scrape by all three metrics; the source caches and coalesces.
    const read = async (): Promise<JobCounts | undefined> => await counts.get().catch(() => undefined)
    // eslint-disable-next-line no-new
    new Gauge({
      name: `${PREFIX}database_up`,
      help: '1 if the job counts could be read from the database at this scrape, else 0',
      registers: [registry],
      async collect () {
        this.set((await read()) === undefined ? 0 : 1)
      }
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: `${PREFIX}jobs`,
      help: 'Jobs in the database by type and processing state (whole cluster, all tenants)',
      labelNames: ['type', 'state'] as const,
      registers: [registry],
      async collect () {
        const current = await read()
        this.reset()
        if (current === undefined) return
        for (const type of jobTypes) {
          for (const state of processingStates) this.set({ type, state }, current[type][state])
        }
      }
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: `${PREFIX}queue_depth`,
      help: 'Jobs pending or processing (whole cluster): the CloudWatch QueueDepth',
      registers: [registry],
      async collect () {
        const current = await read()
        // A label-less gauge always has a sample (0) unless removed: better none than a false 0.
        if (current === undefined) this.remove()
        else this.set(queueDepth(current))
      }
    })
  }

  // eslint-disable-next-line no-new
  new Gauge({
    name: `${PREFIX}jobs_in_progress`,
    help: 'Job messages this process is handling now',
    registers: [registry],
    collect () {
      this.set(activity.running)
    }
  })
  const duration = new Histogram({
    name: `${PREFIX}job_duration_seconds`,
    help: 'Run time of the final attempt of jobs this process ran, from claim to end state',
    labelNames: ['type', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry]
  })
  const attempts = new Histogram({
    name: `${PREFIX}job_attempts`,
    help: 'Attempts used by jobs that reached an end state in this process',
    labelNames: ['type', 'outcome'] as const,
    buckets: ATTEMPT_BUCKETS,
    registers: [registry]
  })
  const http = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'HTTP request latency by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_BUCKETS,
    registers: [registry]
  })

  return {
    registry,
    activity,
    jobEnded: (job) => {
      const labels = { type: job.type, outcome: job['processing-state'] }
      attempts.observe(labels, job.attempts)
      const started = job['started-at'] === null ? NaN : Date.parse(job['started-at'])
      const finished = job['finished-at'] === null ? NaN : Date.parse(job['finished-at'])
      const since = activity.handlingSince(job._id)
      // A job failed at claim time for being out of attempts carries an older attempt's
      // started-at: only a claim made during this handling is a run this process timed.
      if (since !== undefined && started >= since && finished >= started) duration.observe(labels, (finished - started) / 1000)
    },
    observeHttp: (method, route, statusCode, seconds) => {
      http.observe({ method, route, status_code: String(statusCode) }, seconds)
    },
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() })
  }
}
