import { messageSpec, type BlobProto, type BlobProtoVector, type Datum, type MessageName, type Messages, type NetParameter, type ResolvedField, type ResolvedMessage, type SolverState } from './caffe.js'
import { ProtoDecodeError, ProtoEncodeError } from './errors.js'
import { WireReader, WireType, WireWriter, varintSize } from './wire.js'

type Reader = (r: WireReader) => unknown
type Writer = (w: WireWriter, v: unknown, where: string) => void

/** A field prepared for the codec: expected wire type, reader and writer resolved once. */
interface CompiledField {
  readonly field: ResolvedField
  readonly name: string
  readonly no: number
  readonly wire: number
  readonly repeated: boolean
  /** Numeric scalars and enums may arrive packed even when not declared packed (proto2 parsers accept both). */
  readonly packable: boolean
  readonly read: Reader
  readonly write: Writer
  sub: Compiled | undefined
}

interface Compiled {
  readonly spec: ResolvedMessage
  readonly fields: readonly CompiledField[]
  /** Dense by field number; caffe.proto numbers stop at 1002, so the array stays small. */
  readonly byNo: ReadonlyArray<CompiledField | undefined>
  readonly repeated: readonly CompiledField[]
  readonly required: readonly CompiledField[]
}

const INT32_MIN = -2147483648
const INT32_MAX = 2147483647
const UINT32_MAX = 4294967295

function describe (v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)
  if (typeof v === 'object') return v === null ? 'null' : (v.constructor?.name ?? 'object')
  return String(v)
}

function bad (where: string, expected: string, v: unknown): never {
  throw new ProtoEncodeError(`${where}: expected ${expected}, got ${describe(v)}`)
}

function intWriter (lo: number, hi: number, type: string, put: (w: WireWriter, v: number) => void): Writer {
  return (w, v, where) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(where, type, v)
    put(w, v)
  }
}

function safeWriter (min: number, type: string, put: (w: WireWriter, v: number) => void): Writer {
  return (w, v, where) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) bad(where, type, v)
    put(w, v)
  }
}

function numberWriter (type: string, put: (w: WireWriter, v: number) => void): Writer {
  return (w, v, where) => {
    if (typeof v !== 'number') bad(where, type, v)
    put(w, v)
  }
}

/** Reader, writer and wire type of every scalar type. */
const SCALARS: Readonly<Record<string, { wire: number, read: Reader, write: Writer }>> = {
  int32: { wire: WireType.VARINT, read: (r) => r.int32(), write: intWriter(INT32_MIN, INT32_MAX, 'int32', (w, v) => w.int32(v)) },
  uint32: { wire: WireType.VARINT, read: (r) => r.uint32(), write: intWriter(0, UINT32_MAX, 'uint32', (w, v) => w.uint32(v)) },
  sint32: { wire: WireType.VARINT, read: (r) => r.sint32(), write: intWriter(INT32_MIN, INT32_MAX, 'sint32', (w, v) => w.sint32(v)) },
  int64: { wire: WireType.VARINT, read: (r) => r.int64(), write: safeWriter(-Infinity, 'int64', (w, v) => w.int64(v)) },
  uint64: { wire: WireType.VARINT, read: (r) => r.uint64(), write: safeWriter(0, 'uint64', (w, v) => w.uint64(v)) },
  sint64: { wire: WireType.VARINT, read: (r) => r.sint64(), write: safeWriter(-Infinity, 'sint64', (w, v) => w.sint64(v)) },
  fixed32: { wire: WireType.I32, read: (r) => r.fixed32(), write: intWriter(0, UINT32_MAX, 'fixed32', (w, v) => w.fixed32(v)) },
  sfixed32: { wire: WireType.I32, read: (r) => r.sfixed32(), write: intWriter(INT32_MIN, INT32_MAX, 'sfixed32', (w, v) => w.sfixed32(v)) },
  fixed64: { wire: WireType.I64, read: (r) => r.fixed64(), write: safeWriter(0, 'fixed64', (w, v) => w.fixed64(v)) },
  sfixed64: { wire: WireType.I64, read: (r) => r.sfixed64(), write: safeWriter(-Infinity, 'sfixed64', (w, v) => w.sfixed64(v)) },
  float: { wire: WireType.I32, read: (r) => r.float(), write: numberWriter('float', (w, v) => w.float(v)) },
  double: { wire: WireType.I64, read: (r) => r.double(), write: numberWriter('double', (w, v) => w.double(v)) },
  bool: {
    wire: WireType.VARINT,
    read: (r) => r.bool(),
    write: (w, v, where) => { if (typeof v !== 'boolean') bad(where, 'bool', v); w.bool(v) }
  },
  string: {
    wire: WireType.LEN,
    read: (r) => r.string(),
    write: (w, v, where) => { if (typeof v !== 'string') bad(where, 'string', v); w.string(v) }
  },
  bytes: {
    wire: WireType.LEN,
    read: (r) => r.bytes(),
    write: (w, v, where) => { if (!(v instanceof Uint8Array)) bad(where, 'bytes (Uint8Array)', v); w.bytes(v) }
  }
}

const compiled = new Map<string, Compiled>()

function compile (name: MessageName): Compiled {
  const hit = compiled.get(name)
  if (hit !== undefined) return hit
  const spec = messageSpec(name)
  const fields = spec.fields.map((f) => compileField(f))
  const byNo: Array<CompiledField | undefined> = []
  for (const cf of fields) byNo[cf.no] = cf
  const out: Compiled = {
    spec,
    fields,
    byNo,
    repeated: fields.filter((cf) => cf.repeated),
    required: fields.filter((cf) => cf.field.label === 'required')
  }
  compiled.set(name, out)
  return out
}

function compileField (f: ResolvedField): CompiledField {
  const base = { field: f, name: f.name, no: f.no, repeated: f.label === 'repeated', sub: undefined }
  if (f.kind === 'message') {
    return { ...base, wire: WireType.LEN, packable: false, read: () => undefined, write: () => undefined }
  }
  if (f.kind === 'enum') {
    const names = f.enumNames ?? new Map<number, string>()
    const values = f.enumValues ?? {}
    return {
      ...base,
      wire: WireType.VARINT,
      packable: true,
      // Unknown enum numbers are dropped, as proto2 parsers move them to the unknown-field set.
      read: (r) => names.get(r.int32()),
      write: (w, v, where) => {
        const n = typeof v === 'string' && Object.hasOwn(values, v) ? values[v] : undefined
        if (n === undefined) bad(where, `a ${f.enumName ?? 'enum'} name (${Object.keys(values).join(', ')})`, v)
        w.int32(n)
      }
    }
  }
  const s = SCALARS[f.type as string]
  if (s === undefined) throw new Error(`no codec for scalar type ${String(f.type)}`)
  return { ...base, wire: s.wire, packable: s.wire !== WireType.LEN, read: s.read, write: s.write }
}

function subOf (cf: CompiledField): Compiled {
  cf.sub ??= compile(cf.field.messageName as MessageName)
  return cf.sub
}

function newObject (c: Compiled): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const cf of c.repeated) {
    const typed = cf.field.typed
    out[cf.name] = typed === 'f32' ? new Float32Array(0) : typed === 'f64' ? new Float64Array(0) : []
  }
  return out
}

function concatTyped (a: Float32Array | Float64Array, b: ArrayLike<number>): Float32Array | Float64Array {
  const out = a instanceof Float32Array ? new Float32Array(a.length + b.length) : new Float64Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

/** Decodes fields up to `end` into `out`, merging like protobuf's MergeFrom (last scalar wins, messages merge). */
function decodeInto (r: WireReader, c: Compiled, out: Record<string, unknown>, end: number): void {
  const savedEnd = r.end
  const savedContext = r.context
  r.end = end
  r.context = c.spec.fullName
  let pending: Map<CompiledField, number[]> | undefined
  while (r.pos < end) {
    const tagAt = r.pos
    const t = r.tag()
    const no = t >>> 3
    const wt = t & 7
    const cf = c.byNo[no]
    if (cf === undefined) {
      // Unknown fields (newer Caffe or a fork) are skipped, as a parser without them in its schema would.
      if (wt === WireType.EGROUP) r.fail(`unexpected end-group tag for field ${no}`, tagAt)
      r.skip(wt, no)
      continue
    }
    if (cf.field.kind === 'message') {
      if (wt !== WireType.LEN) r.fail(`field ${cf.name} (${no}) has wire type ${wt}, expected ${WireType.LEN}`, tagAt)
      const subEnd = r.lengthEnd()
      const sub = subOf(cf)
      if (cf.repeated) {
        const obj = newObject(sub)
        decodeInto(r, sub, obj, subEnd)
        ;(out[cf.name] as unknown[]).push(obj)
      } else {
        let obj = out[cf.name] as Record<string, unknown> | undefined
        if (obj === undefined) {
          obj = newObject(sub)
          out[cf.name] = obj
        }
        decodeInto(r, sub, obj, subEnd)
      }
      continue
    }
    if (!cf.repeated) {
      // protobuf would file a mismatched wire type under unknown fields; for Caffe files it only
      // ever means corruption, so it is reported instead of silently dropping the value.
      if (wt !== cf.wire) r.fail(`field ${cf.name} (${no}) has wire type ${wt}, expected ${cf.wire}`, tagAt)
      const v = cf.read(r)
      if (v !== undefined) out[cf.name] = v
      continue
    }
    const typed = cf.field.typed
    if (wt === WireType.LEN && cf.packable) {
      if (typed !== undefined) {
        const chunk = typed === 'f32' ? r.packedFloats() : r.packedDoubles()
        const prev = out[cf.name] as Float32Array | Float64Array
        out[cf.name] = prev.length === 0 ? chunk : concatTyped(prev, chunk)
        continue
      }
      const packedEnd = r.lengthEnd()
      const arr = out[cf.name] as unknown[]
      r.end = packedEnd
      while (r.pos < packedEnd) {
        const v = cf.read(r)
        if (v !== undefined) arr.push(v)
      }
      r.end = end
      continue
    }
    if (wt !== cf.wire) r.fail(`field ${cf.name} (${no}) has wire type ${wt}, expected ${cf.wire}`, tagAt)
    const v = cf.read(r)
    if (typed !== undefined) {
      pending ??= new Map()
      let list = pending.get(cf)
      if (list === undefined) { list = []; pending.set(cf, list) }
      list.push(v as number)
    } else if (v !== undefined) {
      (out[cf.name] as unknown[]).push(v)
    }
  }
  if (pending !== undefined) {
    for (const [cf, list] of pending) out[cf.name] = concatTyped(out[cf.name] as Float32Array | Float64Array, list)
  }
  for (const cf of c.required) {
    if (out[cf.name] === undefined) r.fail(`missing required field ${cf.name}`, end)
  }
  r.end = savedEnd
  r.context = savedContext
}

function isArrayLike (v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || ArrayBuffer.isView(v)
}

function encodeInto (w: WireWriter, c: Compiled, obj: Readonly<Record<string, unknown>>): void {
  for (const cf of c.fields) {
    const v = obj[cf.name]
    const where = `${c.spec.fullName}.${cf.name}`
    if (v === undefined || v === null) {
      if (cf.field.label === 'required') throw new ProtoEncodeError(`${where}: required field is not set`)
      continue
    }
    if (!cf.repeated) {
      encodeOne(w, cf, v, where)
      continue
    }
    if (!isArrayLike(v)) bad(where, 'an array (repeated field)', v)
    const n = v.length
    if (n === 0) continue
    // Packing follows the declaration, as protoc-generated code does: BlobProto.data is packed,
    // Datum.float_data and LayerParameter.loss_weight are not.
    if (cf.field.packed === true) {
      if (cf.field.type === 'float') {
        for (let i = 0; i < n; i++) if (typeof v[i] !== 'number') bad(`${where}[${i}]`, 'float', v[i])
        w.packedFloats(cf.no, v as ArrayLike<number>)
      } else if (cf.field.type === 'double') {
        for (let i = 0; i < n; i++) if (typeof v[i] !== 'number') bad(`${where}[${i}]`, 'double', v[i])
        w.packedDoubles(cf.no, v as ArrayLike<number>)
      } else {
        w.tag(cf.no, WireType.LEN)
        const start = w.beginLen()
        for (let i = 0; i < n; i++) cf.write(w, v[i], where)
        w.endLen(start)
      }
      continue
    }
    for (let i = 0; i < n; i++) encodeOne(w, cf, v[i], where)
  }
}

function encodeOne (w: WireWriter, cf: CompiledField, v: unknown, where: string): void {
  w.tag(cf.no, cf.wire)
  if (cf.field.kind !== 'message') {
    cf.write(w, v, where)
    return
  }
  if (typeof v !== 'object' || v === null || isArrayLike(v)) bad(where, `a ${cf.field.messageName ?? ''} object`, v)
  const start = w.beginLen()
  encodeInto(w, subOf(cf), v as Record<string, unknown>)
  w.endLen(start)
}

/**
 * Decodes a binary protobuf message of the given caffe type. Throws ProtoDecodeError (naming the
 * innermost message and byte offset) for truncated or malformed input; never reads past the input.
 */
export function decodeMessage<M extends MessageName> (name: M, bytes: Uint8Array): Messages[M] {
  const c = compile(name)
  const r = new WireReader(bytes, c.spec.fullName)
  const out = newObject(c)
  decodeInto(r, c, out, bytes.length)
  return out as Messages[M]
}

/** Encodes a message in protobuf's canonical layout (field-number order, declared packing). */
export function encodeMessage<M extends MessageName> (name: M, message: Messages[M], initialCapacity = 256): Uint8Array {
  const w = new WireWriter(initialCapacity)
  encodeInto(w, compile(name), message as Record<string, unknown>)
  return w.finish()
}

/** Mean files (.binaryproto) and single blobs. */
export function decodeBlobProto (bytes: Uint8Array): BlobProto {
  return decodeMessage('BlobProto', bytes)
}

export function encodeBlobProto (blob: BlobProto): Uint8Array {
  return encodeMessage('BlobProto', blob, 64 + blobBytes(blob))
}

export function decodeBlobProtoVector (bytes: Uint8Array): BlobProtoVector {
  return decodeMessage('BlobProtoVector', bytes)
}

export function encodeBlobProtoVector (v: BlobProtoVector): Uint8Array {
  return encodeMessage('BlobProtoVector', v, 64 + (v.blobs ?? []).reduce((s, b) => s + blobBytes(b) + 64, 0))
}

/** .caffemodel files: a NetParameter whose layers carry `blobs` (V2 `layer` or legacy V1 `layers`). */
export function decodeNetParameter (bytes: Uint8Array): NetParameter {
  return decodeMessage('NetParameter', bytes)
}

export function encodeNetParameter (net: NetParameter): Uint8Array {
  // Pre-size for the weights so the writer does not regrow (and copy) a multi-megabyte buffer.
  let size = 1024
  for (const l of [...(net.layer ?? []), ...(net.layers ?? [])]) for (const b of l.blobs ?? []) size += blobBytes(b) + 64
  return encodeMessage('NetParameter', net, size)
}

/** .solverstate files: iter, learned_net, history blobs, current_step. */
export function decodeSolverState (bytes: Uint8Array): SolverState {
  return decodeMessage('SolverState', bytes)
}

export function encodeSolverState (state: SolverState): Uint8Array {
  return encodeMessage('SolverState', state, 256 + (state.history ?? []).reduce((s, b) => s + blobBytes(b) + 64, 0))
}

function blobBytes (b: BlobProto): number {
  // Tolerates hand-built objects without the empty arrays; this is only a size estimate.
  return (b.data?.length ?? 0) * 4 + (b.diff?.length ?? 0) * 4 + (b.double_data?.length ?? 0) * 8 + (b.double_diff?.length ?? 0) * 8
}

/**
 * The shape a BlobProto describes, as Caffe's Blob::FromProto reads it: the legacy
 * num/channels/height/width fields win when any is present, otherwise `shape.dim`.
 */
export function blobProtoShape (blob: BlobProto): number[] {
  if (blob.num !== undefined || blob.channels !== undefined || blob.height !== undefined || blob.width !== undefined) {
    return [blob.num ?? 0, blob.channels ?? 0, blob.height ?? 0, blob.width ?? 0]
  }
  return blob.shape === undefined ? [] : [...blob.shape.dim]
}

/** Element count of a shape; an empty shape is a scalar (1), as in Caffe. */
export function shapeCount (shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/**
 * A blob's values as float32, from `data` or (for blobs written in double) `double_data`.
 * Throws when the value count does not match the shape, the check Caffe does when loading.
 */
export function blobProtoData (blob: BlobProto): Float32Array {
  const shape = blobProtoShape(blob)
  const count = shapeCount(shape)
  const values = blob.double_data.length > 0 ? Float32Array.from(blob.double_data) : blob.data
  if (values.length !== count) {
    throw new ProtoDecodeError('caffe.BlobProto', 0, `shape [${shape.join(', ')}] needs ${count} values but the blob holds ${values.length}`)
  }
  return values
}

const datumReader = new WireReader(new Uint8Array(0), 'caffe.Datum')
const EMPTY_BYTES = new Uint8Array(0)

/** Options for decodeDatum. */
export interface DecodeDatumOptions {
  /**
   * Return `data` as a view into the input instead of a copy. Only safe when the caller owns the
   * input buffer and will not reuse it while the Datum is alive.
   */
  readonly alias?: boolean
}

/**
 * Decodes one Datum (an LMDB/LevelDB value). Hand-written for the data-layer hot path: no
 * per-field dispatch, one reused reader, and `data` copied (or aliased) with a single memcpy.
 */
export function decodeDatum (bytes: Uint8Array, options?: DecodeDatumOptions): Datum {
  const r = datumReader.reset(bytes, 'caffe.Datum')
  const alias = options?.alias === true
  const d: Datum = { float_data: new Float32Array(0) }
  let floats: number[] | undefined
  try {
    while (r.pos < r.end) {
      const tagAt = r.pos
      const t = r.tag()
      switch (t) {
        case 0x08: d.channels = r.int32(); break
        case 0x10: d.height = r.int32(); break
        case 0x18: d.width = r.int32(); break
        case 0x22: d.data = alias ? r.bytesView() : r.bytes(); break
        case 0x28: d.label = r.int32(); break
        case 0x35: (floats ??= []).push(r.float()); break
        case 0x32: {
          const chunk = r.packedFloats()
          if (floats !== undefined) for (const f of chunk) floats.push(f)
          else d.float_data = d.float_data.length === 0 ? chunk : concatTyped(d.float_data, chunk) as Float32Array
          break
        }
        case 0x38: d.encoded = r.bool(); break
        default: {
          const no = t >>> 3
          if (no <= 7) r.fail(`field ${no} has wire type ${t & 7}, which does not match its declaration`, tagAt)
          if ((t & 7) === WireType.EGROUP) r.fail(`unexpected end-group tag for field ${no}`, tagAt)
          r.skip(t & 7, no)
        }
      }
    }
  } finally {
    // Drop the reference so a large input is not kept alive by the shared reader.
    r.reset(EMPTY_BYTES, 'caffe.Datum')
  }
  if (floats !== undefined) d.float_data = concatTyped(d.float_data, floats) as Float32Array
  return d
}

/**
 * Encodes one Datum exactly as protobuf would (fields in number order, float_data unpacked as
 * caffe.proto declares it), into an exactly sized buffer.
 */
export function encodeDatum (d: Datum): Uint8Array {
  const where = 'caffe.Datum'
  const data = d.data
  if (data !== undefined && !(data instanceof Uint8Array)) bad(`${where}.data`, 'bytes (Uint8Array)', data)
  let size = 0
  const intSize = (v: number | undefined, field: string): number => {
    if (v === undefined) return 0
    if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) bad(`${where}.${field}`, 'int32', v)
    return 1 + (v < 0 ? 10 : varintSize(v))
  }
  size += intSize(d.channels, 'channels') + intSize(d.height, 'height') + intSize(d.width, 'width') + intSize(d.label, 'label')
  if (data !== undefined) size += 1 + varintSize(data.length) + data.length
  size += d.float_data.length * 5
  if (d.encoded !== undefined) {
    if (typeof d.encoded !== 'boolean') bad(`${where}.encoded`, 'bool', d.encoded)
    size += 2
  }
  // Written by hand into an exactly sized array: convert_imageset encodes one Datum per image.
  const out = new Uint8Array(size)
  let p = 0
  const varint = (v: number): void => {
    if (v < 0) {
      // Negative int32: sign-extended to 64 bits, so the five high groups are all ones.
      let x = v >>> 0
      for (let i = 0; i < 4; i++) { out[p++] = (x & 0x7f) | 0x80; x >>>= 7 }
      out[p++] = 0xff
      for (let i = 0; i < 4; i++) out[p++] = 0xff
      out[p++] = 0x01
      return
    }
    let x = v
    while (x >= 0x80) { out[p++] = (x & 0x7f) | 0x80; x >>>= 7 }
    out[p++] = x
  }
  if (d.channels !== undefined) { out[p++] = 0x08; varint(d.channels) }
  if (d.height !== undefined) { out[p++] = 0x10; varint(d.height) }
  if (d.width !== undefined) { out[p++] = 0x18; varint(d.width) }
  if (data !== undefined) { out[p++] = 0x22; varint(data.length); out.set(data, p); p += data.length }
  if (d.label !== undefined) { out[p++] = 0x28; varint(d.label) }
  if (d.float_data.length > 0) {
    const view = new DataView(out.buffer)
    for (let i = 0; i < d.float_data.length; i++) {
      out[p++] = 0x35
      view.setFloat32(p, d.float_data[i] as number, true)
      p += 4
    }
  }
  if (d.encoded !== undefined) { out[p++] = 0x38; out[p++] = d.encoded ? 1 : 0 }
  return out
}
