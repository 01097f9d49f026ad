import { createBlobStore } from '../blobstore/index.js'
import type { BlobStore } from '../blobstore/blob-store.js'
import type { ServerConfig } from './config.js'
import { JobDispatcher } from './changes/job-dispatcher.js'
import { createScheduler } from '../schedulers/index.js'
import type { Scheduler } from '../schedulers/scheduler.js'
import { createJobHandler } from './jobs/job-handler.js'
import { JobStore } from './jobs/job-store.js'
import { createRunners } from './jobs/runners/index.js'
import { createWorkerId } from './jobs/worker-id.js'
import { CouchDatabase, parseCouchUrl, scrubUrl } from './db/couch.js'
import type { CouchLocation } from './db/couch.js'
import { installDesign } from './db/design.js'
import { DocumentCache } from './db/document-cache.js'
import { Documents } from './db/documents.js'
import { startEmbeddedCouch } from './db/embedded-couch.js'
import type { EmbeddedCouch } from './db/embedded-couch.js'
import { OwnedRepository } from './db/owned-repository.js'
import type { Logger } from './lib/logger.js'
import { SafeFetcher } from './net/safe-fetch.js'
import type { AppServices } from './plugins/deps.js'
import { createHealthCheck, databaseProbe } from './services/health.js'
import { checkPrototxt } from './services/prototxt-check.js'
import { PrototxtIntake } from './services/prototxt-intake.js'
import { Resources } from './services/resources.js'
import { UserService } from './services/user-service.js'
import { Uploads } from './services/uploads.js'
import { Artifacts } from './services/artifacts.js'
import { createChangeHub } from './services/change-hub.js'
import { checkNotifyUrl } from './webhooks/notify-url-check.js'
import { WebhookDeliverer } from './webhooks/webhook-deliverer.js'
import type { WebhookTuning } from './webhooks/webhook-deliverer.js'
import { WebhookSecrets } from './webhooks/webhook-secrets.js'
import { WebhookSender } from './webhooks/webhook-sender.js'
import { writeEmbeddedDbFile } from './commands/embedded-db-file.js'
import { CachedJobCounts } from './metrics/job-counts.js'
import { createMetrics } from './metrics/metrics.js'
import type { Metrics } from './metrics/metrics.js'

export interface Deps {
  services: AppServices
  couch: CouchDatabase
  documents: Documents
  blobs: BlobStore
  store: JobStore
  scheduler: Scheduler
  dispatcher: JobDispatcher
  /** Prometheus metrics when the config asks for them (--metrics-port), else null. */
  metrics: Metrics | null
  /** Closes everything created here, in reverse order of creation. Idempotent. */
  close: () => Promise<void>
}

/** What a caller of createDeps may change beyond the config (tests, benchmarks). */
export interface DepsOptions {
  /**
   * Run jobs in this process when the scheduler is in-process (default true). Off for tests
   * and benchmarks of the API alone, which then see documents stay where they put them.
   */
  runJobs?: boolean
  /** Webhook delivery tuning (tests shorten it); false: this process sends no webhooks. */
  webhooks?: WebhookTuning | false
}

/**
 * The only place implementations are chosen: builds every backend and service from the
 * parsed config, and closes them again in reverse order.
 */
export async function createDeps (config: ServerConfig, logger: Logger, options: DepsOptions = {}): Promise<Deps> {
  const closers: Array<() => Promise<void>> = []
  try {
    let location: CouchLocation
    if (config.database.kind === 'embedded') {
      const dbLog = logger.child({ component: 'embedded-db' })
      const embedded: EmbeddedCouch = await startEmbeddedCouch({
        dataDir: config.database.dir,
        onExit: (code, signal) => dbLog.error({ code, signal }, 'embedded database exited; restarting it'),
        onRestartFailed: (err) => dbLog.fatal({ err }, 'embedded database could not be restarted')
      })
      closers.push(embedded.close)
      if (embedded.socketPath !== undefined) {
        // Lets `elastic-thought status --data-dir …` find this server's database.
        const removePointer = writeEmbeddedDbFile(config.dataDir, { socketPath: embedded.socketPath, dbName: config.database.dbName })
        closers.push(async () => { removePointer() })
      }
      location = { serverUrl: embedded.serverUrl, dbName: config.database.dbName, ...(embedded.socketPath === undefined ? {} : { socketPath: embedded.socketPath }) }
      logger.info({ dir: config.database.dir, childPid: embedded.pid }, 'embedded database started')
    } else {
      location = parseCouchUrl(config.database.url, config.database.dbName)
      logger.info({ url: scrubUrl(location.serverUrl), db: location.dbName }, 'using CouchDB server')
    }
    const couch = new CouchDatabase(location)
    closers.push(async () => { await couch.close() })
    await couch.ensureExists()
    await installDesign(couch)

    const cache = new DocumentCache()
    const documents = new Documents(couch, cache)
    const blobs = createBlobStore(config.blobStore)
    closers.push(async () => { await blobs.close() })
    const fetcher = new SafeFetcher()
    closers.push(async () => { await fetcher.close() })

    const users = new UserService(documents, config.admin)
    const repo = new OwnedRepository(documents)
    const intake = new PrototxtIntake({ fetcher, blobs, check: checkPrototxt, allowPrivateUrls: config.jobs.allowPrivateUrls })
    const resources = new Resources({ repo, intake, blobs, checkNotifyUrl: async (url) => { await checkNotifyUrl(url, config.jobs.allowPrivateUrls) } })
    const health = createHealthCheck({ database: databaseProbe(couch), blobStore: async () => { await blobs.exists('health-probe') } })

    const store = new JobStore(documents)
    const metrics = config.metrics === undefined || config.metrics === null ? null : createMetrics({ counts: new CachedJobCounts(couch) })
    const scheduler = createScheduler(config.scheduler, logger.child({ component: 'scheduler' }))
    closers.push(async () => { await scheduler.close() })
    // Webhooks go out from servers only (never workers), driven by the changes feed below, so
    // jobs run anywhere get them; delivery state lives in the job documents.
    const webhookSecrets = new WebhookSecrets(documents)
    const tuning = options.webhooks === false ? {} : options.webhooks ?? {}
    const webhookSender = new WebhookSender({ allowPrivate: config.jobs.allowPrivateUrls, timeoutMs: tuning.timeoutMs ?? 10_000 })
    closers.push(async () => { await webhookSender.close() })
    const webhooks = options.webhooks === false
      ? undefined
      : new WebhookDeliverer({ ...tuning, docs: documents, secrets: webhookSecrets, sender: webhookSender, senderId: createWorkerId('server'), timeoutMs: tuning.timeoutMs ?? 10_000, logger: logger.child({ component: 'webhooks' }) })
    const changeHub = createChangeHub({
      history: { position: async () => await couch.updateSeq(), read: async (since, limit) => await couch.changesSince(since, limit) }
    })
    closers.push(async () => { changeHub.close() })
    // One feed serves the dispatcher and the read cache, which is only trusted while the feed
    // is connected (see DocumentCache).
    const dispatcher = new JobDispatcher({
      couch,
      store,
      scheduler,
      maxAttempts: config.jobs.maxAttempts,
      // Often enough that a dead worker's job waits little more than its lease.
      reapIntervalMs: Math.max(1000, config.jobs.leaseMs / 2),
      logger: logger.child({ component: 'dispatcher' }),
      onLive: (live) => cache.setLive(live),
      onChange: (change) => {
        cache.invalidate(change.id, change.changes?.[0]?.rev)
        if (change.id.startsWith('user:')) users.forget(change.id)
        changeHub.publish(change)
        webhooks?.onChange(change)
      }
    })
    await dispatcher.start()
    closers.push(async () => { await dispatcher.stop() })
    if (webhooks !== undefined) {
      await webhooks.start()
      closers.push(async () => { await webhooks.stop() })
    }

    if (config.scheduler.kind === 'in-process' && options.runJobs !== false) {
      // Jobs run in this process; with NSQ they run in elastic-thought-worker processes.
      const handler = createJobHandler({
        store,
        blobs,
        runners: createRunners({ fetcher, allowPrivateUrls: config.jobs.allowPrivateUrls, maxBytes: config.maxUploadBytes, caffeBin: config.jobs.caffeBin, gpu: config.jobs.gpu, concurrency: config.scheduler.concurrency }),
        workerId: createWorkerId('server'),
        leaseMs: config.jobs.leaseMs,
        maxAttempts: config.jobs.maxAttempts,
        workRoot: config.jobs.workDir,
        logger: logger.child({ component: 'worker' }),
        ...(metrics === null ? {} : { onEnded: metrics.jobEnded })
      })
      const consumer = scheduler.startConsumer(metrics === null ? handler : metrics.activity.wrap(handler), { concurrency: config.scheduler.concurrency })
      closers.push(async () => { await consumer.close({ graceMs: 10_000 }) })
    }

    let closed: Promise<void> | undefined
    return {
      services: { users, resources, health, uploads: new Uploads(blobs, config.maxUploadBytes), artifacts: new Artifacts({ repo, blobs }), changeHub, webhookSecrets },
      couch,
      documents,
      blobs,
      store,
      scheduler,
      dispatcher,
      metrics,
      close: async () => {
        closed ??= closeAll(closers)
        await closed
      }
    }
  } catch (err) {
    await closeAll(closers)
    throw err
  }
}

async function closeAll (closers: Array<() => Promise<void>>): Promise<void> {
  for (const close of closers.reverse()) {
    try {
      await close()
    } catch {
      // Closing is best effort: one backend failing to close must not keep the others open.
    }
  }
}
