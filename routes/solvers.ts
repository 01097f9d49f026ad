import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { MAX_PROTOTXT_BYTES, NewSolver, Solver } from '../models/solver.js'
import { ErrorResponse } from './error-response.js'
import { formBody, readTextFile } from './multipart.js'
import { registerReadRoutes, security, viewSchema, withId } from './resource-routes.js'
import { enableUploads } from './uploads.js'
import type { UploadOptions } from './uploads.js'

export async function solverRoutes (scope: FastifyInstance, options: UploadOptions) {
  await scope.register(async (uploadScope) => {
    await enableUploads(uploadScope, options)
    const app = uploadScope.withTypeProvider<ZodTypeProvider>()
    app.post('/solvers', {
      preValidation: formBody({ onFile: async (file) => await readTextFile(file, MAX_PROTOTXT_BYTES) }),
      schema: {
        tags: ['solvers'],
        summary: 'Create a solver from a Caffe solver prototxt and net prototxt, both checked now: JSON with `specification-url`/`specification-net-url` or the texts in `specification`/`specification-net`, or multipart/form-data with the files as `specification` and `specification-net`',
        security,
        consumes: ['application/json', 'multipart/form-data'],
        body: NewSolver,
        response: { 201: viewSchema(Solver), 400: ErrorResponse }
      }
    }, async (request, reply) => {
      const doc = await app.resources.createSolver(request.tenantId, request.body)
      return await reply.code(201).send(withId(doc))
    })
  })
  registerReadRoutes(scope, 'solver', Solver)
}
