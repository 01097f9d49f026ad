import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { inject } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import type { ServerConfig } from '../../src/config.js'
import { CouchDatabase } from '../../src/db/couch.js'
import { createDeps } from '../../src/deps.js'
import type { Deps, DepsOptions } from '../../src/deps.js'
import { createLogger } from '../../src/lib/logger.js'

/** A config for tests: the shared test CouchDB server, a fresh database, memory blobs. */
export function testConfig (overrides: Partial<ServerConfig> = {}): ServerConfig {
  return {
    host: '127.0.0.1',
    port: 0,
    dataDir: '/nonexistent-test-data-dir',
    database: { kind: 'couch', url: `${inject('couchUrl')}/test_${randomUUID().replaceAll('-', '')}`, dbName: 'unused' },
    blobStore: { kind: 'memory' },
    scheduler: { kind: 'in-process', concurrency: 1, retryBaseMs: 10, retryMaxMs: 100, maxAttempts: 3 },
    registration: 'open',
    admin: null,
    jobs: { maxAttempts: 3, leaseMs: 60_000, allowPrivateUrls: true, caffeBin: null, gpu: null, workDir: join(tmpdir(), 'et-test-work') },
    maxUploadBytes: 64 * 1024 * 1024,
    logLevel: 'silent',
    ...overrides
  }
}

export interface TestApp {
  app: FastifyInstance
  deps: Deps
  config: ServerConfig
  close: () => Promise<void>
}

/**
 * The real app over real services, wired by the real composition root; close() drops the
 * database. Jobs do not run unless `options.runJobs` is set, so route tests see documents as
 * they left them.
 */
export async function startTestApp (overrides: Partial<ServerConfig> = {}, options: DepsOptions = { runJobs: false }): Promise<TestApp> {
  const config = testConfig(overrides)
  const logger = createLogger(config.logLevel)
  const deps = await createDeps(config, logger, options)
  const app = await buildApp(deps.services, { registration: config.registration, maxUploadBytes: config.maxUploadBytes, logger: false })
  await app.ready()
  // Wait for the changes feed so tests also exercise the read cache, as production does.
  for (let i = 0; i < 400 && !deps.dispatcher.isLive; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  return {
    app,
    deps,
    config,
    close: async () => {
      await app.close()
      // Everything that uses the database stops before it is dropped: a query in flight when
      // PouchDB destroys a database never answers.
      await deps.close()
      const admin = new CouchDatabase({ serverUrl: inject('couchUrl'), dbName: deps.couch.name })
      await admin.server.db.destroy(deps.couch.name).catch(() => {})
      await admin.close()
    }
  }
}

export function basic (username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
}

/** Creates a user through the API and returns its Authorization header. */
export async function signUp (app: FastifyInstance, username: string, password = 'correct horse battery'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/users', payload: { username, email: `${username}@example.com`, password } })
  if (res.statusCode !== 201) throw new Error(`sign-up of ${username} failed: ${res.statusCode} ${res.body}`)
  return basic(username, password)
}
