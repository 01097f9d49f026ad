import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import type { CouchLocation } from '../db/couch.js'
import { processAlive } from '../lib/process-alive.js'

const FILE_NAME = 'embedded-db.json'

const Pointer = z.object({ pid: z.number().int(), socketPath: z.string().min(1), dbName: z.string().min(1) })

/**
 * Where a running server's embedded database listens. Its Unix socket sits in a random private
 * temp dir, so admin tools (`elastic-thought status`, `publish-metrics`) started with the same
 * --data-dir find it through this file (mode 0600; the socket dir itself is 0700).
 */
export function writeEmbeddedDbFile (dataDir: string, pointer: { socketPath: string, dbName: string }): () => void {
  const path = join(dataDir, FILE_NAME)
  writeFileSync(path, JSON.stringify({ pid: process.pid, ...pointer }) + '\n', { mode: 0o600 })
  return () => {
    // Only our own pointer: a newer server on the same data dir may have replaced it.
    if (readEmbeddedDbFile(dataDir)?.pid === process.pid) rmSync(path, { force: true })
  }
}

/** The pointer left by a server that is still running, or undefined. */
export function readEmbeddedDbFile (dataDir: string): (CouchLocation & { pid: number }) | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(join(dataDir, FILE_NAME), 'utf8'))
  } catch {
    return undefined
  }
  const parsed = Pointer.safeParse(raw)
  if (!parsed.success || !processAlive(parsed.data.pid)) return undefined
  return { serverUrl: 'http://localhost', dbName: parsed.data.dbName, socketPath: parsed.data.socketPath, pid: parsed.data.pid }
}
