import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A real HTTP server on loopback serving fixed bodies by path (datafile URLs, image URLs). */
export async function serveFiles (files: Record<string, { body: Buffer | string, status?: number, type?: string }>): Promise<{ url: (path: string) => string, close: () => Promise<void>, hits: () => Record<string, number> }> {
  const hits: Record<string, number> = {}
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    hits[path] = (hits[path] ?? 0) + 1
    const file = files[path]
    if (file === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    res.writeHead(file.status ?? 200, { 'content-type': file.type ?? 'application/octet-stream' }).end(file.body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hits: () => hits,
    close: async () => { await new Promise<void>((resolve) => server.close(() => resolve())) }
  }
}
