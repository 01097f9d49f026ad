/*
 * Child-process entry of the embedded database: a CouchDB-protocol HTTP server (express-pouchdb
 * over PouchDB) on a Unix socket or a loopback port. Runs apart from the API so that its CPU work
 * uses the second core and a crash in it cannot take the API down.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { z } from 'zod'

const Options = z.object({
  dataDir: z.string(),
  inMemory: z.boolean(),
  socketPath: z.string().optional(),
  port: z.number().int().min(0).max(65535).optional()
})

const require = createRequire(import.meta.url)

function send (message: unknown): void {
  process.send?.(message)
}

function start (options: z.infer<typeof Options>): Server {
  const express: () => { use: (path: string, handler: unknown) => void, listen: (...args: unknown[]) => Server } = require('express')
  const expressPouchDb: (db: unknown, opts: unknown) => unknown = require('express-pouchdb')
  const PouchDB: { plugin: (p: unknown) => { defaults: (o: unknown) => unknown }, defaults: (o: unknown) => unknown } = require('pouchdb')
  mkdirSync(options.dataDir, { recursive: true })
  const Db = options.inMemory
    ? PouchDB.plugin(require('pouchdb-adapter-memory')).defaults({ adapter: 'memory' })
    : PouchDB.defaults({ prefix: options.dataDir + '/' })
  const app = express()
  app.use('/', expressPouchDb(Db, {
    mode: 'fullCouchDB',
    inMemoryConfig: true,
    logPath: join(options.dataDir, 'pouchdb-server.log'),
    // Only the database API: no admin UI, no replication endpoints, and no compression, which is
    // pointless on loopback and delays streamed responses.
    overrideMode: { exclude: ['compression', 'routes/fauxton', 'routes/replicate', 'replicator', 'routes/vhosts', 'routes/rewrite', 'routes/update', 'routes/show', 'routes/list'] }
  }))
  if (options.socketPath !== undefined) {
    rmSync(options.socketPath, { force: true })
    return app.listen(options.socketPath)
  }
  return app.listen(options.port ?? 0, '127.0.0.1')
}

process.once('message', (raw) => {
  const options = Options.parse(raw)
  const server = start(options)
  server.on('listening', () => {
    const address = server.address()
    send({ ready: true, port: typeof address === 'object' && address !== null ? (address as AddressInfo).port : null })
  })
  server.on('error', (err) => {
    send({ ready: false, error: err.message })
    process.exit(1)
  })
  const stop = (): void => {
    server.close(() => process.exit(0))
    // Open keep-alive sockets would hold close() forever; the parent is already gone or leaving.
    setTimeout(() => process.exit(0), 500).unref()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // The parent died without telling us: do not linger as an orphan holding the data dir.
  process.on('disconnect', stop)
})
