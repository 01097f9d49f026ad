import type { FastifyInstance } from 'fastify'

export interface MetricsRouteOptions {
  /** The exposition text and its content type (Prometheus text format 0.0.4). */
  render: () => Promise<{ contentType: string, body: string }>
}

/**
 * `GET /metrics` for Prometheus. Registered only on the metrics listener (--metrics-port),
 * never on the public API port, so it carries no authentication of its own.
 */
export async function metricsRoutes (app: FastifyInstance, options: MetricsRouteOptions) {
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const { contentType, body } = await options.render()
    return await reply.type(contentType).header('cache-control', 'no-store').send(body)
  })
}
