import { z } from 'zod'
import { ConfigError, helpText, readFlags } from '../config.js'
import type { FlagSpec } from '../config.js'
import { CouchDatabase } from '../db/couch.js'
import { databaseFlags, resolveDatabase } from './database-flags.js'
import { collectStatus, formatStatus } from './status-report.js'

export const statusFlags: FlagSpec[] = [
  ...databaseFlags,
  { name: 'watch', type: 'boolean', help: 'redraw every --interval seconds until Ctrl-C' },
  { name: 'interval', type: 'string', help: 'seconds between redraws with --watch (default 2)' },
  { name: 'json', type: 'boolean', help: 'print the report as JSON (one object per line with --watch)' },
  { name: 'help', type: 'boolean', help: 'show this help' }
]

const SUMMARY = `A console view of the whole cluster: jobs per type and state (the queue depth), running jobs
with their progress, and live workers (those holding an unexpired lease). It reads the database
directly, so it needs the database's URL (or a running server's --data-dir with the embedded
database) and shows every tenant's jobs: it is a tool for operators, not for API users.`

/** Where the command writes; the process's streams by default. */
export interface CommandIo {
  out: (text: string) => void
  err: (text: string) => void
  /** Ends --watch (Ctrl-C by default). */
  signal?: AbortSignal
}

export const processIo = (): CommandIo => ({
  out: (text) => { process.stdout.write(text) },
  err: (text) => { process.stderr.write(text) }
})

// Home, clear screen and scrollback: each redraw replaces the last instead of scrolling.
const CLEAR = '\u001b[H\u001b[2J\u001b[3J'

/** `elastic-thought status [--watch] [--json] [--couch-url …]`; resolves with the exit code. */
export async function runStatus (argv: string[], env: NodeJS.ProcessEnv, io: CommandIo = processIo()): Promise<number> {
  let raw: Record<string, unknown>
  let target
  let intervalMs: number
  try {
    raw = readFlags(statusFlags, argv, env)
    if (raw.help === true) {
      io.out(helpText('elastic-thought status', statusFlags, SUMMARY))
      return 0
    }
    const interval = z.coerce.number().min(0.2).max(3600).default(2).safeParse(raw.interval)
    if (!interval.success) throw new ConfigError('invalid --interval: must be a number of seconds, 0.2 to 3600')
    intervalMs = interval.data * 1000
    target = resolveDatabase(raw)
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`elastic-thought status: ${err.message}\n`)
      return 2
    }
    throw err
  }
  const json = raw.json === true
  const couch = new CouchDatabase(target.location)
  const render = async (): Promise<string> => {
    const report = await collectStatus(couch, target.shown)
    return json ? JSON.stringify(report) + '\n' : formatStatus(report)
  }
  try {
    if (raw.watch !== true) {
      try {
        io.out(await render())
        return 0
      } catch (err) {
        io.err(`elastic-thought status: could not read ${target.shown}: ${errorLine(err)}\n`)
        return 1
      }
    }
    return await watch(render, intervalMs, json, io)
  } finally {
    await couch.close()
  }
}

async function watch (render: () => Promise<string>, intervalMs: number, json: boolean, io: CommandIo): Promise<number> {
  const stop = new AbortController()
  const onInterrupt = (): void => { stop.abort() }
  if (io.signal === undefined) {
    process.once('SIGINT', onInterrupt)
    process.once('SIGTERM', onInterrupt)
  } else {
    io.signal.addEventListener('abort', onInterrupt, { once: true })
  }
  try {
    while (!stop.signal.aborted) {
      try {
        const text = await render()
        if (stop.signal.aborted) break
        io.out(json ? text : CLEAR + text + `\nEvery ${intervalMs / 1000} s; Ctrl-C to quit.\n`)
      } catch (err) {
        // A database restart should not end the watch: say so and try again next round.
        const line = `could not read the database: ${errorLine(err)} (retrying every ${intervalMs / 1000} s)\n`
        if (json) io.err(line)
        else io.out(CLEAR + line)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs)
        stop.signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
      })
    }
    return 0
  } finally {
    process.off('SIGINT', onInterrupt)
    process.off('SIGTERM', onInterrupt)
  }
}

function errorLine (err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? 'unknown error'
}
