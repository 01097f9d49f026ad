import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import type { CollectionTag, ScalarTag } from 'yaml'

/** A parsed template: short tags become their long JSON forms ({Ref}, {'Fn::Sub'}, …). */
export interface Template {
  AWSTemplateFormatVersion?: string
  Description?: string
  Parameters: Record<string, { Type: string, Default?: unknown, NoEcho?: boolean, [key: string]: unknown }>
  Conditions?: Record<string, unknown>
  Resources: Record<string, { Type: string, Condition?: string, Properties?: Record<string, unknown>, [key: string]: unknown }>
  Outputs?: Record<string, { Value: unknown, Condition?: string }>
}

const SHORT_TAGS = ['Base64', 'Cidr', 'Condition', 'Equals', 'FindInMap', 'GetAtt', 'GetAZs', 'If', 'ImportValue', 'Join', 'Not', 'And', 'Or', 'Ref', 'Select', 'Split', 'Sub', 'Transform']

function longForm (name: string, value: unknown): unknown {
  if (name === 'Ref') return { Ref: value }
  if (name === 'Condition') return { Condition: value }
  // !GetAtt Res.Attr is the scalar spelling of ['Res', 'Attr']; the attribute may itself hold dots.
  if (name === 'GetAtt' && typeof value === 'string') {
    const dot = value.indexOf('.')
    return { 'Fn::GetAtt': dot < 0 ? [value] : [value.slice(0, dot), value.slice(dot + 1)] }
  }
  return { [`Fn::${name}`]: value }
}

// Each short tag may tag a scalar, a sequence or a mapping (!Base64 !Sub …, !If [c, a, b]).
const customTags: Array<ScalarTag | CollectionTag> = SHORT_TAGS.flatMap((name): Array<ScalarTag | CollectionTag> => [
  { tag: `!${name}`, resolve: (value: string) => longForm(name, value) },
  { tag: `!${name}`, collection: 'seq', resolve: (seq) => longForm(name, seq.toJSON()) },
  { tag: `!${name}`, collection: 'map', resolve: (map) => longForm(name, map.toJSON()) }
])

/** Reads a CloudFormation YAML template; throws on YAML errors and unknown tags. */
export function loadTemplate (path: string): Template {
  const text = readFileSync(path, 'utf8')
  const parsed: unknown = parse(text, { customTags, strict: true, uniqueKeys: true, prettyErrors: true })
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${path}: not a mapping`)
  const t = parsed as Template
  if (typeof t.Resources !== 'object' || t.Resources === null) throw new Error(`${path}: no Resources`)
  t.Parameters ??= {}
  return t
}

/** Every value in `node`, depth first, with its path (for error messages). */
export function * walk (node: unknown, path = ''): Generator<{ value: unknown, path: string }> {
  yield { value: node, path }
  if (Array.isArray(node)) {
    for (const [i, item] of node.entries()) yield * walk(item, `${path}[${i}]`)
  } else if (typeof node === 'object' && node !== null) {
    for (const [key, item] of Object.entries(node)) yield * walk(item, path === '' ? key : `${path}.${key}`)
  }
}

export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
