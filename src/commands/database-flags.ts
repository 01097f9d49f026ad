import { resolve } from 'node:path'
import { z } from 'zod'
import { ConfigError, CouchUrl, DbName } from '../config.js'
import type { FlagSpec } from '../config.js'
import { parseCouchUrl, scrubUrl } from '../db/couch.js'
import type { CouchLocation } from '../db/couch.js'
import { readEmbeddedDbFile } from './embedded-db-file.js'

/** How admin commands find the database: a CouchDB URL, or a running server's embedded one. */
export const databaseFlags: FlagSpec[] = [
  { name: 'couch-url', type: 'string', aliases: ['sync-gw', 'sync-gw-url'], help: 'CouchDB URL with admin rights, e.g. http://admin:pw@db:5984/elastic-thought' },
  { name: 'db-name', type: 'string', help: 'database name when --couch-url has none (default elastic-thought)' },
  { name: 'data-dir', type: 'string', help: 'without --couch-url: the --data-dir of a running server with the embedded database (default ./data)' }
]

const RawDatabase = z.object({
  'couch-url': CouchUrl.optional(),
  'db-name': DbName,
  'data-dir': z.string().min(1).default('data')
})

/** The database to read, and a description of it that is safe to print (no password). */
export interface DatabaseTarget {
  location: CouchLocation
  shown: string
}

/**
 * Resolves the database flags of `raw` (from readFlags). Without --couch-url it looks for a
 * server running with the embedded database under --data-dir; ConfigError says what to do
 * when there is none.
 */
export function resolveDatabase (raw: Record<string, unknown>): DatabaseTarget {
  const parsed = RawDatabase.safeParse({ 'couch-url': raw['couch-url'], 'db-name': raw['db-name'], 'data-dir': raw['data-dir'] })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ConfigError(`invalid --${String(issue?.path[0] ?? 'couch-url')}: ${issue?.message ?? 'invalid value'}`)
  }
  const v = parsed.data
  if (v['couch-url'] !== undefined) {
    const location = parseCouchUrl(v['couch-url'], v['db-name'])
    return { location, shown: `${scrubUrl(location.serverUrl).replace(/\/$/, '')}/${location.dbName}` }
  }
  const dataDir = resolve(v['data-dir'])
  const embedded = readEmbeddedDbFile(dataDir)
  if (embedded === undefined) {
    throw new ConfigError(`no --couch-url, and no elastic-thought server with an embedded database is running on ${dataDir} (start one with that --data-dir, or pass --couch-url)`)
  }
  const { pid, ...location } = embedded
  return { location, shown: `embedded database in ${dataDir} (server pid ${pid})` }
}
