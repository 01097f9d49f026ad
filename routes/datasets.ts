import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { Dataset, NewDataset } from '../models/dataset.js'
import { ErrorResponse } from './error-response.js'
import { registerReadRoutes, security, viewSchema, withId } from './resource-routes.js'

export async function datasetRoutes (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  app.post('/datasets', {
    schema: {
      tags: ['datasets'],
      summary: 'Make training and test sets: split one datafile by percentage (0.7 and 70 both mean 70%), or take two datafiles',
      security,
      body: NewDataset,
      response: { 201: viewSchema(Dataset), 400: ErrorResponse }
    }
  }, async (request, reply) => {
    const doc = await app.resources.createDataset(request.tenantId, request.body)
    return await reply.code(201).send(withId(doc))
  })
  registerReadRoutes(app, 'dataset', Dataset)
}
