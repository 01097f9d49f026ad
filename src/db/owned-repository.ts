import type { TenantId } from '../../models/common.js'
import { referencesOf } from '../../models/documents.js'
import type { DocumentOf, OwnedType } from '../../models/documents.js'
import { AppError, ConflictError, NotFoundError, ValidationError } from '../lib/errors.js'
import { newDocId } from '../lib/ids.js'
import { casUpdate } from './cas-update.js'
import { parseStored } from './parse-stored.js'
import { DESIGN } from './design.js'
import type { Documents } from './documents.js'

export interface Page<T> {
  items: T[]
  next: string | null
}

/** The fields a creator supplies: everything but the ones the repository owns. */
export type NewFields<T extends OwnedType> = Omit<DocumentOf<T>, '_id' | '_rev' | 'type' | 'user-id' | 'created-at' | 'updated-at'>

/**
 * Tenant-scoped access to the documents users own. Every method takes the tenant first; a
 * document of another tenant, of another type, or missing are the same NotFoundError, so ids
 * cannot be probed across tenants.
 */
export class OwnedRepository {
  private readonly docs: Documents

  constructor (docs: Documents) {
    this.docs = docs
  }

  async get<T extends OwnedType> (tenant: TenantId, type: T, id: string): Promise<DocumentOf<T>> {
    let raw: unknown
    try {
      raw = await this.docs.read(id)
    } catch (err) {
      if (err instanceof NotFoundError) throw notFound(type, id)
      throw err
    }
    if (!isOwnedBy(raw, tenant, type)) throw notFound(type, id)
    return parseDocument(type, raw)
  }

  /** Newest first. The cursor is opaque to clients: the last row's view key, base64url JSON. */
  async list<T extends OwnedType> (tenant: TenantId, type: T, query: { limit: number, cursor?: string | undefined }): Promise<Page<DocumentOf<T>>> {
    const start = query.cursor === undefined ? [tenant, type, {}] : decodeCursor(query.cursor, tenant, type)
    const res = await this.docs.couch.view(DESIGN, 'by-owner', {
      startkey: start,
      endkey: [tenant, type],
      descending: true,
      include_docs: true,
      // The cursor row itself was the last item of the previous page.
      skip: query.cursor === undefined ? 0 : 1,
      limit: query.limit + 1
    })
    const rows = res.rows.slice(0, query.limit)
    const items = rows.map((row) => parseDocument(type, row.doc))
    const last = rows[rows.length - 1]
    const next = res.rows.length > query.limit && last !== undefined ? encodeCursor(last.key) : null
    return { items, next }
  }

  async create<T extends OwnedType> (tenant: TenantId, type: T, fields: NewFields<T>, id: string = newDocId()): Promise<DocumentOf<T>> {
    const now = new Date().toISOString()
    const doc = parseDocument(type, { ...fields, _id: id, type, 'user-id': tenant, 'created-at': now, 'updated-at': now })
    const rev = await this.docs.write(stripUndefined(doc))
    return { ...doc, _rev: rev }
  }

  /**
   * Rev-checked update of an owned document; `change` may return null for "nothing to do".
   * Retries 409s internally, so a concurrent worker update is merged, never clobbered.
   */
  async update<T extends OwnedType> (tenant: TenantId, type: T, id: string, change: (doc: DocumentOf<T>) => DocumentOf<T> | null): Promise<DocumentOf<T>> {
    const result = await casUpdate<DocumentOf<T>>(
      async () => await this.get(tenant, type, id),
      async (doc) => await this.docs.write(stripUndefined({ ...doc, 'updated-at': new Date().toISOString() })),
      change
    )
    return result.doc
  }

  /** Deletes unless another document still refers to this one (ConflictError naming them). */
  async delete<T extends OwnedType> (tenant: TenantId, type: T, id: string, guard?: (doc: DocumentOf<T>) => void): Promise<DocumentOf<T>> {
    const doc = await this.get(tenant, type, id)
    guard?.(doc)
    const dependents = await this.dependents(id)
    if (dependents.length > 0) {
      const names = dependents.slice(0, 5).map((d) => `${d.type} ${d.id}`).join(', ')
      throw new ConflictError(`${type} ${id} is still used by ${names}${dependents.length > 5 ? ', …' : ''}; delete those first`, { details: { dependents } })
    }
    if (doc._rev === undefined) throw new AppError(500, 'ET_INTERNAL', 'document without revision')
    await this.docs.remove(id, doc._rev)
    return doc
  }

  async dependents (id: string): Promise<Array<{ id: string, type: string }>> {
    const res = await this.docs.couch.view(DESIGN, 'by-reference', { key: id, limit: 100 })
    return res.rows.map((row) => ({ id: row.id, type: String(row.value) }))
  }

  /**
   * Checks that every document `fields` refers to exists and belongs to `tenant`; a missing or
   * foreign reference is a 400 naming the field, never a hint that a foreign id exists.
   */
  async assertReferences (tenant: TenantId, type: OwnedType, fields: unknown): Promise<Map<string, unknown>> {
    const found = new Map<string, unknown>()
    for (const { id, target } of referencesOf(type, fields)) {
      if (found.has(id)) continue
      try {
        found.set(id, await this.get(tenant, target, id))
      } catch (err) {
        if (err instanceof NotFoundError) throw new ValidationError(`${target} '${id}' does not exist`, { reference: target, id })
        throw err
      }
    }
    return found
  }
}

function isOwnedBy (raw: unknown, tenant: TenantId, type: OwnedType): boolean {
  return typeof raw === 'object' && raw !== null && Reflect.get(raw, 'user-id') === tenant && Reflect.get(raw, 'type') === type
}

/** Parses a stored document of an owned type (see parseStored). */
export function parseDocument<T extends OwnedType> (type: T, raw: unknown): DocumentOf<T> {
  return parseStored(type, raw)
}

function notFound (type: OwnedType, id: string): NotFoundError {
  return new NotFoundError(`${type} '${id}' not found`)
}

function encodeCursor (key: unknown): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

function decodeCursor (cursor: string, tenant: TenantId, type: OwnedType): unknown[] {
  let key: unknown
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw new ValidationError('cursor is not valid; use the `next` value of a previous page')
  }
  // A cursor is only honoured for the list it came from, so it cannot walk another tenant's rows.
  if (!Array.isArray(key) || key.length !== 4 || key[0] !== tenant || key[1] !== type || typeof key[2] !== 'string' || typeof key[3] !== 'string') {
    throw new ValidationError('cursor is not valid; use the `next` value of a previous page')
  }
  return key
}

function stripUndefined<T extends object> (doc: T): T & { _id: string } & Record<string, unknown> {
  return JSON.parse(JSON.stringify(doc))
}
