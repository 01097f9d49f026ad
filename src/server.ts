import { pathToFileURL } from 'node:url'
import { ConfigError, helpText, loadServerConfig, serverFlags } from './config.js'
import { createLogger } from './lib/logger.js'
import type { MetricsServer } from './metrics/metrics-server.js'

/**
 * Subcommands: `elastic-thought <name> [flags]`; each resolves with its exit code. Each loads
 * only its own modules: `status` starts in a fraction of the server's load time.
 */
const commands: Record<string, (argv: string[], env: NodeJS.ProcessEnv) => Promise<number>> = {
  serve,
  status: async (argv, env) => await (await import('./commands/status.js')).runStatus(argv, env),
  'publish-metrics': async (argv, env) => await (await import('./commands/publish-metrics.js')).runPublishMetrics(argv, env)
}

const SUMMARY = `The ElasticThought API server: deep-learning training as a service over Caffe.

Commands:
  elastic-thought [serve] [flags]        run the API server (the default)
  elastic-thought status [flags]         queue, running jobs and live workers (see status --help)
  elastic-thought publish-metrics [...]  put the queue depth into CloudWatch (see publish-metrics --help)`

/**
 * `elastic-thought [command] [flags]`: the first word, when it is not a flag, names a
 * subcommand; without one it serves. Returns the exit code, or -1 while the server runs.
 */
export async function main (argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const first = argv[0]
  if (first === undefined || first.startsWith('-')) return await serve(argv, env)
  const command = commands[first]
  if (command === undefined) {
    process.stderr.write(`elastic-thought: unknown command '${first}' (commands: ${Object.keys(commands).join(', ')}; see --help)\n`)
    return 2
  }
  return await command(argv.slice(1), env)
}

/** `elastic-thought serve`: parse config → build deps → build app → listen; close on SIGTERM/SIGINT. */
async function serve (argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let parsed
  try {
    parsed = loadServerConfig(argv, env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`elastic-thought: ${err.message}\n`)
      return 2
    }
    throw err
  }
  if (parsed.help) {
    process.stdout.write(helpText('elastic-thought', serverFlags, SUMMARY))
    return 0
  }
  const config = parsed.config
  const logger = createLogger(config.logLevel)
  const [{ buildApp }, { createDeps }, { startMetricsServer }] = await Promise.all([import('./app.js'), import('./deps.js'), import('./metrics/metrics-server.js')])
  const deps = await createDeps(config, logger)
  const app = await buildApp(deps.services, { registration: config.registration, maxUploadBytes: config.maxUploadBytes, logger, publicUrl: config.publicUrl ?? null, trustProxy: config.trustProxy ?? [], ...(deps.metrics === null ? {} : { metrics: deps.metrics }) })
  let metricsServer: MetricsServer | undefined

  let stopping: Promise<void> | undefined
  const stop = async (signal: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ signal }, 'shutting down')
      // A second signal, or a stuck close, must still end the process.
      const force = setTimeout(() => {
        logger.error('shutdown took longer than 15 s; exiting')
        process.exit(1)
      }, 15_000)
      force.unref()
      await metricsServer?.close()
      await app.close()
      await deps.close()
      logger.info('stopped')
    })()
    await stopping
  }
  const onSignal = (signal: string) => () => {
    stop(signal).then(() => process.exit(0), (err: unknown) => {
      logger.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.once('SIGTERM', onSignal('SIGTERM'))
  process.once('SIGINT', onSignal('SIGINT'))

  try {
    const address = await app.listen({ host: config.host, port: config.port })
    logger.info({ address, registration: config.registration, blobStore: config.blobStore.kind, scheduler: config.scheduler.kind }, 'elastic-thought listening')
    if (deps.metrics !== null && config.metrics !== undefined && config.metrics !== null) {
      metricsServer = await startMetricsServer(deps.metrics, config.metrics)
      logger.info({ url: `${metricsServer.url}/metrics` }, 'metrics listening')
    }
  } catch (err) {
    logger.fatal({ err }, 'could not listen')
    await app.close()
    await deps.close()
    return 1
  }
  return -1
}

// Run when executed directly (`node dist/src/server.js`, `tsx src/server.ts`); the bin shim imports main().
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const code = await main(process.argv.slice(2), process.env)
  if (code >= 0) process.exit(code)
}
