import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { startEmbeddedCouch } from '../../src/db/embedded-couch.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** A real CouchDB-protocol server (express-pouchdb) on loopback, shared by all test files. */
    couchUrl: string
  }
}

// One database server for the whole run; each test file creates its own database in it.
export default async function setup (project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'et-test-couch-'))
  const couch = await startEmbeddedCouch({ dataDir: dir, inMemory: true, transport: 'tcp', restart: false })
  project.provide('couchUrl', couch.serverUrl)
  return async () => {
    await couch.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
