import { CAFFE_ENUMS, CAFFE_SCHEMA, messageSpec, type MessageName } from '../../src/engine/proto/caffe.js'

/**
 * Writes our schema table out as proto2 source, so protoc can check it and encode/decode
 * with it. Enums become top-level `enum Outer_Inner`-free nested declarations as in caffe.proto.
 */
export function caffeProtoSource (): string {
  const out: string[] = ['syntax = "proto2";', 'package caffe;', '']
  const nested = new Map<string, string[]>()
  for (const qualified of Object.keys(CAFFE_ENUMS)) {
    const dot = qualified.indexOf('.')
    if (dot < 0) {
      out.push(...enumLines(qualified, qualified, ''), '')
    } else {
      const owner = qualified.slice(0, dot)
      nested.set(owner, [...(nested.get(owner) ?? []), qualified])
    }
  }
  for (const name of Object.keys(CAFFE_SCHEMA) as MessageName[]) {
    out.push(`message ${name} {`)
    for (const e of nested.get(name) ?? []) out.push(...enumLines(e, e.slice(name.length + 1), '  '))
    for (const f of messageSpec(name).fields) {
      const type = f.kind === 'enum' ? f.enumName ?? '' : String(f.type)
      const opts: string[] = []
      if (f.packed === true) opts.push('packed = true')
      if (f.default !== undefined) {
        opts.push(`default = ${typeof f.default === 'string' && f.kind !== 'enum' ? JSON.stringify(f.default) : String(f.default)}`)
      }
      out.push(`  ${f.label} ${type} ${f.name} = ${f.no}${opts.length > 0 ? ` [${opts.join(', ')}]` : ''};`)
    }
    out.push('}', '')
  }
  return out.join('\n')
}

function enumLines (qualified: string, local: string, indent: string): string[] {
  const values: Readonly<Record<string, number>> = CAFFE_ENUMS[qualified as keyof typeof CAFFE_ENUMS]
  return [`${indent}enum ${local} {`, ...Object.entries(values).map(([k, v]) => `${indent}  ${k} = ${v};`), `${indent}}`]
}
