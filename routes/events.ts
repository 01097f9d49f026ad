import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { EventSink } from '../src/services/change-hub.js'
import { ErrorResponse } from './error-response.js'
import { security } from './resource-routes.js'

/**
 * An HTTP response as a hub subscriber. The status line and headers go out with the first
 * frame, so a refused subscription (429) can still be answered as an ordinary error.
 */
class ResponseSink implements EventSink {
  private readonly res: ServerResponse
  private opened = false

  constructor (res: ServerResponse) {
    this.res = res
  }

  get pendingBytes (): number {
    return this.res.writableLength
  }

  write (text: string): void {
    if (this.res.destroyed || this.res.writableEnded) return
    if (!this.opened) {
      this.opened = true
      this.res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        // nginx and similar proxies would otherwise hold events back to fill a buffer.
        'x-accel-buffering': 'no'
      })
    }
    this.res.write(text)
  }

  close (reason: 'slow' | 'shutdown'): void {
    // A slow client would never drain what is queued for it: cut the connection.
    if (reason === 'slow') this.res.destroy()
    else this.res.end()
  }
}

// What the server put in `id:` fields: a database sequence, printable and without spaces.
const EventHeaders = z.object({
  'last-event-id': z.string().regex(/^[\x21-\x7e]{1,512}$/, 'must be the id of an event this server sent').optional()
})

/**
 * `GET /events`: the caller's own document changes as server-sent events (`event: change`,
 * data: {id, type, state, deleted, doc}), a `ready` event first and a comment line as a
 * heartbeat. Every change carries its database sequence as its event id; a client that sends
 * the last one back in `Last-Event-ID` when it reconnects gets what it missed instead of
 * having to reload. Browsers read it with fetch streaming, because EventSource cannot send
 * the Authorization header.
 */
export async function eventRoutes (scope: FastifyInstance) {
  const app = scope.withTypeProvider<ZodTypeProvider>()
  const open = new Set<ResponseSink>()
  // Server close waits for open connections; streams never end by themselves.
  app.addHook('preClose', async () => {
    for (const sink of open) sink.close('shutdown')
    open.clear()
  })

  app.get('/events', {
    schema: {
      tags: ['events'],
      summary: 'Stream changes to your documents as server-sent events (text/event-stream): a `ready` event {heartbeat-ms, resumed}, then `change` events {id, type, state, deleted, doc}; a comment line every 15 s as a heartbeat. Send the last event id back in Last-Event-ID to resume: `resumed: true` means the changes you missed follow, false that you should reload',
      security,
      headers: EventHeaders,
      response: { 400: ErrorResponse, 401: ErrorResponse, 429: ErrorResponse }
    }
  }, async (request, reply) => {
    const sink = new ResponseSink(reply.raw)
    // Throws before anything is written when the tenant has too many streams open.
    const lastEventId = request.headers['last-event-id']
    const unsubscribe = app.changeHub.subscribe(request.tenantId, sink, lastEventId === undefined ? {} : { lastEventId })
    reply.hijack()
    const cleanup = (): void => {
      unsubscribe()
      open.delete(sink)
    }
    if (reply.raw.destroyed) {
      cleanup()
      return
    }
    open.add(sink)
    reply.raw.once('close', cleanup)
  })
}
