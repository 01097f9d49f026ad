import { z } from 'zod'
import { ConfigError, LogLevel, helpText, readFlags } from '../config.js'
import type { FlagSpec } from '../config.js'
import { CouchDatabase } from '../db/couch.js'
import { createLogger } from '../lib/logger.js'
import { CLOUDWATCH_NAMESPACE, CloudWatchPublisher, QUEUE_DEPTH_METRIC } from '../metrics/cloudwatch-publisher.js'
import { countJobs, queueDepth } from '../metrics/job-counts.js'
import { databaseFlags, resolveDatabase } from './database-flags.js'
import { processIo } from './status.js'
import type { CommandIo } from './status.js'

export const publishMetricsFlags: FlagSpec[] = [
  ...databaseFlags,
  { name: 'cluster', type: 'string', help: 'value of the Cluster dimension (default "default")' },
  { name: 'interval', type: 'string', help: 'seconds between data points (default 60)' },
  { name: 'region', type: 'string', help: 'AWS region (default: AWS_REGION or the shared AWS config)' },
  { name: 'cloudwatch-endpoint', type: 'string', help: 'CloudWatch endpoint URL instead of the region\'s (tests, VPC endpoints)' },
  { name: 'once', type: 'boolean', help: 'publish one set of data points and exit (cron); exit 1 if it failed' },
  { name: 'log-level', type: 'string', help: 'fatal, error, warn, info (default), debug, trace or silent' },
  { name: 'help', type: 'boolean', help: 'show this help' }
]

const SUMMARY = `Puts the queue depth into CloudWatch every --interval seconds, for scaling GPU workers: namespace
${CLOUDWATCH_NAMESPACE}, metric ${QUEUE_DEPTH_METRIC} (jobs pending or processing, all tenants) with dimension Cluster, also
per JobType, plus PendingJobs and ProcessingJobs. Counts are read from the database, so one
publisher per cluster is enough. AWS credentials come from the usual environment variables,
shared files or the instance profile (it needs cloudwatch:PutMetricData).`

const RawPublish = z.object({
  cluster: z.string().min(1).max(255, 'must be at most 255 characters').default('default'),
  interval: z.coerce.number({ error: 'must be a number' }).min(1, 'must be at least 1 second').max(86_400).default(60),
  region: z.string().regex(/^[a-z0-9-]+$/, 'must be a region name like eu-west-1').optional(),
  'cloudwatch-endpoint': z.url({ protocol: /^https?$/, error: 'must be an http(s):// URL' }).optional(),
  once: z.boolean().default(false),
  'log-level': LogLevel
})

/**
 * `elastic-thought publish-metrics`: DeepStyle's NumJobsReadyOrBeingProcessed loop, with the
 * counts from the `by-state` view. Runs until SIGTERM/SIGINT (exit 0); a failed round is
 * logged and the next one tries again.
 */
export async function runPublishMetrics (argv: string[], env: NodeJS.ProcessEnv, io: CommandIo = processIo()): Promise<number> {
  let options: z.infer<typeof RawPublish>
  let target
  try {
    const raw = readFlags(publishMetricsFlags, argv, env)
    if (raw.help === true) {
      io.out(helpText('elastic-thought publish-metrics', publishMetricsFlags, SUMMARY))
      return 0
    }
    const parsed = RawPublish.safeParse(raw)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw new ConfigError(`invalid --${String(issue?.path[0] ?? '')}: ${issue?.message ?? 'invalid value'}`)
    }
    options = parsed.data
    target = resolveDatabase(raw)
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`elastic-thought publish-metrics: ${err.message}\n`)
      return 2
    }
    throw err
  }

  const logger = createLogger(options['log-level'])
  const couch = new CouchDatabase(target.location)
  // Read here, like every other setting, rather than by the SDK from process.env behind our back.
  const keys = env.AWS_ACCESS_KEY_ID !== undefined && env.AWS_SECRET_ACCESS_KEY !== undefined
    ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN }
    : undefined
  const publisher = new CloudWatchPublisher({ cluster: options.cluster, region: options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION, endpoint: options['cloudwatch-endpoint'], credentials: keys })
  const round = async (): Promise<boolean> => {
    try {
      const counts = await countJobs(couch)
      await publisher.publish(counts)
      logger.info({ namespace: CLOUDWATCH_NAMESPACE, cluster: options.cluster, queueDepth: queueDepth(counts) }, 'queue depth published')
      return true
    } catch (err) {
      logger.warn({ err }, 'queue depth not published; trying again next round')
      return false
    }
  }

  const stop = new AbortController()
  const onSignal = (): void => { stop.abort() }
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  try {
    if (options.once) return (await round()) ? 0 : 1
    logger.info({ database: target.shown, cluster: options.cluster, intervalSeconds: options.interval }, 'publishing queue depth to CloudWatch')
    const intervalMs = options.interval * 1000
    let next = Date.now()
    while (!stop.signal.aborted) {
      await round()
      // On a fixed schedule, so a slow round does not shift every later data point.
      next += intervalMs
      if (next < Date.now()) next = Date.now() + intervalMs
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, next - Date.now())
        stop.signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
      })
    }
    logger.info('publisher stopped')
    return 0
  } finally {
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
    publisher.close()
    await couch.close()
  }
}
