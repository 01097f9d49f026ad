import { tmpdir } from 'node:os'
import { pathToFileURL } from 'node:url'
import { createBlobStore } from '../blobstore/index.js'
import { createScheduler } from '../schedulers/index.js'
import { JobDispatcher } from './changes/job-dispatcher.js'
import { ConfigError, helpText } from './config.js'
import { CouchDatabase, parseCouchUrl, scrubUrl } from './db/couch.js'
import { installDesign } from './db/design.js'
import { Documents } from './db/documents.js'
import { createJobHandler } from './jobs/job-handler.js'
import { JobStore } from './jobs/job-store.js'
import { createRunners } from './jobs/runners/index.js'
import { createWorkerId } from './jobs/worker-id.js'
import { createLogger } from './lib/logger.js'
import { SafeFetcher } from './net/safe-fetch.js'
import { JobActivity } from './metrics/job-activity.js'
import { createMetrics } from './metrics/metrics.js'
import { startMetricsServer } from './metrics/metrics-server.js'
import { loadWorkerConfig, workerFlags } from './worker-config.js'

/**
 * `elastic-thought-worker`: runs jobs on a GPU/CPU node. With --nsqd/--nsqlookupd it consumes
 * the server's NSQ topic; without, it follows the database's changes itself. Either way it
 * claims each job before running it, so any number of workers and servers can share one
 * database. SIGTERM: stop taking jobs, let running ones finish within --grace-seconds, then
 * return them to the queue and exit; a second signal exits at once. With --exit-when-idle it
 * also exits 0 on its own once nothing has run or started for that long (scale-in).
 */
export async function main (argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let parsed
  try {
    parsed = loadWorkerConfig(argv, env, tmpdir())
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`elastic-thought-worker: ${err.message}\n`)
      return 2
    }
    throw err
  }
  if (parsed.help) {
    process.stdout.write(helpText('elastic-thought-worker', workerFlags, 'Runs ElasticThought jobs (training, classification, datasets) from NSQ or straight from the database.'))
    return 0
  }
  const config = parsed.config
  const logger = createLogger(config.logLevel)
  const workerId = config.workerId ?? createWorkerId('worker')
  const location = parseCouchUrl(config.couchUrl, config.dbName)
  const couch = new CouchDatabase(location)
  await couch.ensureExists()
  await installDesign(couch)
  const store = new JobStore(new Documents(couch))
  const blobs = createBlobStore(config.blobStore)
  const fetcher = new SafeFetcher()
  const scheduler = createScheduler(config.scheduler, logger.child({ component: 'scheduler' }))
  // Workers report only their own work; cluster-wide job counts come from the servers.
  const metrics = config.metrics === undefined || config.metrics === null ? null : createMetrics()
  const activity = metrics?.activity ?? new JobActivity()
  const handler = createJobHandler({
    store,
    blobs,
    runners: createRunners({ fetcher, allowPrivateUrls: config.jobs.allowPrivateUrls, maxBytes: config.maxUploadBytes, caffeBin: config.jobs.caffeBin, gpu: config.jobs.gpu, concurrency: config.scheduler.concurrency }),
    workerId,
    leaseMs: config.jobs.leaseMs,
    maxAttempts: config.jobs.maxAttempts,
    workRoot: config.jobs.workDir,
    logger: logger.child({ component: 'worker' }),
    ...(metrics === null ? {} : { onEnded: metrics.jobEnded })
  })
  // Without NSQ the worker finds work itself, exactly as the server's dispatcher does.
  const dispatcher = config.scheduler.kind === 'in-process'
    ? new JobDispatcher({ couch, store, scheduler, maxAttempts: config.jobs.maxAttempts, reapIntervalMs: Math.max(1000, config.jobs.leaseMs / 2), name: `worker-${workerId}`, logger: logger.child({ component: 'dispatcher' }) })
    : undefined
  const consumer = scheduler.startConsumer(activity.wrap(handler))
  await dispatcher?.start()
  await consumer.ready
  const metricsServer = metrics === null || config.metrics === undefined || config.metrics === null ? undefined : await startMetricsServer(metrics, config.metrics)
  logger.info({ workerId, db: scrubUrl(location.serverUrl), scheduler: config.scheduler.kind, concurrency: config.scheduler.concurrency, exitWhenIdleMs: config.exitWhenIdleMs ?? null, metrics: metricsServer === undefined ? null : `${metricsServer.url}/metrics` }, 'elastic-thought-worker started')

  let stopping: Promise<void> | undefined
  let idleTimer: NodeJS.Timeout | undefined
  const stop = async (signal: string): Promise<void> => {
    stopping ??= (async () => {
      clearInterval(idleTimer)
      logger.info({ signal, graceMs: config.graceMs, running: consumer.running }, 'worker stopping')
      // Intake stops first, synchronously: after an idle check, no message can start in between.
      const draining = consumer.close({ graceMs: config.graceMs })
      await dispatcher?.stop()
      await draining
      await metricsServer?.close()
      await scheduler.close()
      await blobs.close()
      await fetcher.close()
      await couch.close()
      logger.info('worker stopped')
    })()
    await stopping
  }
  let signals = 0
  const onSignal = (signal: string) => () => {
    signals++
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now; running jobs will be reaped after their lease')
      process.exit(1)
    }
    stop(signal).then(() => process.exit(0), (err: unknown) => {
      logger.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', onSignal('SIGTERM'))
  process.on('SIGINT', onSignal('SIGINT'))

  const idleMs = config.exitWhenIdleMs ?? null
  if (idleMs !== null) {
    // Handlers are counted as running from the moment the consumer takes their message, in
    // the same tick, so a check that sees nothing running and closes the consumer right away
    // can never leave a job half done.
    idleTimer = setInterval(() => {
      if (stopping !== undefined || activity.idleMs() < idleMs) return
      logger.info({ idleMs: activity.idleMs() }, 'worker idle; exiting')
      stop('idle').then(() => process.exit(0), (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        process.exit(1)
      })
    }, Math.min(1000, Math.max(50, Math.floor(idleMs / 4))))
  }
  return -1
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const code = await main(process.argv.slice(2), process.env)
  if (code >= 0) process.exit(code)
}
