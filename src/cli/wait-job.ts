import type { z } from 'zod'
import type { ApiClient } from './api-client.js'
import { ENDED } from './api-types.js'
import { CliError } from './cli-error.js'
import { watchJob } from './job-events.js'
import type { Terminal } from './terminal.js'

/**
 * Waits until a job (`collection` is e.g. `/datafiles`) has ended, showing its state on the
 * status line, and returns its last view. Changes arrive through the server's event stream,
 * with polling when it is unavailable (see watchJob). Ctrl-C simply stops waiting: the job is
 * unaffected.
 */
export async function waitForJob<T extends z.ZodType<{ 'processing-state': string, 'processing-log': string }>> (term: Terminal, client: ApiClient, collection: string, id: string, schema: T, label: string): Promise<z.infer<T>> {
  for await (const job of watchJob(client, collection, id, schema, { onOutage: (message) => { if (message !== null) term.status(`${label}: ${message}`) } })) {
    const state = job['processing-state']
    if (ENDED.includes(state)) {
      term.clearStatus()
      return job
    }
    const log = job['processing-log']
    term.status(`${label}: ${state}${log === '' ? '' : ` (${log.split('\n')[0]?.slice(0, 100) ?? ''})`}`)
  }
  // watchJob ends only when told to, and nobody tells it here.
  throw new CliError(`stopped waiting for ${collection}/${id}`)
}
