import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { Datafile, NewDatafile } from '../models/datafile.js'
import { ErrorResponse } from './error-response.js'
import { registerReadRoutes, security, viewSchema, withId } from './resource-routes.js'

export async function datafileRoutes (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.post('/datafiles', {
    schema: {
      tags: ['datafiles'],
      summary: 'Register a datafile (tar.gz of <label>/<image> files, or an LMDB/LevelDB archive) to download from a URL',
      security,
      body: NewDatafile,
      response: { 201: viewSchema(Datafile), 400: ErrorResponse }
    }
  }, async (request, reply) => {
    const doc = await app.resources.createDatafile(request.tenantId, request.body)
    return await reply.code(201).send(withId(doc))
  })
  registerReadRoutes(app, 'datafile', Datafile)
}
