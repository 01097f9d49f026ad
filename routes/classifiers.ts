import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { Classifier, NewClassifier } from '../models/classifier.js'
import { ClassifyJob, NewClassifyJob } from '../models/classify-job.js'
import { IdParams } from '../models/common.js'
import { ErrorResponse, validationError } from './error-response.js'
import { readMultipartUrls } from './multipart.js'
import { enableUploads } from './uploads.js'
import type { UploadOptions } from './uploads.js'
import { registerReadRoutes, security, viewSchema, withId } from './resource-routes.js'

export async function classifierRoutes (scope: FastifyInstance, options: UploadOptions) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.post('/classifiers', {
    schema: {
      tags: ['classifiers'],
      summary: 'Create a classifier from a training job and a deploy prototxt (by URL or inline)',
      security,
      body: NewClassifier,
      response: { 201: viewSchema(Classifier), 400: ErrorResponse }
    }
  }, async (request, reply) => {
    const doc = await app.resources.createClassifier(request.tenantId, request.body)
    return await reply.code(201).send(withId(doc))
  })
  await app.register(async (uploadScope) => {
    await enableUploads(uploadScope, options)
    classifyRoute(uploadScope)
  })
  registerReadRoutes(app, 'classifier', Classifier)
}

function classifyRoute (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.post('/classifiers/:id/classify', {
    schema: {
      tags: ['classifiers'],
      summary: 'Classify images given by URL: JSON {"urls": [...]}, or multipart/form-data with repeated "urls" fields as the original took; creates a classify job',
      security,
      params: IdParams,
      response: { 201: viewSchema(ClassifyJob), 400: ErrorResponse, 404: ErrorResponse }
    }
  }, async (request, reply) => {
    const input = request.isMultipart() ? await readMultipartUrls(request) : request.body
    const parsed = NewClassifyJob.safeParse(input)
    if (!parsed.success) throw validationError(parsed.error, 'body')
    const doc = await app.resources.createClassifyJob(request.tenantId, request.params.id, parsed.data)
    return await reply.code(201).send(withId(doc))
  })
}
