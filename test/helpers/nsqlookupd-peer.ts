/**
 * nsqlookupd HTTP TEST PEER — not nsqlookupd (which cannot be installed here either; see
 * nsq-peer.ts). It answers the discovery calls clients make, from a list of NsqPeer "producers"
 * instead of nsqd REGISTER messages: a producer lists a topic once the topic exists on it, as a
 * real nsqd registers a topic with lookupd when the topic is created.
 *
 * - `GET /lookup?topic=T` → 200 `{ channels, producers }` (nsqlookupd ≥ 1.0), or with
 *   `legacyResponses` the pre-1.0 `{ status_code, status_txt, data: { channels, producers } }`
 *   (nsqjs 0.13 reads `producers ?? data.producers`); 404 `TOPIC_NOT_FOUND` for an unknown topic,
 *   400 `MISSING_ARG_TOPIC` without one;
 * - `GET /ping` → `OK`; `GET /topics`; `GET /nodes`.
 */
import http from 'node:http'
import type { NsqPeer } from './nsq-peer.js'

export interface NsqLookupdPeerOptions {
  producers?: NsqPeer[]
  legacyResponses?: boolean
}

export class NsqLookupdPeer {
  readonly host = '127.0.0.1'
  readonly counters = { lookups: 0, pings: 0 }
  producers: NsqPeer[]
  legacyResponses: boolean
  readonly #server: http.Server
  #port = 0

  private constructor (options: NsqLookupdPeerOptions) {
    this.producers = options.producers ?? []
    this.legacyResponses = options.legacyResponses ?? false
    this.#server = http.createServer((req, res) => this.#handle(req, res))
  }

  static async start (options: NsqLookupdPeerOptions = {}): Promise<NsqLookupdPeer> {
    const peer = new NsqLookupdPeer(options)
    await new Promise<void>((resolve, reject) => {
      peer.#server.once('error', reject)
      peer.#server.listen(0, peer.host, () => resolve())
    })
    const address = peer.#server.address()
    if (address === null || typeof address === 'string') throw new Error('lookupd peer has no TCP address')
    peer.#port = address.port
    return peer
  }

  /** `host:port`, the form nsqjs's lookupdHTTPAddresses takes. */
  get address (): string {
    return `${this.host}:${this.#port}`
  }

  get url (): string {
    return `http://${this.address}`
  }

  async stop (): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #producerInfo (peer: NsqPeer): Record<string, unknown> {
    return {
      remote_address: `${peer.host}:${peer.port}`,
      hostname: 'localhost',
      broadcast_address: peer.host,
      tcp_port: peer.port,
      http_port: 0,
      version: peer.version
    }
  }

  #handle (req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url)
    const live = this.producers.filter((p) => p.listening)
    if (req.method !== 'GET') return this.#reply(res, 405, { message: 'METHOD_NOT_ALLOWED' })
    switch (url.pathname) {
      case '/ping':
        this.counters.pings++
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('OK')
        return
      case '/lookup': {
        this.counters.lookups++
        const topic = url.searchParams.get('topic')
        if (topic === null || topic === '') return this.#reply(res, 400, { message: 'MISSING_ARG_TOPIC' })
        const producers = live.filter((p) => p.hasTopic(topic))
        if (producers.length === 0) return this.#reply(res, 404, { message: 'TOPIC_NOT_FOUND' })
        const channels = [...new Set(producers.flatMap((p) => p.channelNames(topic)))]
        return this.#reply(res, 200, { channels, producers: producers.map((p) => this.#producerInfo(p)) })
      }
      case '/topics':
        return this.#reply(res, 200, { topics: [...new Set(live.flatMap((p) => p.topicNames()))] })
      case '/nodes':
        return this.#reply(res, 200, { producers: live.map((p) => ({ ...this.#producerInfo(p), topics: p.topicNames() })) })
      default:
        return this.#reply(res, 404, { message: 'NOT_FOUND' })
    }
  }

  #reply (res: http.ServerResponse, status: number, body: Record<string, unknown>): void {
    let payload: Record<string, unknown> = body
    if (this.legacyResponses) {
      const message = typeof body.message === 'string' ? body.message : 'OK'
      payload = status === 200 ? { status_code: 200, status_txt: 'OK', data: body } : { status_code: status, status_txt: message, data: null }
    }
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(payload))
  }
}
