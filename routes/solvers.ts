import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { NewSolver, Solver } from '../models/solver.js'
import { ErrorResponse } from './error-response.js'
import { registerReadRoutes, security, viewSchema, withId } from './resource-routes.js'

export async function solverRoutes (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.post('/solvers', {
    schema: {
      tags: ['solvers'],
      summary: 'Create a solver from a Caffe solver prototxt and net prototxt (by URL or inline); both are checked now',
      security,
      body: NewSolver,
      response: { 201: viewSchema(Solver), 400: ErrorResponse }
    }
  }, async (request, reply) => {
    const doc = await app.resources.createSolver(request.tenantId, request.body)
    return await reply.code(201).send(withId(doc))
  })
  registerReadRoutes(app, 'solver', Solver)
}
