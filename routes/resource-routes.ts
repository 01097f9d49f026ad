import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { IdParams, ListQuery, pageOf } from '../models/common.js'
import type { DocumentOf, OwnedType } from '../models/documents.js'
import { ErrorResponse } from './error-response.js'

/** A stored document as the API shows it: the document plus `id` (= `_id`, as the original's POST /datafiles returned). */
export function viewSchema<T extends z.ZodObject> (schema: T) {
  return schema.extend({ id: z.string() })
}

const views = new WeakMap<object, object>()

/**
 * The API view of a document: the document with `id` beside `_id`. Stored documents are frozen
 * and shared for as long as their revision lasts (parseStored), so their view is made once and
 * shared too, rather than copied on every read of a hot document.
 */
export function withId<T extends { _id: string }> (doc: T): T & { id: string } {
  if (!Object.isFrozen(doc)) return { ...doc, id: doc._id }
  let view = views.get(doc)
  if (view === undefined) {
    view = Object.freeze({ ...doc, id: doc._id })
    views.set(doc, view)
  }
  return view as T & { id: string }
}

export const security = [{ basicAuth: [] }]

const plural: Record<OwnedType, string> = {
  datafile: 'datafiles',
  dataset: 'datasets',
  solver: 'solvers',
  'training-job': 'training-jobs',
  classifier: 'classifiers',
  'classify-job': 'classify-jobs'
}

export function pathOf (type: OwnedType): string {
  return `/${plural[type]}`
}

/**
 * GET one, GET a page (newest first) and DELETE for one resource type: the same three
 * routes for every type, all scoped to the caller by the resources service.
 */
export function registerReadRoutes<T extends OwnedType> (scope: FastifyInstance, type: T, schema: z.ZodObject) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  const view = viewSchema(schema)
  const tags = [plural[type]]
  app.get(`${pathOf(type)}/:id`, {
    schema: { tags, summary: `Get one ${type}`, security, params: IdParams, response: { 200: view, 404: ErrorResponse } }
  }, async (request) => withId(await app.resources.get(request.tenantId, type, request.params.id)) as z.infer<typeof view>)

  app.get(pathOf(type), {
    schema: { tags, summary: `List your ${plural[type]}, newest first`, security, querystring: ListQuery, response: { 200: pageOf(view), 400: ErrorResponse } }
  }, async (request) => {
    const page = await app.resources.list(request.tenantId, type, request.query)
    return { items: page.items.map((doc: DocumentOf<T>) => withId(doc) as z.infer<typeof view>), next: page.next }
  })

  app.delete(`${pathOf(type)}/:id`, {
    schema: { tags, summary: `Delete a ${type} and its stored files (409 while other documents use it)`, security, params: IdParams, response: { 204: z.undefined().describe('deleted'), 404: ErrorResponse, 409: ErrorResponse } }
  }, async (request, reply) => {
    await app.resources.delete(request.tenantId, type, request.params.id)
    return await reply.code(204).send(undefined)
  })
}
