import type { TenantId } from '../../models/common.js'
import { documentSchemas } from '../../models/documents.js'
import type { OwnedType } from '../../models/documents.js'
import type { ProcessingState } from '../../models/processing-state.js'
import type { Change } from '../changes/changes-feed.js'
import { AppError } from '../lib/errors.js'

/** One document change as a client sees it: what lists and pages need, or the whole document. */
export interface ChangeEvent {
  id: string
  type: OwnedType
  /** The job's processing state; null for solvers and classifiers, and for deletions. */
  state: ProcessingState | null
  deleted: boolean
  /** The document as `GET /<resource>/:id` shows it; null when it was deleted. */
  doc: Record<string, unknown> | null
}

/**
 * Where one subscriber's frames go (an HTTP response in production). `write` must not throw;
 * `pendingBytes` is what was written but not yet taken by the client, which is how the hub
 * notices a client that does not keep up.
 */
export interface EventSink {
  write: (text: string) => void
  readonly pendingBytes: number
  /** Ends the stream; the hub has already forgotten the subscriber when it calls this. */
  close: (reason: 'slow' | 'shutdown') => void
}

export interface ChangeHubOptions {
  /** A comment line this often keeps proxies and clients from timing out an idle stream (default 15 s). */
  heartbeatMs?: number
  /** A subscriber with more than this many bytes not yet taken is dropped (default 1 MiB). */
  maxPendingBytes?: number
  /** Streams one tenant may hold open at once (default 16). */
  maxPerTenant?: number
  /** Deletions carry no owner, so the hub remembers the owner of this many recent ids (default 100,000). */
  rememberIds?: number
}

export interface HubStats {
  subscribers: number
  /** Subscribers dropped because they did not keep up, since the hub started. */
  dropped: number
}

const OWNED_TYPES: ReadonlySet<string> = new Set<OwnedType>(['datafile', 'dataset', 'solver', 'training-job', 'classifier', 'classify-job'])

/** A tenant already holds `maxPerTenant` open streams. */
export class TooManyStreamsError extends AppError {
  constructor (message: string) {
    super(429, 'ET_TOO_MANY_STREAMS', message)
  }
}

/**
 * Fans database changes out to the server-sent-event streams of their owners, in this
 * process. A change reaches only the subscribers of the tenant in its `user-id` (user
 * documents, with their password hashes, never leave). Each frame is encoded once per change,
 * not per subscriber, and a subscriber whose unsent output grows past `maxPendingBytes` is
 * dropped rather than buffered without bound: it reconnects and reloads.
 */
export class ChangeHub {
  private readonly heartbeatMs: number
  private readonly maxPendingBytes: number
  private readonly maxPerTenant: number
  private readonly rememberIds: number
  private readonly byTenant = new Map<TenantId, Set<EventSink>>()
  private readonly owners = new Map<string, { tenant: TenantId, type: OwnedType }>()
  private readonly timer: NodeJS.Timeout
  private dropped = 0
  private closed = false

  constructor (options: ChangeHubOptions = {}) {
    this.heartbeatMs = options.heartbeatMs ?? 15_000
    this.maxPendingBytes = options.maxPendingBytes ?? 1024 * 1024
    this.maxPerTenant = options.maxPerTenant ?? 16
    this.rememberIds = options.rememberIds ?? 100_000
    this.timer = setInterval(() => { this.broadcastAll(': heartbeat\n\n') }, this.heartbeatMs)
    this.timer.unref()
  }

  get stats (): HubStats {
    let subscribers = 0
    for (const sinks of this.byTenant.values()) subscribers += sinks.size
    return { subscribers, dropped: this.dropped }
  }

  /**
   * Adds a subscriber and writes the opening `ready` frame; returns the function that removes
   * it (call it when the client disconnects). Throws TooManyStreamsError over the tenant's cap.
   */
  subscribe (tenant: TenantId, sink: EventSink): () => void {
    if (this.closed) throw new Error('change hub is closed')
    let sinks = this.byTenant.get(tenant)
    if (sinks !== undefined && sinks.size >= this.maxPerTenant) {
      throw new TooManyStreamsError(`at most ${this.maxPerTenant} event streams per user are open at once`)
    }
    if (sinks === undefined) {
      sinks = new Set()
      this.byTenant.set(tenant, sinks)
    }
    sinks.add(sink)
    // `retry` tells EventSource-style clients how long to wait before reconnecting.
    sink.write(`retry: 3000\nevent: ready\ndata: ${JSON.stringify({ 'heartbeat-ms': this.heartbeatMs })}\n\n`)
    return () => { this.remove(tenant, sink) }
  }

  /** Takes one change of the database feed; never throws and never waits (it runs inside the feed's callback). */
  publish (change: Change): void {
    if (this.closed) return
    const event = this.toEvent(change)
    if (event === null) return
    const sinks = this.byTenant.get(event.tenant)
    if (sinks === undefined || sinks.size === 0) return
    const frame = `event: change\ndata: ${JSON.stringify(event.event)}\n\n`
    for (const sink of [...sinks]) this.send(event.tenant, sink, frame)
  }

  /** Ends every stream and stops the heartbeat. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    for (const sinks of this.byTenant.values()) {
      for (const sink of sinks) sink.close('shutdown')
    }
    this.byTenant.clear()
  }

  private toEvent (change: Change): { tenant: TenantId, event: ChangeEvent } | null {
    if (change.deleted === true) {
      const owner = this.owners.get(change.id)
      if (owner === undefined) return null
      this.owners.delete(change.id)
      return { tenant: owner.tenant, event: { id: change.id, type: owner.type, state: null, deleted: true, doc: null } }
    }
    const raw = change.doc
    if (typeof raw !== 'object' || raw === null) return null
    const type: unknown = Reflect.get(raw, 'type')
    const tenant: unknown = Reflect.get(raw, 'user-id')
    if (typeof type !== 'string' || !OWNED_TYPES.has(type) || typeof tenant !== 'string') return null
    const ownedType = type as OwnedType
    this.remember(change.id, tenant as TenantId, ownedType)
    if (!this.byTenant.has(tenant as TenantId)) return null
    // The strict schema drops fields the API would not show; a document that does not parse
    // (written by a newer version, say) still tells the client its id and state.
    const parsed = documentSchemas[ownedType].safeParse(raw)
    const rawState: unknown = Reflect.get(raw, 'processing-state')
    const doc = parsed.success ? { ...parsed.data, id: change.id } as Record<string, unknown> : null
    const state = typeof rawState === 'string' ? rawState as ProcessingState : null
    return { tenant: tenant as TenantId, event: { id: change.id, type: ownedType, state, deleted: false, doc } }
  }

  private remember (id: string, tenant: TenantId, type: OwnedType): void {
    // Map keeps insertion order: re-inserting moves the id to the newest end, so the oldest
    // is evicted first.
    this.owners.delete(id)
    this.owners.set(id, { tenant, type })
    if (this.owners.size > this.rememberIds) {
      const oldest = this.owners.keys().next()
      if (oldest.done !== true) this.owners.delete(oldest.value)
    }
  }

  private broadcastAll (frame: string): void {
    for (const [tenant, sinks] of this.byTenant) {
      for (const sink of [...sinks]) this.send(tenant, sink, frame)
    }
  }

  private send (tenant: TenantId, sink: EventSink, frame: string): void {
    if (sink.pendingBytes + Buffer.byteLength(frame) > this.maxPendingBytes) {
      this.dropped++
      this.remove(tenant, sink)
      sink.close('slow')
      return
    }
    sink.write(frame)
  }

  private remove (tenant: TenantId, sink: EventSink): void {
    const sinks = this.byTenant.get(tenant)
    if (sinks === undefined) return
    sinks.delete(sink)
    if (sinks.size === 0) this.byTenant.delete(tenant)
  }
}

export function createChangeHub (options: ChangeHubOptions = {}): ChangeHub {
  return new ChangeHub(options)
}
