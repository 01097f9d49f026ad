import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ChangesFeed } from '../../src/changes/changes-feed.js'
import { CouchDatabase } from '../../src/db/couch.js'
import { startEmbeddedCouch } from '../../src/db/embedded-couch.js'
import type { EmbeddedCouch } from '../../src/db/embedded-couch.js'
import { createLogger } from '../../src/lib/logger.js'

const waitFor = async (check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('embedded database', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })

  const open = async (dir: string, restart = true): Promise<{ couch: EmbeddedCouch, db: CouchDatabase }> => {
    const couch = await startEmbeddedCouch({ dataDir: dir, restart })
    const db = new CouchDatabase({ serverUrl: couch.serverUrl, dbName: 'elastic-thought', ...(couch.socketPath === undefined ? {} : { socketPath: couch.socketPath }) })
    cleanup.push(async () => { await db.close(); await couch.close() })
    return { couch, db }
  }

  it('listens on a private Unix socket and keeps data across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'et-embedded-'))
    cleanup.push(async () => { rmSync(dir, { recursive: true, force: true }) })
    const first = await open(dir)
    expect(first.couch.socketPath).toBeDefined()
    // Only the owner may enter the socket's directory.
    expect(statSync(join(first.couch.socketPath ?? '', '..')).mode & 0o077).toBe(0)
    await first.db.ensureExists()
    await first.db.put({ _id: 'kept', value: 42 })
    await first.db.close()
    await first.couch.close()

    const second = await open(dir)
    await second.db.ensureExists()
    expect(await second.db.get('kept')).toMatchObject({ _id: 'kept', value: 42 })
  })

  it('restarts a crashed database process; clients and the changes feed carry on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'et-embedded-'))
    cleanup.push(async () => { rmSync(dir, { recursive: true, force: true }) })
    const { couch, db } = await open(dir)
    await db.ensureExists()
    const seen: string[] = []
    const feed = new ChangesFeed(db, { since: 0, includeDocs: false, heartbeatMs: 500, logger: createLogger('silent'), onChange: (c) => seen.push(c.id) })
    feed.start()
    cleanup.push(async () => { await feed.stop() })
    await db.put({ _id: 'before-crash' })
    await waitFor(() => seen.includes('before-crash'))

    const oldPid = couch.pid
    process.kill(oldPid ?? 0, 'SIGKILL')
    await waitFor(() => couch.pid !== oldPid)
    // The same socket path serves again, so the same client object works without being told.
    await waitFor(async () => await db.put({ _id: 'after-crash' }).then(() => true, () => false))
    await waitFor(() => seen.includes('after-crash'))
    expect(seen.filter((id) => id === 'before-crash')).toHaveLength(1)
  })
})
