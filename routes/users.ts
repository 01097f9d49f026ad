import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { NewUser, UserView } from '../models/user.js'
import { ForbiddenError, UnauthorizedError } from '../src/lib/errors.js'
import { ErrorResponse } from './error-response.js'
import { security } from './resource-routes.js'

export interface UserRouteOptions {
  registration: 'open' | 'closed'
}

/** POST /users needs no account (open registration) or the admin's (closed). */
export async function publicUserRoutes (scope: FastifyInstance, options: UserRouteOptions) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.post('/users', {
    schema: {
      tags: ['users'],
      summary: options.registration === 'open' ? 'Create an account (no authentication needed)' : 'Create an account (admin only: registration is closed)',
      body: NewUser,
      response: { 201: UserView, 400: ErrorResponse, 401: ErrorResponse, 409: ErrorResponse, 429: ErrorResponse }
    }
  }, async (request, reply) => {
    if (options.registration === 'closed') await requireAdmin(app, request.headers.authorization, request.ip)
    const user = await app.users.create(request.body, options.registration === 'open' ? request.ip : null)
    return await reply.code(201).send(user)
  })
}

export async function userRoutes (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.get('/users/me', {
    schema: { tags: ['users'], summary: 'Your account', security, response: { 200: UserView } }
  }, async (request) => await app.users.get(request.tenantId))
}

async function requireAdmin (app: FastifyInstance, header: string | undefined, client: string): Promise<void> {
  const match = header === undefined ? null : /^basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header)
  const decoded = match?.[1] === undefined ? '' : Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) throw new UnauthorizedError('registration is closed: the admin must authenticate to create users')
  const principal = await app.users.authenticate(decoded.slice(0, colon), decoded.slice(colon + 1), client)
  if (principal === null) throw new UnauthorizedError('wrong username or password')
  if (principal.kind !== 'admin') throw new ForbiddenError('registration is closed: only the admin can create users')
}
