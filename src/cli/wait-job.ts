import { setTimeout as sleep } from 'node:timers/promises'
import type { z } from 'zod'
import type { ApiClient } from './api-client.js'
import { ENDED, parseAnswer } from './api-types.js'
import type { Terminal } from './terminal.js'

/** How often a waiting command asks for the job again. */
export const POLL_MS = 500

/**
 * Polls a job (`path` is e.g. `/datafiles/<id>`) until it has ended, showing its state on the
 * status line, and returns its last view. Ctrl-C simply stops waiting: the job is unaffected.
 */
export async function waitForJob<T extends z.ZodType<{ 'processing-state': string, 'processing-log': string }>> (term: Terminal, client: ApiClient, path: string, schema: T, label: string): Promise<z.infer<T>> {
  for (;;) {
    const job = parseAnswer(schema, await client.get(path), `GET ${path}`)
    const state = job['processing-state']
    if (ENDED.includes(state)) {
      term.clearStatus()
      return job
    }
    const log = job['processing-log']
    term.status(`${label}: ${state}${log === '' ? '' : ` (${log.split('\n')[0]?.slice(0, 100) ?? ''})`}`)
    await sleep(POLL_MS)
  }
}
