import type { Readable } from 'node:stream'
import nano from 'nano'
import { Agent, getGlobalDispatcher, request } from 'undici'
import type { Dispatcher } from 'undici'
import { ConflictError, NotFoundError, UnavailableError, statusCodeOf } from '../lib/errors.js'
import { ChangesPage, seqText } from './change.js'
import type { Change } from './change.js'

/** Where the database is: a CouchDB-protocol server URL (credentials allowed) and a db name. */
export interface CouchLocation {
  /** Server URL without the database, e.g. `http://admin:pw@127.0.0.1:5984`. */
  serverUrl: string
  dbName: string
  /** Reach the server over this Unix socket instead of TCP (the embedded store). */
  socketPath?: string
}

export interface ViewRow {
  id: string
  key: unknown
  value: unknown
  doc?: unknown
}

export interface ViewQuery {
  startkey?: unknown
  endkey?: unknown
  key?: unknown
  keys?: unknown[]
  descending?: boolean
  limit?: number
  skip?: number
  include_docs?: boolean
  reduce?: boolean
  group?: boolean
  group_level?: number
}

/**
 * The one data-access seam over a CouchDB-protocol database (real CouchDB, or the embedded
 * PouchDB server). Documents come back as `unknown`: callers parse them with zod.
 * Failures are typed: 404 → NotFoundError, 409 → ConflictError, unreachable → UnavailableError.
 */
export class CouchDatabase {
  readonly name: string
  readonly server: nano.ServerScope
  readonly db: nano.DocumentScope<Record<string, unknown>>
  private readonly agent: Agent | undefined
  private readonly location: CouchLocation

  constructor (location: CouchLocation) {
    this.location = location
    this.name = location.dbName
    this.agent = location.socketPath === undefined ? undefined : new Agent({ connect: { socketPath: location.socketPath } })
    this.server = nano({ url: location.serverUrl, ...(this.agent === undefined ? {} : { agentOptions: this.agent as unknown as nano.Configuration['agentOptions'] }) })
    this.db = this.server.use(location.dbName)
  }

  /** Creates the database if it does not exist; tolerates another process winning the race. */
  async ensureExists (): Promise<void> {
    try {
      await this.server.db.get(this.name)
    } catch (err) {
      if (statusCodeOf(err) !== 404) throw mapCouchError(err, `database '${this.name}'`)
      try {
        await this.server.db.create(this.name)
      } catch (createErr) {
        if (statusCodeOf(createErr) !== 412) throw mapCouchError(createErr, `database '${this.name}'`)
      }
    }
  }

  /** The database's current update sequence: a concrete `since` meaning "from here on". */
  async updateSeq (): Promise<unknown> {
    try {
      const info = await this.server.db.get(this.name)
      return info.update_seq
    } catch (err) {
      throw mapCouchError(err, `database '${this.name}'`)
    }
  }

  /**
   * One page of the changes after `since`, oldest first, with their documents (each document
   * appears once, at its latest change); `last` is the sequence the page ends at.
   */
  async changesSince (since: unknown, limit: number): Promise<{ changes: Change[], last: unknown }> {
    let res
    try {
      res = await this.db.changes({ since: seqText(since), limit, include_docs: true })
    } catch (err) {
      throw mapCouchError(err, 'changes')
    }
    const page = ChangesPage.parse(res)
    return { changes: page.results, last: page.last_seq }
  }

  async get (id: string): Promise<unknown> {
    try {
      return await this.db.get(id)
    } catch (err) {
      throw mapCouchError(err, id)
    }
  }

  /** Writes a document; with `_rev` it is a rev-checked update, without it a create. */
  async put (doc: { _id: string, _rev?: string | undefined } & Record<string, unknown>): Promise<string> {
    try {
      const res = await this.db.insert(doc)
      return res.rev
    } catch (err) {
      throw mapCouchError(err, doc._id)
    }
  }

  async remove (id: string, rev: string): Promise<void> {
    try {
      await this.db.destroy(id, rev)
    } catch (err) {
      throw mapCouchError(err, id)
    }
  }

  async view (design: string, name: string, query: ViewQuery): Promise<{ rows: ViewRow[], total_rows?: number }> {
    try {
      const res = await this.db.view(design, name, query)
      return { rows: res.rows as ViewRow[], total_rows: res.total_rows }
    } catch (err) {
      throw mapCouchError(err, `view ${design}/${name}`)
    }
  }

  /**
   * Opens `_changes?feed=continuous` as a byte stream of newline-delimited JSON. Done with
   * undici directly rather than nano's stream mode, whose inner stream errors go unhandled
   * when the request is aborted, and a continuous feed is always ended by aborting.
   */
  async changesStream (query: { since: unknown, heartbeatMs: number, includeDocs: boolean, signal: AbortSignal }): Promise<Readable> {
    const url = new URL(this.location.serverUrl)
    const auth = url.username === '' ? undefined : `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
    url.username = ''
    url.password = ''
    const path = `${url.pathname.replace(/\/$/, '')}/${encodeURIComponent(this.name)}/_changes`
    const search = new URLSearchParams({
      feed: 'continuous',
      heartbeat: String(query.heartbeatMs),
      since: seqText(query.since),
      include_docs: String(query.includeDocs)
    })
    const dispatcher: Dispatcher = this.agent ?? getGlobalDispatcher()
    let res
    try {
      res = await request(`${url.origin}${path}?${search.toString()}`, {
        dispatcher,
        signal: query.signal,
        headers: auth === undefined ? {} : { authorization: auth },
        // The feed is silent between heartbeats; the caller's watchdog decides when it is dead.
        bodyTimeout: 0
      })
    } catch (err) {
      throw mapCouchError(err, 'changes feed')
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '')
      throw mapCouchError(Object.assign(new Error(`changes feed answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`), { statusCode: res.statusCode }), 'changes feed')
    }
    return res.body
  }

  private closing: Promise<void> | undefined

  /** Closes the socket agent (embedded store); idempotent. */
  async close (): Promise<void> {
    this.closing ??= this.agent?.close() ?? Promise.resolve()
    await this.closing
  }
}

/** Maps a nano failure to the project's typed errors; `what` names the thing in the message. */
export function mapCouchError (err: unknown, what: string): Error {
  const status = statusCodeOf(err)
  if (status === 404) return new NotFoundError(`${what} not found`, { cause: err })
  if (status === 409) return new ConflictError(`${what} was changed by someone else`, { cause: err })
  if (status === undefined || status >= 500) return new UnavailableError('the database is unavailable', { cause: err })
  return err instanceof Error ? err : new Error(String(err))
}

/**
 * Splits a `--couch-url` into server URL and database name. The original took the database
 * in the path (`http://sync-gateway:4984/elastic-thought`); a bare server URL gets `fallbackDb`.
 */
export function parseCouchUrl (raw: string, fallbackDb: string): CouchLocation {
  const url = new URL(raw)
  const segments = url.pathname.split('/').filter((s) => s !== '')
  const dbName = segments.length > 0 ? decodeURIComponent(segments[segments.length - 1] ?? '') : fallbackDb
  url.pathname = '/' + segments.slice(0, -1).join('/')
  if (segments.length === 0) url.pathname = '/'
  return { serverUrl: url.toString().replace(/\/$/, ''), dbName }
}

/** The URL with any password replaced, safe to log. */
export function scrubUrl (raw: string): string {
  try {
    const url = new URL(raw)
    if (url.password !== '') url.password = '***'
    return url.toString()
  } catch {
    return '<invalid url>'
  }
}
