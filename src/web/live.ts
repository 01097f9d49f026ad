import { ApiError } from './api.js'
import type { Api, Doc } from './api.js'
import { SseParser } from './sse.js'
import { RESOURCES, isResourceType } from './store.js'
import type { ResourceType, Store } from './store.js'

export type LiveMode = 'connecting' | 'live' | 'polling'

export interface LiveOptions {
  api: Api
  store: Store
  onMode: (mode: LiveMode) => void
  /** How often to reload while the stream is down (default 5 s). */
  pollMs?: number
}

/**
 * Keeps the store current. Lists are loaded once, then kept up to date by `GET /events`,
 * read with fetch streaming because EventSource cannot send an Authorization header. While
 * the stream is down the lists (and the documents pages watch) are polled instead, and the
 * stream is retried with backoff. A reconnection sends the last event id back, and the server
 * replays what changed meanwhile; when it cannot (`resumed: false`: too far behind, or a first
 * connection) the lists are reloaded once, so nothing missed while disconnected stays missing.
 */
export class LiveUpdates {
  private readonly options: LiveOptions
  private readonly watched = new Map<string, { type: ResourceType, count: number }>()
  private controller: AbortController | null = null
  private pollTimer: number | undefined
  private retryTimer: number | undefined
  private retryMs = 1000
  private stopped = false
  private mode: LiveMode = 'connecting'
  private lastEventId = ''

  constructor (options: LiveOptions) {
    this.options = options
  }

  start (): void {
    this.stopped = false
    this.reload().catch(() => {})
    this.connect()
  }

  stop (): void {
    this.stopped = true
    this.controller?.abort()
    this.controller = null
    window.clearInterval(this.pollTimer)
    window.clearTimeout(this.retryTimer)
    this.pollTimer = undefined
  }

  /** Keeps one document fresh while a page shows it (polled when the stream is down). */
  watch (type: ResourceType, id: string): () => void {
    const entry = this.watched.get(id) ?? { type, count: 0 }
    entry.count += 1
    this.watched.set(id, entry)
    return () => {
      entry.count -= 1
      if (entry.count <= 0) this.watched.delete(id)
    }
  }

  /** Loads the first page of every list and every watched document. */
  async reload (): Promise<void> {
    const { api, store } = this.options
    await Promise.all([
      ...RESOURCES.map(async ({ type, plural }) => {
        const page = await api.list(plural)
        store.replacePage(type, page.items, page.next === null)
      }),
      ...[...this.watched].map(async ([id, { type }]) => {
        await this.refreshOne(type, id)
      })
    ])
  }

  async refreshOne (type: ResourceType, id: string): Promise<Doc | null> {
    const plural = RESOURCES.find((r) => r.type === type)?.plural ?? ''
    try {
      const doc = await this.options.api.doc(`/${plural}/${encodeURIComponent(id)}`)
      this.options.store.put(type, doc)
      return doc
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this.options.store.remove(type, id)
        return null
      }
      throw err
    }
  }

  private setMode (mode: LiveMode): void {
    if (this.mode === mode) return
    this.mode = mode
    if (mode === 'polling' && this.pollTimer === undefined) {
      this.pollTimer = window.setInterval(() => { this.reload().catch(() => {}) }, this.options.pollMs ?? 5000)
    }
    if (mode === 'live') {
      window.clearInterval(this.pollTimer)
      this.pollTimer = undefined
    }
    this.options.onMode(mode)
  }

  private connect (): void {
    if (this.stopped) return
    const controller = new AbortController()
    this.controller = controller
    this.read(controller).then(
      () => { this.retry(false) },
      (err: unknown) => { this.retry(err instanceof ApiError && err.status === 401) }
    )
  }

  private retry (unauthorized: boolean): void {
    if (this.stopped || unauthorized) return
    this.setMode('polling')
    window.clearTimeout(this.retryTimer)
    this.retryTimer = window.setTimeout(() => { this.connect() }, this.retryMs)
    this.retryMs = Math.min(this.retryMs * 2, 30_000)
  }

  private async read (controller: AbortController): Promise<void> {
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (this.lastEventId !== '') headers['last-event-id'] = this.lastEventId
    const res = await this.options.api.fetch('/events', { signal: controller.signal, headers })
    if (res.body === null) throw new Error('no response body')
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    const parser = new SseParser()
    let heartbeatMs = 15_000
    let lastData = Date.now()
    // A connection that silently died (a sleeping laptop, a dropped NAT entry) shows no error:
    // three missed heartbeats end it.
    const watchdog = window.setInterval(() => {
      if (Date.now() - lastData > heartbeatMs * 3) controller.abort()
    }, 5000)
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        lastData = Date.now()
        for (const event of parser.push(value)) {
          if (event.event === 'ready') {
            const ready = JSON.parse(event.data) as object
            const beat: unknown = Reflect.get(ready, 'heartbeat-ms')
            if (typeof beat === 'number' && beat > 0) heartbeatMs = beat
            this.retryMs = 1000
            this.setMode('live')
            // Not resumed: whatever changed while no stream was open is only in a fresh load.
            if (Reflect.get(ready, 'resumed') !== true) this.reload().catch(() => {})
          } else if (event.event === 'change') {
            this.apply(event.data)
          }
        }
        // A resumed stream's ready frame has no id: the one from before still holds.
        if (parser.lastEventId !== '') this.lastEventId = parser.lastEventId
      }
    } finally {
      window.clearInterval(watchdog)
    }
  }

  private apply (data: string): void {
    let value: unknown
    try {
      value = JSON.parse(data)
    } catch {
      return
    }
    if (typeof value !== 'object' || value === null) return
    const type: unknown = Reflect.get(value, 'type')
    const id: unknown = Reflect.get(value, 'id')
    const deleted: unknown = Reflect.get(value, 'deleted')
    const doc: unknown = Reflect.get(value, 'doc')
    if (!isResourceType(type) || typeof id !== 'string') return
    if (deleted === true) {
      this.options.store.remove(type, id)
    } else if (typeof doc === 'object' && doc !== null && typeof Reflect.get(doc, 'id') === 'string') {
      this.options.store.put(type, doc as Doc)
    } else {
      // The server could not render it; read it the ordinary way.
      this.refreshOne(type, id).catch(() => {})
    }
  }
}
