import Fastify from 'fastify'
import { metricsRoutes } from '../../routes/metrics.js'
import type { Metrics } from './metrics.js'

/** A running metrics listener; `close()` is idempotent. */
export interface MetricsServer {
  /** e.g. `http://127.0.0.1:9464` */
  readonly url: string
  readonly port: number
  close: () => Promise<void>
}

/**
 * Serves `GET /metrics` on its own address, apart from the API: Prometheus scrapes without
 * credentials, so the port is meant to be reachable only from inside the deployment
 * (loopback by default, a private network or security group otherwise).
 */
export async function startMetricsServer (metrics: Pick<Metrics, 'render'>, where: { host: string, port: number }): Promise<MetricsServer> {
  const app = Fastify({ logger: false })
  await app.register(metricsRoutes, { render: metrics.render })
  await app.listen({ host: where.host, port: where.port })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : where.port
  const host = where.host.includes(':') ? `[${where.host}]` : where.host
  let closed: Promise<void> | undefined
  return {
    url: `http://${host}:${port}`,
    port,
    close: async () => {
      closed ??= app.close()
      await closed
    }
  }
}
