import { createServer, request } from 'node:http'
import type { ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface CountingProxy {
  url: string
  /** Requests seen so far, as `METHOD /path` (query left off). */
  readonly requests: string[]
  count: (method: string, path: string) => number
  /** Set to a status to answer `/events` with it instead of passing it on (an older server: 404). */
  refuseEvents: number | null
  /** While true every connection is dropped unanswered, as while the server restarts. */
  offline: boolean
  /** `/events` responses passed on and still open. */
  readonly openStreams: number
  /** Cuts every open `/events` response, as a dropped connection would. */
  cutStreams: () => void
  close: () => Promise<void>
}

/**
 * A plain HTTP proxy in front of the test app that counts what `et` asks for, so tests can
 * tell polling from following the event stream by requests rather than by timing.
 */
export async function startCountingProxy (target: string): Promise<CountingProxy> {
  const streams = new Set<ServerResponse>()
  const proxy: CountingProxy = {
    url: '',
    requests: [],
    count: (method, path) => proxy.requests.filter((r) => r === `${method} ${path}`).length,
    refuseEvents: null,
    offline: false,
    get openStreams () { return streams.size },
    cutStreams: () => {
      for (const res of streams) res.destroy()
      streams.clear()
    },
    close: async () => {
      proxy.cutStreams()
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    proxy.requests.push(`${req.method ?? 'GET'} ${path}`)
    if (proxy.offline) {
      req.socket.destroy()
      return
    }
    if (path === '/events' && proxy.refuseEvents !== null) {
      res.writeHead(proxy.refuseEvents, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ statusCode: proxy.refuseEvents, code: 'FST_ERR_NOT_FOUND', error: 'Not Found', message: 'Route GET:/events not found' }))
      return
    }
    const upstream = request(`${target}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      if (path === '/events') streams.add(res)
      answer.pipe(res)
    })
    upstream.on('error', () => { res.destroy() })
    // The client went away (or was cut): let the app see its stream close too.
    res.on('close', () => {
      streams.delete(res)
      upstream.destroy()
    })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return proxy
}
