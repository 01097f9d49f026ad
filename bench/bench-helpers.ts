import { createServer } from 'node:net'
import { spawnTs } from '../test/helpers/processes.js'
import type { Spawned } from '../test/helpers/processes.js'

/** A loopback port nobody listens on right now. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      srv.close(() => { if (typeof address === 'object' && address !== null) resolve(address.port); else reject(new Error('no port')) })
    })
  })
}

/** POSTs JSON and returns the created document; throws unless 201. */
export async function post (url: string, auth: string | undefined, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: auth }) }, body: JSON.stringify(body) })
  if (res.status !== 201) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`)
  return await res.json() as Record<string, unknown>
}

/** Starts the real server process (through tsx) and waits until /health answers. */
export async function startServer (port: number, args: string[]): Promise<{ server: Spawned, base: string }> {
  const server = spawnTs('src/server.ts', ['--port', String(port), ...args])
  const base = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (await fetch(`${base}/health`).then((r) => r.ok, () => false)) break
    if (i > 300) throw new Error(`server did not start: ${server.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { server, base }
}

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}
