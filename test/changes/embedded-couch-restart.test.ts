import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CouchDatabase } from '../../src/db/couch.js'
import { startEmbeddedCouch } from '../../src/db/embedded-couch.js'
import { sleep, waitFor } from '../jobs/life-cycle-fixtures.js'
import { processAlive } from '../../src/lib/process-alive.js'

/** Pids of this process's embedded database children (the bracket keeps pgrep from matching itself). */
function databaseChildren (): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-f', 'embedded-couch-mai[n]']).toString().trim().split(/\s+/).map(Number)
  } catch {
    return [] // pgrep exits 1 when nothing matches
  }
}

describe('embedded database restarts', () => {
  it('restarts after SIGKILL on the same port with the data intact, repeatedly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'et-couch-restart-'))
    const exits: Array<NodeJS.Signals | null> = []
    const couch = await startEmbeddedCouch({ dataDir: dir, transport: 'tcp', onExit: (_code, signal) => exits.push(signal) })
    const db = new CouchDatabase({ serverUrl: couch.serverUrl, dbName: 'kept' })
    try {
      await db.ensureExists()
      for (let round = 0; round < 2; round++) {
        await db.put({ _id: `doc-${round}` })
        const pid = couch.pid
        process.kill(pid ?? 0, 'SIGKILL')
        await waitFor(() => couch.pid !== pid, 'a new database process', 15_000)
        await waitFor(async () => await db.get(`doc-${round}`).then(() => true, () => false), 'the same URL to answer with the data', 10_000)
      }
      expect(exits).toEqual(['SIGKILL', 'SIGKILL'])
    } finally {
      await db.close()
      await couch.close()
      await rm(dir, { recursive: true, force: true })
    }
  }, 40_000)

  it('leaves no database process behind when closed while a restart is under way', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'et-couch-restart-'))
    const restartFailures: unknown[] = []
    const couch = await startEmbeddedCouch({ dataDir: dir, transport: 'tcp', onRestartFailed: (err) => restartFailures.push(err) })
    try {
      const first = couch.pid ?? 0
      process.kill(first, 'SIGKILL')
      // The replacement has been forked but is not ready yet.
      await waitFor(() => databaseChildren().some((pid) => pid !== first), 'the replacement to be forked', 5000)
      const replacement = databaseChildren().filter((pid) => pid !== first)
      await couch.close()
      await sleep(300)
      expect(replacement.filter(processAlive)).toEqual([])
      await sleep(2500)
      expect(databaseChildren()).toEqual([])
      expect(restartFailures).toEqual([])
    } finally {
      await couch.close()
      for (const pid of databaseChildren()) process.kill(pid, 'SIGKILL')
      await rm(dir, { recursive: true, force: true })
    }
  }, 30_000)
})
