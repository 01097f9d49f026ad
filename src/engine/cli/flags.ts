/** One command-line flag as gflags declares it. */
export interface FlagSpec {
  readonly type: 'string' | 'int32' | 'double' | 'bool'
  readonly default: string | number | boolean
  readonly help: string
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>
export type FlagValues = Record<string, string | number | boolean>

/** A malformed command line; the message is what gflags prints (`ERROR: unknown command line flag 'x'`). */
export class FlagError extends Error {
  readonly code = 'ET_FLAG'
  constructor (message: string) {
    super(message)
    this.name = 'FlagError'
  }
}

export interface ParsedFlags {
  values: FlagValues
  /** Flags the user actually gave (gflags' "not default"), for `--gpu` accepted-but-ignored logging. */
  given: Set<string>
  positional: string[]
}

/**
 * gflags-compatible parsing: `--name=value`, `--name value`, single-dash forms, `--bool`,
 * `--nobool`, and `--` ending the flags. Caffe's users write all of these, so all are accepted.
 */
export function parseFlags (argv: readonly string[], specs: FlagSpecs): ParsedFlags {
  const values: FlagValues = {}
  for (const [name, spec] of Object.entries(specs)) values[name] = spec.default
  const given = new Set<string>()
  const positional: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    if (arg === '--') {
      positional.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg)
      continue
    }
    const body = arg.replace(/^--?/, '')
    const eq = body.indexOf('=')
    let name = eq >= 0 ? body.slice(0, eq) : body
    let raw: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined
    let spec = specs[name]
    if (spec === undefined && raw === undefined && name.startsWith('no') && specs[name.slice(2)]?.type === 'bool') {
      name = name.slice(2)
      spec = specs[name]
      raw = 'false'
    }
    if (spec === undefined) throw new FlagError(`ERROR: unknown command line flag '${name}'`)
    if (raw === undefined) {
      if (spec.type === 'bool') {
        raw = 'true'
      } else {
        const next = argv[i + 1]
        if (next === undefined) throw new FlagError(`ERROR: flag '${name}' is missing its argument`)
        raw = next
        i++
      }
    }
    values[name] = convert(name, spec, raw)
    given.add(name)
  }
  return { values, given, positional }
}

function convert (name: string, spec: FlagSpec, raw: string): string | number | boolean {
  switch (spec.type) {
    case 'string':
      return raw
    case 'int32': {
      if (!/^[+-]?\d+$/.test(raw.trim())) throw new FlagError(`ERROR: illegal value '${raw}' specified for int32 flag '${name}'`)
      return Number.parseInt(raw, 10)
    }
    case 'double': {
      const v = Number(raw)
      if (raw.trim() === '' || Number.isNaN(v)) throw new FlagError(`ERROR: illegal value '${raw}' specified for double flag '${name}'`)
      return v
    }
    case 'bool': {
      const t = raw.toLowerCase()
      if (['true', 't', 'yes', 'y', '1'].includes(t)) return true
      if (['false', 'f', 'no', 'n', '0'].includes(t)) return false
      throw new FlagError(`ERROR: illegal value '${raw}' specified for bool flag '${name}'`)
    }
  }
}

export const str = (v: FlagValues, k: string): string => String(v[k] ?? '')
export const int = (v: FlagValues, k: string): number => Number(v[k] ?? 0)
export const bool = (v: FlagValues, k: string): boolean => v[k] === true

/** The usage text gflags prints for a set of flags. */
export function describeFlags (specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([name, s]) => `    -${name} (${s.help}) type: ${s.type} default: ${s.type === 'string' ? JSON.stringify(s.default) : String(s.default)}`)
    .join('\n')
}
