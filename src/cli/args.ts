import { parseArgs } from 'node:util'
import { UsageError } from './cli-error.js'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** Placeholder and one-line description for --help. */
  value?: string
  help: string
}

export type OptionSpecs = Record<string, OptionSpec>

/** Options every command takes. */
export const commonOptions: OptionSpecs = {
  json: { type: 'boolean', help: 'machine-readable output on stdout (progress and questions stay on stderr)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' }
}

/** Parsed arguments with typed accessors; unknown options and missing values are usage errors. */
export class ParsedArgs {
  readonly positionals: string[]
  private readonly values: Record<string, unknown>
  private readonly command: string

  constructor (command: string, positionals: string[], values: Record<string, unknown>) {
    this.command = command
    this.positionals = positionals
    this.values = values
  }

  flag (name: string): boolean {
    return this.values[name] === true
  }

  string (name: string): string | undefined {
    const value = this.values[name]
    return typeof value === 'string' ? value : undefined
  }

  required (name: string): string {
    const value = this.string(name)
    if (value === undefined || value === '') throw new UsageError(`--${name} is required`, this.command)
    return value
  }

  /** A number option, checked against [min, max]. */
  number (name: string, min: number, max: number): number | undefined {
    const raw = this.string(name)
    if (raw === undefined) return undefined
    const n = Number(raw)
    if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number between ${min} and ${max}, not ${JSON.stringify(raw)}`, this.command)
    return n
  }

  /** Exactly `count` positionals (named for the message), or a usage error. */
  expect (names: string[], options: { atLeast?: boolean } = {}): string[] {
    const got = this.positionals
    if (got.length < names.length) throw new UsageError(`missing ${names.slice(got.length).map((n) => `<${n}>`).join(' ')}`, this.command)
    if (options.atLeast !== true && got.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(got[names.length])}`, this.command)
    return got
  }
}

/** Parses a command's arguments (after its name) against its options plus the common ones. */
export function parseCommandArgs (command: string, argv: string[], options: OptionSpecs): ParsedArgs {
  const all = { ...commonOptions, ...options }
  const config: Record<string, { type: 'string' | 'boolean', short?: string, multiple?: boolean }> = {}
  for (const [name, spec] of Object.entries(all)) {
    config[name] = { type: spec.type, ...(spec.short === undefined ? {} : { short: spec.short }), ...(spec.multiple === true ? { multiple: true } : {}) }
  }
  try {
    const parsed = parseArgs({ args: argv, options: config, allowPositionals: true, strict: true })
    return new ParsedArgs(command, parsed.positionals, parsed.values)
  } catch (err) {
    // node:util's messages are good but long ("Unknown option '--x'. To specify a positional
    // argument starting with a '-', place it at the end of the command after '--', ...").
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? ''
    const message = first.split('. ')[0] ?? first
    throw new UsageError(message.replace(/^Option '(?:-\w, )?(--[^']+?)(?: <value>)?' argument (?:missing|is ambiguous)\.?$/, '$1 needs a value'), command)
  }
}

/** The options block of a command's --help. */
export function describeOptions (options: OptionSpecs): string {
  const rows = Object.entries({ ...options, ...commonOptions }).map(([name, spec]) => {
    const flag = `${spec.short === undefined ? '    ' : `-${spec.short}, `}--${name}${spec.type === 'string' ? ` <${spec.value ?? 'value'}>` : ''}`
    return [flag, spec.help] as const
  })
  const width = Math.max(...rows.map(([flag]) => flag.length))
  return rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`).join('\n')
}
