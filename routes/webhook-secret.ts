import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { WebhookSecretView } from '../models/user.js'
import { ErrorResponse } from './error-response.js'
import { security } from './resource-routes.js'

const verifyHow = 'Webhooks carry `X-ElasticThought-Signature: t=<unix seconds>,v1=<hex>`, where hex is HMAC-SHA256 with this secret over `<t>.<raw body>`.'

/** The caller's webhook signing key: read (made on first use) and rotate. */
export async function webhookSecretRoutes (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.get('/users/me/webhook-secret', {
    schema: { tags: ['users'], summary: 'Your webhook signing secret (created on first use)', description: verifyHow, security, response: { 200: WebhookSecretView, 401: ErrorResponse } }
  }, async (request, reply) => {
    noStore(reply)
    return await app.webhookSecrets.get(request.tenantId)
  })
  app.post('/users/me/webhook-secret', {
    schema: { tags: ['users'], summary: 'Replace your webhook signing secret; webhooks sent from now on use the new one', description: verifyHow, security, response: { 200: WebhookSecretView, 401: ErrorResponse } }
  }, async (request, reply) => {
    noStore(reply)
    return await app.webhookSecrets.rotate(request.tenantId)
  })
}

function noStore (reply: { header: (name: string, value: string) => unknown }): void {
  reply.header('cache-control', 'no-store')
}
