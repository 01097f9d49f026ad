import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { IdParams } from '../models/common.js'
import { NewTrainingJob, TrainingJob } from '../models/training-job.js'
import { apiBaseUrl } from './api-base-url.js'
import type { LinkOptions } from './api-base-url.js'
import { ErrorResponse } from './error-response.js'
import { registerReadRoutes, security, viewSchema, withId } from './resource-routes.js'

export async function trainingJobRoutes (scope: FastifyInstance, options: LinkOptions) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  const view = viewSchema(TrainingJob)
  app.post('/training-jobs', {
    schema: {
      tags: ['training-jobs'],
      summary: 'Queue a training run of a solver; with `notify-url`, a signed JSON summary is POSTed there when it ends (a private address is refused unless the server allows private URLs)',
      security,
      body: NewTrainingJob,
      response: { 201: view, 400: ErrorResponse }
    }
  }, async (request, reply) => {
    const doc = await app.resources.createTrainingJob(request.tenantId, request.body, { baseUrl: apiBaseUrl(request, options) })
    return await reply.code(201).send(withId(doc))
  })
  app.post('/training-jobs/:id/cancel', {
    schema: {
      tags: ['training-jobs'],
      summary: 'Cancel a pending or running training job (a running one is stopped)',
      security,
      params: IdParams,
      response: { 200: view, 404: ErrorResponse, 409: ErrorResponse }
    }
  }, async (request) => withId(await app.resources.cancel(request.tenantId, 'training-job', request.params.id)))
  registerReadRoutes(app, 'training-job', TrainingJob)
}
