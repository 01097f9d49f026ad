import type { CouchDatabase } from '../db/couch.js'

export interface HealthReport {
  status: 'ok' | 'degraded'
  checks: Record<string, { ok: boolean, message?: string }>
}

/** Answers GET /health: is each backend the server needs reachable right now. */
export type HealthCheck = () => Promise<HealthReport>

export function createHealthCheck (probes: Record<string, () => Promise<void>>): HealthCheck {
  return async () => {
    const entries = await Promise.all(Object.entries(probes).map(async ([name, probe]) => {
      try {
        await withTimeout(probe(), 3000)
        return [name, { ok: true }] as const
      } catch (err) {
        // The reason is not shown: /health is public, and backend errors can name internal hosts.
        return [name, { ok: false, message: err instanceof Error && /no answer/.test(err.message) ? 'no answer within 3 s' : 'unreachable' }] as const
      }
    }))
    const checks = Object.fromEntries(entries)
    return { status: entries.every(([, c]) => c.ok) ? 'ok' : 'degraded', checks }
  }
}

export function databaseProbe (db: CouchDatabase): () => Promise<void> {
  return async () => { await db.server.db.get(db.name) }
}

async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}
