import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'

const HealthResponse = z.object({
  status: z.enum(['ok', 'degraded']),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), message: z.string().optional() }))
})

export async function healthRoutes (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.get('/health', {
    schema: { tags: ['health'], summary: 'Liveness and backend reachability (no authentication)', response: { 200: HealthResponse, 503: HealthResponse } }
  }, async (_request, reply) => {
    const report = await app.health()
    return await reply.code(report.status === 'ok' ? 200 : 503).send(report)
  })
}
