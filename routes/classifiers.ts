import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { Classifier, NewClassifier } from '../models/classifier.js'
import { MAX_PROTOTXT_BYTES } from '../models/solver.js'
import { ClassifyJob, NewClassifyJob } from '../models/classify-job.js'
import { IdParams } from '../models/common.js'
import { ValidationError } from '../src/lib/errors.js'
import { apiBaseUrl } from './api-base-url.js'
import type { LinkOptions } from './api-base-url.js'
import { ErrorResponse } from './error-response.js'
import { formBody, readTextFile } from './multipart.js'
import { enableUploads } from './uploads.js'
import type { UploadOptions } from './uploads.js'
import { registerReadRoutes, security, viewSchema, withId } from './resource-routes.js'

export async function classifierRoutes (scope: FastifyInstance, options: UploadOptions & LinkOptions) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  await app.register(async (uploadScope) => {
    await enableUploads(uploadScope, options)
    createRoute(uploadScope)
    classifyRoute(uploadScope, options)
  })
  registerReadRoutes(app, 'classifier', Classifier)
}

function createRoute (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.post('/classifiers', {
    preValidation: formBody({ onFile: async (file) => await readTextFile(file, MAX_PROTOTXT_BYTES) }),
    schema: {
      tags: ['classifiers'],
      summary: 'Create a classifier from a training job and a deploy prototxt: JSON with `specification-url` or `specification` text, or multipart/form-data with the prototxt as a `specification` file',
      security,
      consumes: ['application/json', 'multipart/form-data'],
      body: NewClassifier,
      response: { 201: viewSchema(Classifier), 400: ErrorResponse }
    }
  }, async (request, reply) => {
    const doc = await app.resources.createClassifier(request.tenantId, request.body)
    return await reply.code(201).send(withId(doc))
  })
}

function classifyRoute (scope: FastifyInstance, options: LinkOptions) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.post('/classifiers/:id/classify', {
    schema: {
      tags: ['classifiers'],
      summary: 'Classify images: JSON {"urls": [...]}, or multipart/form-data with repeated "urls" fields (as the original took) and/or image files in repeated "files" parts; creates a classify job',
      security,
      consumes: ['application/json', 'multipart/form-data'],
      params: IdParams,
      body: NewClassifyJob,
      response: { 201: viewSchema(ClassifyJob), 400: ErrorResponse, 404: ErrorResponse }
    },
    preValidation: formBody({
      arrayFields: ['urls', 'files'],
      onFile: async (file, request) => {
        if (file.fieldname !== 'files' && file.fieldname !== 'files[]') {
          file.file.resume()
          throw new ValidationError(`body.${file.fieldname}: unexpected file field (images go in "files")`)
        }
        return await app.uploads.store(request, file, (docId, index) => `${docId}/images/${index}`)
      }
    })
  }, async (request, reply) => {
    const doc = await app.resources.createClassifyJob(request.tenantId, request.params.id, request.body, { baseUrl: apiBaseUrl(request, options) })
    return await reply.code(201).send(withId(doc))
  })
}
