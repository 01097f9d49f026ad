import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { TenantId } from '../../models/common.js'
import type { Resources } from '../services/resources.js'
import type { Principal, UserService } from '../services/user-service.js'
import type { HealthCheck } from '../services/health.js'
import type { Uploads } from '../services/uploads.js'
import type { Artifacts } from '../services/artifacts.js'
import type { ChangeHub } from '../services/change-hub.js'
import type { WebhookSecrets } from '../webhooks/webhook-secrets.js'

/** The services routes may use; the composition root builds them, tests may swap any. */
export interface AppServices {
  users: UserService
  resources: Resources
  health: HealthCheck
  uploads: Uploads
  artifacts: Artifacts
  /** Live document changes per tenant, for GET /events. */
  changeHub: ChangeHub
  /** Per-user webhook signing keys. */
  webhookSecrets: WebhookSecrets
}

declare module 'fastify' {
  interface FastifyInstance {
    users: UserService
    resources: Resources
    health: HealthCheck
    uploads: Uploads
    artifacts: Artifacts
    changeHub: ChangeHub
    webhookSecrets: WebhookSecrets
  }
  interface FastifyRequest {
    /** Set by the auth hook on authenticated routes. */
    principal: Principal | null
    /** The caller's tenant; only on authenticated routes, where the auth hook guarantees it. */
    tenantId: TenantId
  }
}

export default fp(async function depsPlugin (app: FastifyInstance, services: AppServices) {
  app.decorate('users', services.users)
  app.decorate('resources', services.resources)
  app.decorate('health', services.health)
  app.decorate('uploads', services.uploads)
  app.decorate('artifacts', services.artifacts)
  app.decorate('changeHub', services.changeHub)
  app.decorate('webhookSecrets', services.webhookSecrets)
  app.decorateRequest('principal', null)
  app.decorateRequest('tenantId', '' as TenantId)
}, { name: 'deps' })
