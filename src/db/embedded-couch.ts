import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { nodeEntry } from '../lib/node-entry.js'

export interface EmbeddedCouchOptions {
  /** Directory for the database files (LevelDB), created if missing. */
  dataDir: string
  /** Keep everything in memory (tests); nothing is written under dataDir but the log. */
  inMemory?: boolean
  /**
   * 'socket' (default): a Unix socket in a private 0700 directory, so no other local user can
   * reach the database. 'tcp': a random loopback port (tests, and tools that need a URL).
   */
  transport?: 'socket' | 'tcp'
  /** Called when the child dies unexpectedly; it is restarted unless `restart` is false. */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void
  restart?: boolean
  onRestartFailed?: (err: unknown) => void
}

export interface EmbeddedCouch {
  /** Server URL to give nano (for 'socket', any host: the socket is what connects). */
  readonly serverUrl: string
  readonly socketPath: string | undefined
  readonly pid: number | undefined
  close: () => Promise<void>
}

const Ready = z.union([
  z.object({ ready: z.literal(true), port: z.number().nullable() }),
  z.object({ ready: z.literal(false), error: z.string() })
])

/**
 * Starts the embedded CouchDB-compatible store (express-pouchdb over PouchDB/LevelDB) as a
 * child process and resolves once it accepts connections. The API then talks to it through
 * nano exactly as to a real CouchDB: one data-access path for both.
 */
export async function startEmbeddedCouch (options: EmbeddedCouchOptions): Promise<EmbeddedCouch> {
  const transport = options.transport ?? 'socket'
  mkdirSync(options.dataDir, { recursive: true })
  // Unix socket paths are limited to ~107 bytes, so the socket lives in a short private temp dir.
  const socketDir = transport === 'socket' ? mkdtempSync(join(tmpdir(), 'et-couch-')) : undefined
  const socketPath = socketDir === undefined ? undefined : join(socketDir, 'couch.sock')
  let closing = false
  let child: ChildProcess | undefined
  let port: number | null = null
  // A restart under way; close() waits for it, so a replacement forked just before close()
  // is stopped rather than left running (and keeping the parent alive) with nobody to stop it.
  let restarting: Promise<void> | undefined

  const launch = async (fixedPort: number): Promise<void> => {
    const started = await spawnChild(options, socketPath, fixedPort)
    if (closing) {
      await stopChild(started.child)
      return
    }
    child = started.child
    port = started.port
    started.child.on('exit', (code, signal) => {
      if (closing) return
      options.onExit?.(code, signal)
      // Same socket path (or port) again, so open clients reconnect without being told.
      if (options.restart !== false) {
        setTimeout(() => {
          if (closing) return
          restarting = launch(port ?? 0).catch((err: unknown) => { if (!closing) options.onRestartFailed?.(err) })
        }, 500)
      }
    })
  }

  try {
    await launch(0)
  } catch (err) {
    if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true })
    throw err
  }
  let closed: Promise<void> | undefined
  return {
    serverUrl: socketPath === undefined ? `http://127.0.0.1:${port ?? 0}` : 'http://localhost',
    socketPath,
    get pid () { return child?.pid },
    close: async () => {
      closed ??= (async () => {
        closing = true
        await restarting
        if (child !== undefined) await stopChild(child)
        if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true })
      })()
      return await closed
    }
  }
}

async function spawnChild (options: EmbeddedCouchOptions, socketPath: string | undefined, port: number): Promise<{ child: ChildProcess, port: number | null }> {
  const entry = nodeEntry(import.meta.url, 'embedded-couch-main')
  const child = fork(entry.script, [], { execArgv: entry.execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000) })
  try {
    return { child, port: await waitForReady() }
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }

  async function waitForReady (): Promise<number | null> {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('embedded database did not start within 30 s')), 30_000)
      const fail = (err: Error): void => {
        clearTimeout(timer)
        reject(err)
      }
      child.once('spawn', () => {
        child.send({ dataDir: options.dataDir, inMemory: options.inMemory ?? false, socketPath, port })
      })
      child.on('message', (raw) => {
        const msg = Ready.safeParse(raw)
        if (!msg.success) return
        clearTimeout(timer)
        if (msg.data.ready) resolve(msg.data.port)
        else reject(new Error(`embedded database failed to start: ${msg.data.error}`))
      })
      child.once('exit', (code) => {
        const tail = stderr.trim().split('\n').slice(-3).join(' | ')
        fail(new Error(`embedded database exited with code ${String(code)} before it was ready${tail === '' ? '' : ': ' + tail}`))
      })
    })
  }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}
