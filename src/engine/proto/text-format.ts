import { messageSpec, type MessageName, type Messages, type NetParameter, type ResolvedField, type ResolvedMessage, type SolverParameter } from './caffe.js'
import { PrototxtError, type SourcePosition } from './errors.js'

/** Options for parseTextFormat. */
export interface TextParseOptions {
  /** Shown in error messages and kept in positionOf() results. */
  readonly file?: string | undefined
}

type TokenKind = 'ident' | 'int' | 'float' | 'string' | 'symbol' | 'eof'

interface Token {
  readonly kind: TokenKind
  /** Source text of the token; for strings, the decoded bytes. */
  readonly text: string
  readonly bytes?: Uint8Array
  readonly line: number
  readonly column: number
}

interface MessagePositions {
  readonly self: SourcePosition
  readonly fields: Map<string, SourcePosition>
}

// Positions live beside the parsed objects rather than in them, so messages stay plain data
// that the binary codec and equality checks see exactly as caffe.proto defines them.
const positions = new WeakMap<object, MessagePositions>()

/** Where a parsed message (or one of its fields) was written; undefined for objects not from the parser. */
export function positionOf (message: object, field?: string): SourcePosition | undefined {
  const p = positions.get(message)
  if (p === undefined) return undefined
  return field === undefined ? p.self : p.fields.get(field)
}

/** Line a parsed message started on (the line of its field name), for messages like "layer 'conv1' (line 30)". */
export function lineOf (message: object): number | undefined {
  return positions.get(message)?.self.line
}

/** Records where a message built by code stands in for source text (e.g. the Input layer made from `input:` fields). */
export function setPosition (message: object, position: SourcePosition): void {
  positions.set(message, { self: position, fields: new Map() })
}

/** Carries source positions over to a message derived from a parsed one (used by the V1 → V2 upgrade). */
export function copyPosition (from: object, to: object): void {
  const p = positions.get(from)
  if (p !== undefined) positions.set(to, { self: p.self, fields: new Map(p.fields) })
}

const INT_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  sfixed32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  fixed32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sint64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sfixed64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  fixed64: [0, Number.MAX_SAFE_INTEGER]
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const utf8Encoder = new TextEncoder()

const isIdentStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95
const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isIdentChar = (c: number): boolean => isIdentStart(c) || isDigit(c)
const isHex = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)

/** Splits prototxt into tokens the way protobuf's io::Tokenizer does (shell-style # comments). */
class Tokenizer {
  private readonly src: string
  private readonly file: string | undefined
  private pos = 0
  private line = 1
  private lineStart = 0

  constructor (src: string, file: string | undefined) {
    this.src = src
    this.file = file
  }

  fail (line: number, column: number, problem: string): never {
    throw new PrototxtError({ file: this.file, line, column }, problem)
  }

  next (): Token {
    this.skipSpace()
    const s = this.src
    const line = this.line
    const column = this.pos - this.lineStart + 1
    if (this.pos >= s.length) return { kind: 'eof', text: '', line, column }
    const start = this.pos
    const c = s.charCodeAt(start)
    if (isIdentStart(c)) {
      while (this.pos < s.length && isIdentChar(s.charCodeAt(this.pos))) this.pos++
      return { kind: 'ident', text: s.slice(start, this.pos), line, column }
    }
    if (isDigit(c) || (c === 46 && isDigit(s.charCodeAt(start + 1)))) return this.number(line, column)
    if (c === 34 || c === 39) return this.string(c, line, column)
    this.pos++
    return { kind: 'symbol', text: s[start] ?? '', line, column }
  }

  private skipSpace (): void {
    const s = this.src
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos)
      if (c === 10) {
        this.pos++
        this.line++
        this.lineStart = this.pos
      } else if (c === 32 || c === 9 || c === 13 || c === 11 || c === 12) {
        this.pos++
      } else if (c === 35) {
        while (this.pos < s.length && s.charCodeAt(this.pos) !== 10) this.pos++
      } else {
        return
      }
    }
  }

  private number (line: number, column: number): Token {
    const s = this.src
    const start = this.pos
    let kind: TokenKind = 'int'
    if (s[start] === '0' && (s[start + 1] === 'x' || s[start + 1] === 'X')) {
      this.pos += 2
      if (!isHex(s.charCodeAt(this.pos))) this.fail(line, column, '"0x" must be followed by hex digits')
      while (isHex(s.charCodeAt(this.pos))) this.pos++
    } else {
      while (isDigit(s.charCodeAt(this.pos))) this.pos++
      if (s[this.pos] === '.') {
        kind = 'float'
        this.pos++
        while (isDigit(s.charCodeAt(this.pos))) this.pos++
      }
      if (s[this.pos] === 'e' || s[this.pos] === 'E') {
        kind = 'float'
        this.pos++
        if (s[this.pos] === '+' || s[this.pos] === '-') this.pos++
        if (!isDigit(s.charCodeAt(this.pos))) this.fail(line, column, '"e" must be followed by an exponent')
        while (isDigit(s.charCodeAt(this.pos))) this.pos++
      }
      if (s[this.pos] === 'f' || s[this.pos] === 'F') {
        kind = 'float'
        this.pos++
      }
    }
    // protobuf's tokenizer refuses "12ab" and "1.2.3" rather than splitting them into two tokens.
    if (isIdentChar(s.charCodeAt(this.pos)) || s[this.pos] === '.') {
      this.fail(line, column, `malformed number "${s.slice(start, this.pos + 1)}"`)
    }
    return { kind, text: s.slice(start, this.pos), line, column }
  }

  private string (quote: number, line: number, column: number): Token {
    const s = this.src
    // Strings are byte strings in protobuf: \x and octal escapes produce raw bytes, literal
    // characters their UTF-8 encoding; string fields are decoded as UTF-8 once all parts are in.
    const out: number[] = []
    this.pos++
    for (;;) {
      if (this.pos >= s.length) this.fail(line, column, 'unterminated string')
      const c = s.charCodeAt(this.pos)
      if (c === quote) { this.pos++; break }
      if (c === 10) this.fail(line, column, 'string literals cannot cross line boundaries')
      if (c !== 92) {
        const cp = s.codePointAt(this.pos) ?? c
        this.pos += cp > 0xffff ? 2 : 1
        if (cp < 0x80) out.push(cp)
        else for (const b of utf8Encoder.encode(String.fromCodePoint(cp))) out.push(b)
        continue
      }
      this.escape(out, line)
    }
    const bytes = new Uint8Array(out)
    return { kind: 'string', text: '', bytes, line, column }
  }

  private escape (out: number[], line: number): void {
    const s = this.src
    const at = this.pos - this.lineStart + 1
    this.pos++
    const e = s[this.pos] ?? ''
    this.pos++
    const simple: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '?': 63, "'": 39, '"': 34 }
    const known = simple[e]
    if (known !== undefined) { out.push(known); return }
    if (e >= '0' && e <= '7') {
      let v = Number(e)
      for (let i = 0; i < 2; i++) {
        const d = s.charCodeAt(this.pos) - 48
        if (!(d >= 0 && d <= 7)) break
        v = v * 8 + d
        this.pos++
      }
      if (v > 255) this.fail(line, at, `octal escape \\${v.toString(8)} is larger than a byte`)
      out.push(v)
      return
    }
    if (e === 'x' || e === 'X') {
      let digits = ''
      while (digits.length < 2 && isHex(s.charCodeAt(this.pos))) digits += s[this.pos++]
      if (digits === '') this.fail(line, at, '"\\x" must be followed by hex digits')
      out.push(parseInt(digits, 16))
      return
    }
    if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8
      const digits = s.slice(this.pos, this.pos + n)
      if (digits.length !== n || ![...digits].every((d) => isHex(d.charCodeAt(0)))) this.fail(line, at, `"\\${e}" must be followed by ${n} hex digits`)
      this.pos += n
      const cp = parseInt(digits, 16)
      if (cp > 0x10ffff) this.fail(line, at, `"\\${e}${digits}" is not a Unicode code point`)
      for (const b of utf8Encoder.encode(String.fromCodePoint(cp))) out.push(b)
      return
    }
    this.fail(line, at, `invalid escape sequence "\\${e}"`)
  }
}

/** Recursive-descent parser for one message type, driven by the caffe schema. */
class Parser {
  private readonly tok: Tokenizer
  private readonly file: string | undefined
  private current: Token

  constructor (text: string, file: string | undefined) {
    this.file = file
    this.tok = new Tokenizer(text, file)
    this.current = this.tok.next()
  }

  private advance (): Token {
    const t = this.current
    this.current = this.tok.next()
    return t
  }

  private fail (t: Token, problem: string): never {
    throw new PrototxtError({ file: this.file, line: t.line, column: t.column }, problem)
  }

  private isSymbol (s: string): boolean {
    return this.current.kind === 'symbol' && this.current.text === s
  }

  private describeToken (t: Token): string {
    if (t.kind === 'eof') return 'end of input'
    if (t.kind === 'string') return 'a string'
    return `"${t.text}"`
  }

  parseRoot (spec: ResolvedMessage): Record<string, unknown> {
    const obj = newMessage(spec)
    positions.set(obj, { self: { file: this.file, line: 1, column: 1 }, fields: new Map() })
    this.parseFields(spec, obj, undefined)
    return obj
  }

  private parseFields (spec: ResolvedMessage, obj: Record<string, unknown>, close: { symbol: string, opener: Token, field: string } | undefined): void {
    const seen = new Set<string>()
    const fieldPositions = positions.get(obj)?.fields
    for (;;) {
      const t = this.current
      if (t.kind === 'eof') {
        if (close === undefined) return
        this.fail(t, `unexpected end of input: missing "${close.symbol}" to close "${close.field}" opened at line ${close.opener.line}`)
      }
      if (close !== undefined && this.isSymbol(close.symbol)) {
        this.advance()
        return
      }
      if (t.kind !== 'ident') {
        if (t.kind === 'symbol' && t.text === '[') this.fail(t, `extensions and Any fields are not supported in ${spec.fullName}`)
        this.fail(t, `expected a field name in ${spec.fullName}, got ${this.describeToken(t)}`)
      }
      this.advance()
      const field = spec.byName.get(t.text)
      if (field === undefined) this.fail(t, `unknown field "${t.text}" in ${spec.fullName}`)
      // protobuf's TextFormat rejects a non-repeated field given twice instead of keeping the last.
      if (field.label !== 'repeated') {
        if (seen.has(field.name)) this.fail(t, `non-repeated field "${field.name}" in ${spec.fullName} is specified more than once`)
        seen.add(field.name)
      }
      const pos: SourcePosition = { file: this.file, line: t.line, column: t.column }
      if (fieldPositions !== undefined && !fieldPositions.has(field.name)) fieldPositions.set(field.name, pos)
      if (field.kind === 'message') this.parseMessageField(spec, field, obj, t)
      else this.parseScalarField(spec, field, obj)
      if (this.isSymbol(',') || this.isSymbol(';')) this.advance()
    }
  }

  private parseMessageField (spec: ResolvedMessage, field: ResolvedField, obj: Record<string, unknown>, nameToken: Token): void {
    // The colon is optional before a message value (`include: { phase: TRAIN }` and `include { … }`).
    if (this.isSymbol(':')) this.advance()
    if (this.isSymbol('[')) {
      if (field.label !== 'repeated') this.fail(this.current, `field "${field.name}" in ${spec.fullName} is not repeated and cannot take a list`)
      this.advance()
      if (this.isSymbol(']')) { this.advance(); return }
      for (;;) {
        (obj[field.name] as unknown[]).push(this.parseSubMessage(spec, field, this.current))
        if (this.isSymbol(',')) { this.advance(); continue }
        if (this.isSymbol(']')) { this.advance(); return }
        this.fail(this.current, `expected "," or "]" in the list for field "${field.name}", got ${this.describeToken(this.current)}`)
      }
    }
    const sub = this.parseSubMessage(spec, field, nameToken)
    if (field.label === 'repeated') (obj[field.name] as unknown[]).push(sub)
    else obj[field.name] = sub
  }

  private parseSubMessage (spec: ResolvedMessage, field: ResolvedField, at: Token): Record<string, unknown> {
    const open = this.current
    if (!this.isSymbol('{') && !this.isSymbol('<')) {
      this.fail(open, `expected "{" to start message field "${field.name}" in ${spec.fullName}, got ${this.describeToken(open)}`)
    }
    this.advance()
    const subSpec = messageSpec(field.messageName as MessageName)
    const sub = newMessage(subSpec)
    positions.set(sub, { self: { file: this.file, line: at.line, column: at.column }, fields: new Map() })
    this.parseFields(subSpec, sub, { symbol: open.text === '{' ? '}' : '>', opener: open, field: field.name })
    return sub
  }

  private parseScalarField (spec: ResolvedMessage, field: ResolvedField, obj: Record<string, unknown>): void {
    if (!this.isSymbol(':')) {
      this.fail(this.current, `expected ":" after field "${field.name}" in ${spec.fullName}, got ${this.describeToken(this.current)}`)
    }
    this.advance()
    if (this.isSymbol('[')) {
      if (field.label !== 'repeated') this.fail(this.current, `field "${field.name}" in ${spec.fullName} is not repeated and cannot take a list`)
      this.advance()
      const values: unknown[] = []
      if (!this.isSymbol(']')) {
        for (;;) {
          values.push(this.parseValue(spec, field))
          if (this.isSymbol(',')) { this.advance(); continue }
          if (this.isSymbol(']')) break
          this.fail(this.current, `expected "," or "]" in the list for field "${field.name}", got ${this.describeToken(this.current)}`)
        }
      }
      this.advance()
      appendRepeated(obj, field, values)
      return
    }
    const v = this.parseValue(spec, field)
    if (field.label === 'repeated') appendRepeated(obj, field, [v])
    else obj[field.name] = v
  }

  private parseValue (spec: ResolvedMessage, field: ResolvedField): unknown {
    const where = `field "${field.name}" in ${spec.fullName}`
    const t = this.current
    if (field.type === 'string' || field.type === 'bytes') {
      if (t.kind !== 'string') this.fail(t, `expected a string for ${where}, got ${this.describeToken(t)}`)
      // Adjacent literals concatenate, as in C: "abc" "def" is "abcdef".
      const parts: Uint8Array[] = []
      while (this.current.kind === 'string') parts.push(this.advance().bytes ?? new Uint8Array(0))
      const bytes = concatBytes(parts)
      if (field.type === 'bytes') return bytes
      try {
        return utf8.decode(bytes)
      } catch {
        return this.fail(t, `string for ${where} is not valid UTF-8`)
      }
    }
    if (field.type === 'bool') {
      this.advance()
      if (t.kind === 'ident') {
        if (t.text === 'true' || t.text === 'True' || t.text === 't') return true
        if (t.text === 'false' || t.text === 'False' || t.text === 'f') return false
      }
      if (t.kind === 'int' && (t.text === '0' || t.text === '1')) return t.text === '1'
      return this.fail(t, `expected true or false for ${where}, got ${this.describeToken(t)}`)
    }
    // The sign is its own token in protobuf's grammar, so `- 5` is as valid as `-5`.
    let negative = false
    if (this.isSymbol('-')) {
      negative = true
      this.advance()
    }
    const v = this.current
    if (field.kind === 'enum') {
      this.advance()
      const values = field.enumValues ?? {}
      if (v.kind === 'ident' && !negative) {
        if (Object.hasOwn(values, v.text)) return v.text
        this.fail(v, `unknown value "${v.text}" for enum caffe.${field.enumName ?? ''} of ${where} (expected one of ${Object.keys(values).join(', ')})`)
      }
      if (v.kind === 'int') {
        const n = parseInteger(v.text) * (negative ? -1 : 1)
        const name = field.enumNames?.get(n)
        if (name !== undefined) return name
        this.fail(v, `unknown number ${n} for enum caffe.${field.enumName ?? ''} of ${where}`)
      }
      return this.fail(v, `expected an enum name for ${where}, got ${this.describeToken(v)}`)
    }
    if (field.type === 'float' || field.type === 'double') {
      this.advance()
      let x: number
      if (v.kind === 'int') x = parseInteger(v.text)
      else if (v.kind === 'float') x = Number(v.text.replace(/[fF]$/, ''))
      else if (v.kind === 'ident' && /^(inf|infinity)$/i.test(v.text)) x = Infinity
      else if (v.kind === 'ident' && /^nan$/i.test(v.text)) x = NaN
      else return this.fail(v, `expected a number for ${where}, got ${this.describeToken(v)}`)
      if (negative) x = -x
      // Store what a C++ float would hold, so text and binary inputs give identical values.
      return field.type === 'float' ? Math.fround(x) : x
    }
    const range = INT_RANGES[field.type as string]
    if (range === undefined) return this.fail(v, `unsupported field type ${String(field.type)} for ${where}`)
    this.advance()
    if (v.kind !== 'int') this.fail(v, `expected an integer for ${where}, got ${this.describeToken(v)}`)
    const magnitude = parseInteger(v.text)
    if (Number.isNaN(magnitude)) this.fail(v, `malformed integer "${v.text}" for ${where}`)
    const n = negative ? -magnitude : magnitude
    if (!(n >= range[0] && n <= range[1])) {
      this.fail(v, `integer ${negative ? '-' : ''}${v.text} is out of range for ${where} (${String(field.type)})`)
    }
    return n === 0 ? 0 : n
  }
}

/** Decimal, hex (0x…) or octal (0…) integer literal, C-style; NaN for a malformed octal such as 09. */
function parseInteger (text: string): number {
  if (/^0[xX]/.test(text)) return parseInt(text.slice(2), 16)
  if (text.length > 1 && text[0] === '0') return /^[0-7]+$/.test(text) ? parseInt(text, 8) : NaN
  return Number(text)
}

function concatBytes (parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

/** Typed-array fields (BlobProto data) cannot grow in place; they are reallocated per occurrence. */
function appendRepeated (obj: Record<string, unknown>, field: ResolvedField, values: unknown[]): void {
  const prev = obj[field.name]
  if (field.typed === 'f32' || field.typed === 'f64') {
    const typed = prev as Float32Array | Float64Array
    const next = field.typed === 'f32' ? new Float32Array(typed.length + values.length) : new Float64Array(typed.length + values.length)
    next.set(typed)
    next.set(values as number[], typed.length)
    obj[field.name] = next
    return
  }
  (prev as unknown[]).push(...values)
}

function newMessage (spec: ResolvedMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of spec.fields) {
    if (f.label !== 'repeated') continue
    out[f.name] = f.typed === 'f32' ? new Float32Array(0) : f.typed === 'f64' ? new Float64Array(0) : []
  }
  return out
}

/**
 * Parses protobuf text format (prototxt) into a message of the given caffe type. Throws
 * PrototxtError with file:line:column, the field and the message type on any problem, including
 * unknown fields and non-repeated fields given twice (as protobuf's TextFormat does).
 */
export function parseTextFormat<M extends MessageName> (name: M, text: string, options?: TextParseOptions): Messages[M] {
  const parser = new Parser(text, options?.file)
  return parser.parseRoot(messageSpec(name)) as Messages[M]
}

export function parseNetPrototxt (text: string, file?: string): NetParameter {
  return parseTextFormat('NetParameter', text, { file })
}

export function parseSolverPrototxt (text: string, file?: string): SolverParameter {
  return parseTextFormat('SolverParameter', text, { file })
}

/** printf("%.{precision}g"), which protobuf and C++ streams use for floating-point text. */
export function formatG (x: number, precision: number): string {
  if (Number.isNaN(x)) return 'nan'
  if (x === Infinity) return 'inf'
  if (x === -Infinity) return '-inf'
  if (x === 0) return Object.is(x, -0) ? '-0' : '0'
  const exp = x.toExponential(precision - 1)
  const e = exp.indexOf('e')
  const power = Number(exp.slice(e + 1))
  if (power < -4 || power >= precision) {
    const digits = String(Math.abs(power)).padStart(2, '0')
    return `${stripZeros(exp.slice(0, e))}e${power < 0 ? '-' : '+'}${digits}`
  }
  return stripZeros(x.toFixed(precision - 1 - power))
}

function stripZeros (s: string): string {
  if (!s.includes('.')) return s
  let end = s.length
  while (s[end - 1] === '0') end--
  if (s[end - 1] === '.') end--
  return s.slice(0, end)
}

/** Shortest of %.6g / %.9g that reads back as the same float (protobuf's SimpleFtoa). */
export function formatFloat (x: number): string {
  const f = Math.fround(x)
  const short = formatG(f, 6)
  return Number.isFinite(f) && Math.fround(Number(short)) !== f ? formatG(f, 9) : short
}

/** Shortest of %.15g / %.17g that reads back as the same double (protobuf's SimpleDtoa). */
export function formatDouble (x: number): string {
  const short = formatG(x, 15)
  return Number.isFinite(x) && Number(short) !== x ? formatG(x, 17) : short
}

/** C-style escaping of a byte string, as protobuf's CEscape: printable ASCII stays, the rest is octal. */
function cEscape (bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) {
    switch (b) {
      case 10: out += '\\n'; break
      case 13: out += '\\r'; break
      case 9: out += '\\t'; break
      case 34: out += '\\"'; break
      case 39: out += "\\'"; break
      case 92: out += '\\\\'; break
      default:
        out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, '0')}`
    }
  }
  return out
}

function printValue (f: ResolvedField, v: unknown): string {
  switch (f.type) {
    case 'string': return `"${cEscape(utf8Encoder.encode(String(v)))}"`
    case 'bytes': return `"${cEscape(v as Uint8Array)}"`
    case 'float': return formatFloat(v as number)
    case 'double': return formatDouble(v as number)
    case 'bool': return v === true ? 'true' : 'false'
    default: return String(v)
  }
}

function printFields (spec: ResolvedMessage, obj: Readonly<Record<string, unknown>>, indent: string, out: string[]): void {
  // spec.fields is in field-number order, which is the order protobuf prints; it is why
  // NetParameter's `layer` (field 100) always comes after name/input/state.
  for (const f of spec.fields) {
    const v = obj[f.name]
    if (v === undefined || v === null) continue
    const values: ArrayLike<unknown> = f.label === 'repeated' ? v as ArrayLike<unknown> : [v]
    for (let i = 0; i < values.length; i++) {
      const item = values[i]
      if (f.kind === 'message') {
        out.push(`${indent}${f.name} {`)
        printFields(messageSpec(f.messageName as MessageName), item as Record<string, unknown>, `${indent}  `, out)
        out.push(`${indent}}`)
      } else {
        out.push(`${indent}${f.name}: ${printValue(f, item)}`)
      }
    }
  }
}

/**
 * Prints a message as Caffe/protobuf DebugString does: fields in field-number order, two-space
 * indentation, `name {` … `}` for messages, C-escaped strings and %g floats. The output parses
 * back (here and in real Caffe) to an identical message.
 */
export function printTextFormat<M extends MessageName> (name: M, message: Messages[M]): string {
  const out: string[] = []
  printFields(messageSpec(name), message as Record<string, unknown>, '', out)
  return out.length === 0 ? '' : `${out.join('\n')}\n`
}
