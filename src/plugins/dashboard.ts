import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply } from 'fastify'

export interface DashboardOptions {
  /** The built dashboard (index.html and assets/), as `npm run build` writes it to dist/web. */
  root: string
}

/** Header the dashboard sends with every API request (see the 401 case in error-handler.ts). */
export const DASHBOARD_CLIENT_HEADER = 'x-elastic-thought-client'

// Everything the dashboard loads comes from this server: no inline script or style, no CDN.
// blob: images are the previews of images dropped for classification.
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join('; ')

/** dist/web under the package root, from either dist/src/plugins (built) or src/plugins (tsx). */
export function defaultDashboardRoot (): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5 && !existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir)
  return path.join(dir, 'dist', 'web')
}

function secure (reply: FastifyReply): void {
  reply.header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    // Small files that change with every build: revalidate by ETag rather than guess a max-age.
    .header('cache-control', 'no-cache')
}

/**
 * The web dashboard's static files at `/` (index.html) and `/assets/…`, with a strict
 * Content-Security-Policy. Routes are made for the files present at start-up (no wildcard
 * route), so unknown paths still get the API's 404 and the API routes are untouched. Without a
 * build, `/` answers 503 naming the command that builds it.
 */
export default fp(async function dashboard (app: FastifyInstance, options: DashboardOptions) {
  if (!existsSync(path.join(options.root, 'index.html'))) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) => {
      secure(reply)
      return await reply.code(503).type('text/plain; charset=utf-8')
        .send('The dashboard is not built. Run `npm run build` (npm install does it too), then restart the server.\n')
    })
    return
  }
  await app.register(async (scope) => {
    await scope.register(fastifyStatic, {
      root: options.root,
      prefix: '/',
      wildcard: false,
      index: 'index.html',
      dotfiles: 'ignore',
      cacheControl: false,
      // Other copies of @fastify/static (the documentation UI's) decorate the reply too.
      decorateReply: false,
      setHeaders: (reply) => { secure(reply) }
    })
  })
}, { name: 'dashboard' })
