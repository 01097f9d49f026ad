import { resolve } from 'node:path'
import { z } from 'zod'
import type { BlobStoreConfig } from '../blobstore/blob-store-config.js'
import { SchedulerConfig } from '../schedulers/scheduler-config.js'
import { ConfigError, CouchUrl, DbName, JobFlagValues, PositiveInt, blobStoreFromFlag, jobFlags, readFlags } from './config.js'
import type { FlagSpec } from './config.js'

export const workerFlags: FlagSpec[] = [
  { name: 'couch-url', type: 'string', aliases: ['sync-gw', 'sync-gw-url'], help: 'CouchDB URL with the database, e.g. http://admin:pw@db:5984/elastic-thought (required)' },
  { name: 'db-name', type: 'string', help: 'database name when --couch-url has none (default elastic-thought)' },
  { name: 'blob-store-url', type: 'string', help: 'the blob store the server uses: s3://…, cbfs://…, http(s)://… or a shared file:///dir (required)' },
  { name: 'nsqd', type: 'string', multiple: true, help: 'nsqd TCP address host:4150 to consume from (repeatable)' },
  { name: 'nsqlookupd', type: 'string', multiple: true, help: 'nsqlookupd HTTP address host:4161 to discover nsqd (repeatable)' },
  { name: 'topic', type: 'string', help: 'NSQ topic (default elastic-thought)' },
  { name: 'channel', type: 'string', help: 'NSQ channel (default elastic-thought-worker)' },
  { name: 'concurrency', type: 'string', help: 'jobs run at once (default 1)' },
  { name: 'work-dir', type: 'string', help: 'where job work dirs are made (default: the system temp dir)' },
  { name: 'grace-seconds', type: 'string', help: 'on SIGTERM, how long running jobs may finish before they are returned to the queue (default 30)' },
  { name: 'worker-id', type: 'string', help: 'name in job documents (default worker@<host>:<pid>:<random>)' },
  { name: 'exit-when-idle', type: 'string', help: 'exit 0 after this many seconds with no job running or started (scale-in; never mid-job)' },
  ...jobFlags
]

const RawWorkerConfig = z.object({
  'couch-url': CouchUrl,
  'db-name': DbName,
  'blob-store-url': z.string().min(1, 'is required'),
  nsqd: z.array(z.string()).default([]),
  nsqlookupd: z.array(z.string()).default([]),
  topic: z.string().default('elastic-thought'),
  channel: z.string().default('elastic-thought-worker'),
  concurrency: PositiveInt('concurrency', 256).default(1),
  'work-dir': z.string().min(1).optional(),
  'grace-seconds': z.coerce.number({ error: 'must be a number' }).min(0, 'must be 0 or more').max(86_400).default(30),
  'worker-id': z.string().min(1).max(200).optional(),
  'exit-when-idle': z.coerce.number({ error: 'must be a number of seconds' }).gt(0, 'must be more than 0 seconds').max(30 * 86_400).optional(),
  ...JobFlagValues
})

export interface WorkerConfig {
  couchUrl: string
  dbName: string
  blobStore: BlobStoreConfig
  /** NSQ when nsqd/nsqlookupd are given; otherwise the worker follows the database itself. */
  scheduler: SchedulerConfig
  workerId: string | null
  jobs: { maxAttempts: number, leaseMs: number, allowPrivateUrls: boolean, caffeBin: string | null, gpu: string | null, workDir: string }
  graceMs: number
  maxUploadBytes: number
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Exit after this long with nothing running and nothing started; null: run until signalled. */
  exitWhenIdleMs?: number | null
  /** Where to serve Prometheus metrics; absent or null: not served. */
  metrics?: { host: string, port: number } | null
}

export type ParsedWorkerCommand = { help: true } | { help: false, config: WorkerConfig }

/** Parses the worker's flags and ET_* variables once; ConfigError names the flag in one line. */
export function loadWorkerConfig (argv: string[], env: NodeJS.ProcessEnv, tmp: string): ParsedWorkerCommand {
  const raw = readFlags(workerFlags, argv, env)
  if (raw.help === true) return { help: true }
  delete raw.help
  const parsed = RawWorkerConfig.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const flag = String(issue?.path[0] ?? '')
    // zod leaves `input` out of its issues, so whether the flag was given is read from `raw`:
    // `--concurrency abc` is a bad number, not a missing flag.
    const message = issue?.code === 'invalid_type' && raw[flag] === undefined ? 'is required' : issue?.message ?? 'invalid value'
    throw new ConfigError(`invalid --${flag}: ${message}`)
  }
  const v = parsed.data
  const blobStore = blobStoreFromFlag(v['blob-store-url'], env)
  if (blobStore.kind === 'memory') throw new ConfigError('invalid --blob-store-url: a worker needs the store the server uses, not memory:')
  const useNsq = v.nsqd.length > 0 || v.nsqlookupd.length > 0
  const scheduler = SchedulerConfig.safeParse(useNsq
    ? { kind: 'nsq', nsqd: v.nsqd, lookupd: v.nsqlookupd, topic: v.topic, channel: v.channel, concurrency: v.concurrency, maxAttempts: v['max-attempts'], msgTimeoutMs: Math.min(v['lease-seconds'] * 1000 * 2, 900_000) }
    : { kind: 'in-process', concurrency: v.concurrency, maxAttempts: v['max-attempts'] })
  if (!scheduler.success) {
    const issue = scheduler.error.issues[0]
    throw new ConfigError(`invalid --${String(issue?.path[0] ?? 'nsqd')}: ${issue?.message ?? 'invalid'}`)
  }
  return {
    help: false,
    config: {
      couchUrl: v['couch-url'],
      dbName: v['db-name'],
      blobStore,
      scheduler: scheduler.data,
      workerId: v['worker-id'] ?? null,
      jobs: {
        maxAttempts: v['max-attempts'],
        leaseMs: v['lease-seconds'] * 1000,
        allowPrivateUrls: v['allow-private-urls'],
        caffeBin: v['caffe-bin'] ?? null,
        gpu: v.gpu ?? null,
        workDir: resolve(v['work-dir'] ?? tmp, 'elastic-thought-work')
      },
      graceMs: v['grace-seconds'] * 1000,
      maxUploadBytes: v['max-upload-mb'] * 1024 * 1024,
      logLevel: v['log-level'],
      exitWhenIdleMs: v['exit-when-idle'] === undefined ? null : Math.round(v['exit-when-idle'] * 1000),
      metrics: v['metrics-port'] === undefined ? null : { host: v['metrics-host'], port: v['metrics-port'] }
    }
  }
}
