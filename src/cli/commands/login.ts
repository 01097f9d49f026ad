import { ApiClient } from '../api-client.js'
import { UserView, parseAnswer } from '../api-types.js'
import { CliError } from '../cli-error.js'
import type { Command, CommandContext } from '../command.js'
import { normaliseUrl, readConfig, removeConfig, writeConfig } from '../config-store.js'

const DEFAULT_URL = 'http://127.0.0.1:8080'

async function answer (ctx: CommandContext, question: string, fallback?: string, secret = false): Promise<string> {
  const reply = await ctx.term.ask(`${question}${fallback === undefined ? '' : ` [${fallback}]`}: `, { secret })
  if (reply === null) throw new CliError(`no answer to "${question}" (stdin ended)`)
  const value = reply.trim() === '' && !secret ? fallback ?? '' : reply
  if (value === '') throw new CliError(`${question.toLowerCase()} is required`)
  return value
}

export const loginCommands: Command[] = [{
  name: 'login',
  summary: 'sign in to an ElasticThought server and remember it',
  usage: 'et login [--url <url>] [--username <name>]',
  description: `Asks for the API URL, your username and password (read without echo on a terminal;
from ET_PASSWORD if set; as a line of stdin when stdin is not a terminal), checks them with
GET /users/me, and stores all three in the config file, created with mode 600 (only you can
read it). The password is stored there in clear text, because the API authenticates every
request with it (HTTP Basic); if that is not acceptable, store nothing and set ET_URL,
ET_USERNAME and ET_PASSWORD in the environment instead — they override the file.`,
  options: {
    url: { type: 'string', value: 'url', help: `the API, e.g. ${DEFAULT_URL} (default: ET_URL, or asked)` },
    username: { type: 'string', value: 'name', help: 'your username (default: ET_USERNAME, or asked)' }
  },
  run: async (ctx, args) => {
    args.expect([])
    const stored = (await readConfig(ctx.configPath))?.config ?? null
    const url = normaliseUrl(args.string('url') ?? nonEmpty(ctx.env.ET_URL) ?? await answer(ctx, 'API URL', stored?.url ?? DEFAULT_URL))
    const username = args.string('username') ?? nonEmpty(ctx.env.ET_USERNAME) ?? await answer(ctx, 'Username', stored?.username)
    const password = nonEmpty(ctx.env.ET_PASSWORD) ?? await answer(ctx, 'Password', undefined, true)
    const client = new ApiClient({ url, username, password })
    try {
      const me = parseAnswer(UserView, await client.get('/users/me'), 'GET /users/me')
      await writeConfig(ctx.configPath, { url, username: me.username, password })
      ctx.result({ url, username: me.username, config: ctx.configPath }, `logged in to ${url} as ${me.username}; credentials saved in ${ctx.configPath} (mode 600)\n`)
      return 0
    } finally {
      await client.close()
    }
  }
}, {
  name: 'logout',
  summary: 'forget the stored credentials',
  usage: 'et logout',
  description: 'Deletes the config file that `et login` wrote.',
  options: {},
  run: async (ctx, args) => {
    args.expect([])
    const removed = await removeConfig(ctx.configPath)
    ctx.result({ removed, config: ctx.configPath }, removed ? `removed ${ctx.configPath}\n` : `not logged in (no ${ctx.configPath})\n`)
    return 0
  }
}]

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}
