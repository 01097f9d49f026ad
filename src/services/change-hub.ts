import type { TenantId } from '../../models/common.js'
import { documentSchemas } from '../../models/documents.js'
import type { OwnedType } from '../../models/documents.js'
import type { ProcessingState } from '../../models/processing-state.js'
import type { Change } from '../db/change.js'
import { revGeneration, seqText } from '../db/change.js'
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
  /** The database's change history, for resuming a stream; without it streams never resume. */
  history?: ChangeHistory
  /** Most changes read to resume one stream; further behind, the client reloads instead (default 5,000). */
  maxReplay?: number
}

/** Read access to the database's changes, which is what resuming a stream needs. */
export interface ChangeHistory {
  /** The current end of the changes: where a new stream's history starts. */
  position: () => Promise<unknown>
  /** Up to `limit` changes after `since`, oldest first; `last` is where they end. */
  read: (since: string, limit: number) => Promise<{ changes: Change[], last: unknown }>
}

/** What the `ready` frame tells a client about the changes it missed. */
interface Start {
  /** Where this stream's history starts, when it is not resuming (null: unknown). */
  position: string | null
  /** Resuming: what changed since the client's last event id, latest per document. */
  missed: Frame[] | null
}

/** A change frame, with the document and revision generation it is about. */
interface Frame {
  id: string
  frame: string
  rev: number
}

/** A subscriber whose first frame is not written yet; live frames wait behind its history. */
interface Starting {
  queued: Frame[]
  bytes: number
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
  private readonly history: ChangeHistory | undefined
  private readonly maxReplay: number
  private readonly byTenant = new Map<TenantId, Set<EventSink>>()
  private readonly starting = new Map<EventSink, Starting>()
  private readonly owners = new Map<string, { tenant: TenantId, type: OwnedType }>()
  private readonly timer: NodeJS.Timeout
  private dropped = 0
  private closed = false

  constructor (options: ChangeHubOptions = {}) {
    this.heartbeatMs = options.heartbeatMs ?? 15_000
    this.maxPendingBytes = options.maxPendingBytes ?? 1024 * 1024
    this.maxPerTenant = options.maxPerTenant ?? 16
    this.rememberIds = options.rememberIds ?? 100_000
    this.history = options.history
    this.maxReplay = options.maxReplay ?? 5000
    this.timer = setInterval(() => { this.broadcastAll(': heartbeat\n\n') }, this.heartbeatMs)
    this.timer.unref()
  }

  get stats (): HubStats {
    let subscribers = 0
    for (const sinks of this.byTenant.values()) subscribers += sinks.size
    return { subscribers, dropped: this.dropped }
  }

  /**
   * Adds a subscriber; returns the function that removes it (call it when the client
   * disconnects). Throws TooManyStreamsError over the tenant's cap, before writing anything.
   *
   * The stream opens with a `ready` frame. With `lastEventId` (the id of the last frame the
   * client got, sent back when it reconnects) and a history to read, the hub first reads what
   * changed since then: `ready` says `resumed: true` and those changes follow, so the client
   * keeps what it has. Otherwise `ready` says `resumed: false`, carries the current position
   * as its id, and the client loads afresh. Live changes that arrive meanwhile wait their turn.
   */
  subscribe (tenant: TenantId, sink: EventSink, options: { lastEventId?: string } = {}): () => void {
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
    if (this.history === undefined) {
      this.open(tenant, sink, { position: null, missed: null })
    } else {
      this.starting.set(sink, { queued: [], bytes: 0 })
      this.prepare(tenant, this.history, options.lastEventId).then(
        (start) => { this.open(tenant, sink, start) },
        () => { this.open(tenant, sink, { position: null, missed: null }) }
      )
    }
    return () => { this.remove(tenant, sink) }
  }

  /** Takes one change of the database feed; never throws and never waits (it runs inside the feed's callback). */
  publish (change: Change): void {
    if (this.closed) return
    const event = this.toEvent(change)
    if (event === null) return
    const sinks = this.byTenant.get(event.tenant)
    if (sinks === undefined || sinks.size === 0) return
    const frame = changeFrame(event.event, seqText(change.seq))
    const rev = changeGeneration(change)
    for (const sink of [...sinks]) {
      const waiting = this.starting.get(sink)
      if (waiting === undefined) this.send(event.tenant, sink, frame)
      else this.hold(event.tenant, sink, waiting, { id: change.id, frame, rev })
    }
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
    this.starting.clear()
  }

  /** Where a new stream starts, or what a resuming one missed (null when it cannot be told). */
  private async prepare (tenant: TenantId, history: ChangeHistory, lastEventId: string | undefined): Promise<Start> {
    if (lastEventId !== undefined) {
      const missed = await this.missedSince(tenant, history, lastEventId).catch(() => null)
      if (missed !== null) return { position: null, missed }
    }
    return { position: seqText(await history.position()), missed: null }
  }

  /**
   * The tenant's changes after `since`, the latest per document, in the order they happened;
   * null when more than `maxReplay` changes would have to be read (a reload is cheaper).
   */
  private async missedSince (tenant: TenantId, history: ChangeHistory, since: string): Promise<Start['missed']> {
    const latest = new Map<string, Frame>()
    let from = since
    for (let read = 0; ;) {
      const page = await history.read(from, Math.min(500, this.maxReplay - read + 1))
      for (const change of page.changes) {
        const event = this.toEvent(change, { replay: true })
        if (event === null || event.tenant !== tenant) continue
        // Re-inserted, so the map's order stays the order of each document's latest change.
        latest.delete(change.id)
        latest.set(change.id, { id: change.id, frame: changeFrame(event.event, seqText(change.seq)), rev: changeGeneration(change) })
      }
      read += page.changes.length
      if (read > this.maxReplay) return null
      if (page.changes.length === 0) return [...latest.values()]
      from = seqText(page.last)
    }
  }

  /** Writes the `ready` frame, then what the client missed, then the live frames that waited. */
  private open (tenant: TenantId, sink: EventSink, start: Start): void {
    const waiting = this.starting.get(sink)
    this.starting.delete(sink)
    // Removed while the history was read: the client left, or the hub closed.
    if (!(this.byTenant.get(tenant)?.has(sink) ?? false)) return
    // `retry` tells EventSource-style clients how long to wait before reconnecting.
    const id = start.position === null ? '' : `id: ${start.position}\n`
    sink.write(`retry: 3000\nevent: ready\n${id}data: ${JSON.stringify({ 'heartbeat-ms': this.heartbeatMs, resumed: start.missed !== null })}\n\n`)
    const replayed = new Map<string, number>()
    for (const missed of start.missed ?? []) {
      if (!this.send(tenant, sink, missed.frame)) return
      replayed.set(missed.id, missed.rev)
    }
    for (const live of waiting?.queued ?? []) {
      // Already sent at this revision or a later one by the history read: an older state would
      // only flicker back.
      if ((replayed.get(live.id) ?? -1) >= live.rev) continue
      if (!this.send(tenant, sink, live.frame)) return
    }
  }

  /** Queues a live frame for a stream still reading its history, within the same byte bound. */
  private hold (tenant: TenantId, sink: EventSink, waiting: Starting, live: Frame): void {
    waiting.bytes += Buffer.byteLength(live.frame)
    if (waiting.bytes > this.maxPendingBytes) this.drop(tenant, sink)
    else waiting.queued.push(live)
  }

  private toEvent (change: Change, options: { replay?: boolean } = {}): { tenant: TenantId, event: ChangeEvent } | null {
    if (change.deleted === true) {
      const owner = this.owners.get(change.id)
      if (owner === undefined) return null
      // A replayed deletion may be followed by the live one: keep the owner for it.
      if (options.replay !== true) this.owners.delete(change.id)
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
      // A stream still reading its history has not written its `ready` frame yet.
      for (const sink of [...sinks]) if (!this.starting.has(sink)) this.send(tenant, sink, frame)
    }
  }

  /** Writes a frame, or drops a subscriber that does not keep up; false when it was dropped. */
  private send (tenant: TenantId, sink: EventSink, frame: string): boolean {
    if (sink.pendingBytes + Buffer.byteLength(frame) > this.maxPendingBytes) {
      this.drop(tenant, sink)
      return false
    }
    sink.write(frame)
    return true
  }

  private drop (tenant: TenantId, sink: EventSink): void {
    this.dropped++
    this.remove(tenant, sink)
    sink.close('slow')
  }

  private remove (tenant: TenantId, sink: EventSink): void {
    const sinks = this.byTenant.get(tenant)
    if (sinks === undefined) return
    sinks.delete(sink)
    this.starting.delete(sink)
    if (sinks.size === 0) this.byTenant.delete(tenant)
  }
}

function changeFrame (event: ChangeEvent, seq: string): string {
  return `event: change\ndata: ${JSON.stringify(event)}\nid: ${seq}\n\n`
}

/** The generation of a change's revision; -1 when the change does not say. */
function changeGeneration (change: Change): number {
  return revGeneration(change.changes?.[0]?.rev)
}

export function createChangeHub (options: ChangeHubOptions = {}): ChangeHub {
  return new ChangeHub(options)
}
