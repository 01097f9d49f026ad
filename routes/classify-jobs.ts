import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { ClassifyJob } from '../models/classify-job.js'
import { IdParams } from '../models/common.js'
import { ErrorResponse } from './error-response.js'
import { registerReadRoutes, security, viewSchema, withId } from './resource-routes.js'

export async function classifyJobRoutes (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.post('/classify-jobs/:id/cancel', {
    schema: {
      tags: ['classify-jobs'],
      summary: 'Cancel a pending or running classify job',
      security,
      params: IdParams,
      response: { 200: viewSchema(ClassifyJob), 404: ErrorResponse, 409: ErrorResponse }
    }
  }, async (request) => withId(await app.resources.cancel(request.tenantId, 'classify-job', request.params.id)))
  registerReadRoutes(app, 'classify-job', ClassifyJob)
}
