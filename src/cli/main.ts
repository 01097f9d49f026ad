import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { ApiClient } from './api-client.js'
import { describeOptions, parseCommandArgs } from './args.js'
import { ApiError, CliError, UsageError } from './cli-error.js'
import type { Command, CommandContext } from './command.js'
import { configPath, readConfig, resolveCredentials } from './config-store.js'
import { Terminal } from './terminal.js'
import type { CliIo } from './terminal.js'
import { classifierCommands } from './commands/classifier.js'
import { classifyCommands } from './commands/classify.js'
import { datafileCommands } from './commands/datafile.js'
import { datasetCommands } from './commands/dataset.js'
import { downloadCommands } from './commands/download.js'
import { jobsCommands } from './commands/jobs.js'
import { loginCommands } from './commands/login.js'
import { logsCommands } from './commands/logs.js'
import { solverCommands } from './commands/solver.js'
import { trainCommands } from './commands/train.js'
import { webhookSecretCommands } from './commands/webhook-secret.js'

export const commands: Command[] = [
  ...loginCommands, ...datafileCommands, ...datasetCommands, ...solverCommands, ...trainCommands,
  ...classifierCommands, ...classifyCommands, ...jobsCommands, ...downloadCommands, ...logsCommands,
  ...webhookSecretCommands
]

const GROUPS = new Set(commands.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0] ?? ''))

function overview (io: CliIo): string {
  const width = Math.max(...commands.map((c) => c.name.length))
  return `et — the ElasticThought command-line client (talks to the REST API only)

Usage: et <command> [arguments] [--json] [--help]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

From a folder of images to a classified image:
  et login
  DATAFILE=$(et datafile upload ./images)          # ./images/<label>/<image>
  DATASET=$(et dataset create $DATAFILE --split 0.8)
  SOLVER=$(et solver create --dataset $DATASET --solver solver.prototxt --net train_test.prototxt)
  JOB=$(et train $SOLVER --follow)
  CLASSIFIER=$(et classifier create --training-job $JOB --deploy deploy.prototxt --width 28 --height 28)
  et classify $CLASSIFIER photo.png

Credentials: \`et login\` stores the API URL, your username and your password — in clear
text — in ${configPath(io.env)} (mode 600: readable by you only). ET_URL, ET_USERNAME and
ET_PASSWORD override what is stored, and work without it.
Output: results on stdout (--json: as JSON), progress and questions on stderr.
Exit codes: 0 done, 1 failed (the server's error is printed), 2 usage error, 130 interrupted.
`
}

function commandHelp (command: Command): string {
  return `${command.usage}

${command.description ?? command.summary}

Options:
${describeOptions(command.options)}
`
}

function version (): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8'))
      const name: unknown = typeof pkg === 'object' && pkg !== null ? Reflect.get(pkg, 'name') : undefined
      const v: unknown = typeof pkg === 'object' && pkg !== null ? Reflect.get(pkg, 'version') : undefined
      if (name === 'elastic-thought' && typeof v === 'string') return v
    } catch {
      // Not here: built code sits one level deeper than the source.
    }
  }
  return 'unknown'
}

/** Finds the command named by the first one or two words; the rest are its arguments. */
function findCommand (words: string[]): { command: Command, rest: string[] } {
  const [first = '', second = ''] = words
  const two = commands.find((c) => c.name === `${first} ${second}`)
  if (two !== undefined) return { command: two, rest: words.slice(2) }
  const one = commands.find((c) => c.name === first)
  if (one !== undefined) return { command: one, rest: words.slice(1) }
  if (GROUPS.has(first)) {
    const actions = commands.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.split(' ')[1] ?? '')
    throw new UsageError(second === '' || second.startsWith('-') ? `${first} needs an action: ${actions.join(', ')}` : `unknown action '${first} ${second}' (try ${actions.join(', ')})`)
  }
  throw new UsageError(`unknown command '${first}'`)
}

/**
 * `et`: runs one command and resolves to its exit code (0 ok, 1 failed, 2 usage, 130
 * interrupted). Errors are printed as one line on stderr (and, with --json, as
 * `{"error": {...}}` on stdout); nothing here calls process.exit.
 */
export async function main (argv: string[], io: CliIo): Promise<number> {
  const term = new Terminal(io)
  const json = argv.includes('--json')
  let name: string | undefined
  let client: ApiClient | undefined
  try {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      const topic = argv[0] === 'help' ? argv.slice(1) : []
      if (topic.length > 0) {
        io.stdout.write(commandHelp(findCommand(topic).command))
        return 0
      }
      // Bare `et` is a usage error: the overview goes to stderr, as error output does.
      if (argv.length === 0) {
        io.stderr.write(overview(io))
        return 2
      }
      io.stdout.write(overview(io))
      return 0
    }
    if (argv[0] === '--version' || argv[0] === '-V') {
      io.stdout.write(`${version()}\n`)
      return 0
    }
    const words = argv.filter((a) => a !== '--json')
    const { command, rest } = findCommand(words)
    name = command.name
    const args = parseCommandArgs(command.name, json ? [...rest, '--json'] : rest, command.options)
    if (args.flag('help')) {
      io.stdout.write(commandHelp(command))
      return 0
    }
    const path = configPath(io.env)
    const ctx: CommandContext = {
      term,
      json,
      env: io.env,
      configPath: path,
      client: async () => {
        if (client !== undefined) return client
        const stored = await readConfig(path)
        if (stored?.warning !== undefined && stored.warning !== null) term.note(`et: warning: ${stored.warning}`)
        client = new ApiClient(resolveCredentials(io.env, stored?.config ?? null))
        return client
      },
      result: (value, human) => {
        term.out(json ? `${JSON.stringify(value, null, 2)}\n` : human)
      }
    }
    return await command.run(ctx, args)
  } catch (err) {
    return report(term, err, json, name)
  } finally {
    term.close()
    await client?.close().catch(() => {})
  }
}

function report (term: Terminal, err: unknown, json: boolean, command: string | undefined): number {
  const error = err instanceof CliError ? err : new CliError(err instanceof Error ? err.message : String(err))
  const code = error instanceof ApiError ? ` (${error.code}, HTTP ${error.status})` : ''
  term.note(`et: ${error.message}${code}`)
  if (error instanceof UsageError) {
    const about = error.command ?? command
    term.note(`Run 'et ${about === undefined ? '' : `${about} `}--help' for usage.`)
  }
  if (json) {
    term.out(`${JSON.stringify({ error: { message: error.message, exitCode: error.exitCode, ...(error instanceof ApiError ? { code: error.code, status: error.status } : {}) } })}\n`)
  }
  return error.exitCode
}

// Run when executed directly (`tsx src/cli/main.ts`, `node dist/src/cli/main.js`); bin/et.js imports main().
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env })
}
