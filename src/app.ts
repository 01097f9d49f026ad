import Fastify from 'fastify'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import { jsonSchemaTransform, validatorCompiler } from 'fastify-type-provider-zod'
import { fastSerializerCompiler } from './plugins/serializer.js'
import errorHandler, { body as errorBody } from './plugins/error-handler.js'
import depsPlugin from './plugins/deps.js'
import type { AppServices } from './plugins/deps.js'
import auth from './plugins/auth.js'
import { healthRoutes } from '../routes/health.js'
import { publicUserRoutes, userRoutes } from '../routes/users.js'
import { datafileRoutes } from '../routes/datafiles.js'
import { datasetRoutes } from '../routes/datasets.js'
import { solverRoutes } from '../routes/solvers.js'
import { trainingJobRoutes } from '../routes/training-jobs.js'
import { classifierRoutes } from '../routes/classifiers.js'
import { classifyJobRoutes } from '../routes/classify-jobs.js'
import { artifactRoutes } from '../routes/artifacts.js'
import { webhookSecretRoutes } from '../routes/webhook-secret.js'
import { eventRoutes } from '../routes/events.js'
import dashboard, { defaultDashboardRoot } from './plugins/dashboard.js'
import type { DashboardOptions } from './plugins/dashboard.js'

export interface AppOptions {
  registration: 'open' | 'closed'
  /** Largest JSON body; uploads have their own limit. */
  bodyLimit?: number
  maxUploadBytes: number
  logger: FastifyBaseLogger | false
  /** Serve the OpenAPI document and its UI at /documentation (default true). */
  documentation?: boolean
  /** Serve the web dashboard at / (default: the build in dist/web); false turns it off. */
  dashboard?: DashboardOptions | false
  /** Records each request's latency (Prometheus); /metrics itself is served on its own port. */
  metrics?: { observeHttp: (method: string, route: string, statusCode: number, seconds: number) => void }
  /** The URL users reach the API at (`--public-url`), for links in webhooks; default: each request's own. */
  publicUrl?: string | null
  /** Proxies whose X-Forwarded-For names the client (`--trust-proxy`); default: none. */
  trustProxy?: string[]
}

/**
 * Builds the HTTP application from ready services: no listen(), no environment reads, so the
 * server, the benchmarks and the tests all run the very same app.
 */
export async function buildApp (services: AppServices, options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger === false ? { logger: false } : { loggerInstance: options.logger }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // request.ip keys sign-in throttling: only a proxy we were told to trust may set it.
    trustProxy: options.trustProxy !== undefined && options.trustProxy.length > 0 ? options.trustProxy : false,
    // Ids are short; a longer path parameter is an attack or a mistake.
    routerOptions: { maxParamLength: 200 },
    // Router-level failures (bad URL encoding, over-long ids) in the same error shape as the rest.
    frameworkErrors: (err, _request, routeReply) => {
      const reply = routeReply as FastifyReply
      const status = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : (err.statusCode ?? 400)
      reply.code(status).send(errorBody(status, status === 414 ? 'ET_URI_TOO_LONG' : 'ET_BAD_REQUEST', status === 414 ? 'a path parameter is longer than 200 characters' : err.message))
    }
  })
  // JSON only: a text/plain body would reach validation as a string and fail obscurely.
  app.removeContentTypeParser('text/plain')
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(fastSerializerCompiler)
  const metrics = options.metrics
  if (metrics !== undefined) {
    // The route pattern (`/training-jobs/:id`), never the URL, keeps the label set bounded;
    // requests no route matched share one label.
    app.addHook('onResponse', async (request, reply) => {
      metrics.observeHttp(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000)
    })
  }

  await app.register(errorHandler)
  await app.register(depsPlugin, services)
  if (options.documentation !== false) {
    await app.register(fastifySwagger, {
      openapi: {
        info: { title: 'ElasticThought API', version: '1.0.0', description: 'Deep-learning training as a service over Caffe: users, datafiles, datasets, solvers, training jobs, classifiers and classify jobs.' },
        components: { securitySchemes: { basicAuth: { type: 'http', scheme: 'basic' } } }
      },
      transform: jsonSchemaTransform
    })
    await app.register(fastifySwaggerUi, { routePrefix: '/documentation' })
  }

  if (options.dashboard !== false) await app.register(dashboard, options.dashboard ?? { root: defaultDashboardRoot() })
  await app.register(healthRoutes)
  await app.register(publicUserRoutes, { registration: options.registration })
  // Everything registered in this scope requires Basic authentication.
  await app.register(async (authed) => {
    await authed.register(auth)
    await authed.register(userRoutes)
    await authed.register(webhookSecretRoutes)
    await authed.register(datafileRoutes, { maxUploadBytes: options.maxUploadBytes })
    await authed.register(datasetRoutes)
    await authed.register(solverRoutes, { maxUploadBytes: options.maxUploadBytes })
    await authed.register(trainingJobRoutes, { publicUrl: options.publicUrl ?? null })
    await authed.register(classifierRoutes, { maxUploadBytes: options.maxUploadBytes, publicUrl: options.publicUrl ?? null })
    await authed.register(classifyJobRoutes)
    await authed.register(artifactRoutes)
    await authed.register(eventRoutes)
  })
  return app
}
