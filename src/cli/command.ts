import type { ApiClient } from './api-client.js'
import type { OptionSpecs, ParsedArgs } from './args.js'
import type { Terminal } from './terminal.js'

/** What a running command gets: the terminal, its output mode and, on demand, an API client. */
export interface CommandContext {
  term: Terminal
  json: boolean
  env: NodeJS.ProcessEnv
  /** Where `et login` keeps its config. */
  configPath: string
  /** A client signed in with the stored or environment credentials; fails if there are none. */
  client: () => Promise<ApiClient>
  /** The command's result: `value` as JSON with --json, else `human` as is, on stdout. */
  result: (value: unknown, human: string) => void
}

/** One `et` command: its name (`datafile upload`), help, options and what it does. Resolves to the exit code. */
export interface Command {
  name: string
  summary: string
  usage: string
  description?: string
  options: OptionSpecs
  run: (ctx: CommandContext, args: ParsedArgs) => Promise<number>
}
