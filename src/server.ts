import { pathToFileURL } from 'node:url'
import { buildApp } from './app.js'
import { ConfigError, helpText, loadServerConfig, serverFlags } from './config.js'
import { createDeps } from './deps.js'
import { createLogger } from './lib/logger.js'

/** `elastic-thought`: parse config → build deps → build app → listen; close on SIGTERM/SIGINT. */
export async function main (argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
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
    process.stdout.write(helpText('elastic-thought', serverFlags, 'The ElasticThought API server: deep-learning training as a service over Caffe.'))
    return 0
  }
  const config = parsed.config
  const logger = createLogger(config.logLevel)
  const deps = await createDeps(config, logger)
  const app = await buildApp(deps.services, { registration: config.registration, maxUploadBytes: config.maxUploadBytes, logger })

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
  } catch (err) {
    logger.fatal({ err }, 'could not listen')
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
