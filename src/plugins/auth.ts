import fastifyBasicAuth from '@fastify/basic-auth'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ForbiddenError, UnauthorizedError } from '../lib/errors.js'

/**
 * HTTP Basic authentication for the routes registered in the same encapsulated scope.
 * Users are tenants; the configured admin may only create users (closed registration).
 */
export default fp(async function auth (app: FastifyInstance) {
  await app.register(fastifyBasicAuth, {
    authenticate: { realm: 'elastic-thought' },
    async validate (username, password, request) {
      const principal = await app.users.authenticate(username, password, request.ip)
      if (principal === null) throw new UnauthorizedError('wrong username or password')
      if (principal.kind !== 'user') throw new ForbiddenError('the admin account can only create users')
      request.principal = principal
      request.tenantId = principal.tenantId
    }
  })
  app.addHook('onRequest', app.basicAuth)
}, { name: 'auth', dependencies: ['deps'] })
