import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { Datafile, NewDatafile } from '../models/datafile.js'
import { ValidationError } from '../src/lib/errors.js'
import { ErrorResponse } from './error-response.js'
import { formBody } from './multipart.js'
import { registerReadRoutes, security, viewSchema, withId } from './resource-routes.js'
import { enableUploads } from './uploads.js'
import type { UploadOptions } from './uploads.js'

export async function datafileRoutes (scope: FastifyInstance, options: UploadOptions) {
  await scope.register(async (uploadScope) => {
    await enableUploads(uploadScope, options)
    const app = uploadScope.withTypeProvider<ZodTypeProvider>()
    app.post('/datafiles', {
      preValidation: formBody({
        onFile: async (file, request) => {
          if (file.fieldname !== 'file') {
            file.file.resume()
            throw new ValidationError(`body.${file.fieldname}: unexpected file field (the datafile goes in "file")`)
          }
          return await app.uploads.store(request, file, (docId) => `${docId}/datafile`)
        }
      }),
      schema: {
        tags: ['datafiles'],
        summary: 'Add a datafile (tar.gz of <label>/<image> files, or an archive holding an LMDB/LevelDB): JSON {"url": …} to have it downloaded, or multipart/form-data with the archive as the `file` field (streamed to storage)',
        security,
        consumes: ['application/json', 'multipart/form-data'],
        body: NewDatafile,
        response: { 201: viewSchema(Datafile), 400: ErrorResponse, 413: ErrorResponse }
      }
    }, async (request, reply) => {
      const doc = await app.resources.createDatafile(request.tenantId, request.body)
      return await reply.code(201).send(withId(doc))
    })
  })
  registerReadRoutes(scope, 'datafile', Datafile)
}
