import { createServer } from 'node:http'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** What the receiver does with one request: answer with a status (after a pause), or never answer. */
export type Behaviour = { status: number, delayMs?: number } | 'hang'

export interface ReceivedWebhook {
  path: string
  headers: IncomingHttpHeaders
  body: string
  receivedAt: number
  answeredAt: number | null
}

export interface WebhookReceiver {
  url: (path?: string) => string
  received: ReceivedWebhook[]
  /** Behaviours for the next requests, in order; after they run out, `fallback`. */
  script: (...behaviours: Behaviour[]) => void
  fallback: Behaviour
  waitFor: (count: number, ms?: number) => Promise<ReceivedWebhook[]>
  close: () => Promise<void>
}

/** A real HTTP server on loopback that records webhook requests and answers as scripted. */
export async function startReceiver (fallback: Behaviour = { status: 200 }): Promise<WebhookReceiver> {
  const queue: Behaviour[] = []
  const received: ReceivedWebhook[] = []
  const hanging = new Set<ServerResponse>()
  const timers = new Set<NodeJS.Timeout>()
  const receiver: WebhookReceiver = {
    url: (path = '/hook') => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    received,
    script: (...behaviours) => { queue.push(...behaviours) },
    fallback,
    waitFor: async (count, ms = 20_000) => {
      const deadline = Date.now() + ms
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`receiver got ${received.length} webhook(s), expected ${count} within ${ms} ms`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      return received
    },
    close: async () => {
      for (const t of timers) clearTimeout(t)
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const record: ReceivedWebhook = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now(), answeredAt: null }
      received.push(record)
      const behaviour = queue.shift() ?? receiver.fallback
      if (behaviour === 'hang') {
        hanging.add(res)
        return
      }
      const answer = (): void => {
        record.answeredAt = Date.now()
        res.writeHead(behaviour.status, { 'content-type': 'text/plain' }).end(`status ${behaviour.status}`)
      }
      if (behaviour.delayMs === undefined) answer()
      else {
        const timer = setTimeout(() => { timers.delete(timer); answer() }, behaviour.delayMs)
        timers.add(timer)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return receiver
}
