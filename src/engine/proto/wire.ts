import { ProtoDecodeError, ProtoEncodeError } from './errors.js'

/** Protobuf wire types (the low 3 bits of a tag). Groups (3, 4) are only ever skipped. */
export const WireType = {
  VARINT: 0,
  I64: 1,
  LEN: 2,
  SGROUP: 3,
  EGROUP: 4,
  I32: 5
} as const

const TWO_32 = 4294967296
const MAX_FIELD_NUMBER = 536870911
// Groups nest; a hostile input could nest them deep enough to blow the stack when skipping.
const MAX_GROUP_DEPTH = 64

/** True on every platform Node runs on today; checked once so typed-array copies stay correct elsewhere. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

const utf8Decoder = new TextDecoder('utf-8', { fatal: true })
const utf8Encoder = new TextEncoder()

/**
 * Reads protobuf wire format from a byte array. Every read is bounds-checked against `end`,
 * which decoders narrow to the current sub-message, so a bogus length can neither run past its
 * parent nor allocate more than the bytes actually present. Errors are ProtoDecodeError naming
 * `context` (the message being decoded) and the absolute byte offset.
 */
export class WireReader {
  buf: Uint8Array
  pos: number
  end: number
  /** Fully qualified name of the message being decoded, for error messages. */
  context: string
  private view: DataView | undefined

  constructor (buf: Uint8Array, context = 'message', start = 0, end = buf.length) {
    this.buf = buf
    this.pos = start
    this.end = end
    this.context = context
  }

  /** Points the reader at a new input, so hot loops can reuse one reader per thread. */
  reset (buf: Uint8Array, context: string, start = 0, end = buf.length): this {
    this.buf = buf
    this.pos = start
    this.end = end
    this.context = context
    this.view = undefined
    return this
  }

  fail (problem: string, offset = this.pos): never {
    throw new ProtoDecodeError(this.context, offset, problem)
  }

  /** Low 32 bits of a varint as an unsigned number (how protobuf reads uint32 and enum tags). */
  uint32 (): number {
    const b = this.buf
    let p = this.pos
    if (p + 10 <= this.end) {
      // Fast path: enough bytes left for the longest varint, so no per-byte bounds check.
      let c = b[p++] as number
      let x = c & 0x7f
      if (c < 0x80) { this.pos = p; return x }
      c = b[p++] as number; x |= (c & 0x7f) << 7
      if (c < 0x80) { this.pos = p; return x }
      c = b[p++] as number; x |= (c & 0x7f) << 14
      if (c < 0x80) { this.pos = p; return x }
      c = b[p++] as number; x |= (c & 0x7f) << 21
      if (c < 0x80) { this.pos = p; return x >>> 0 }
      c = b[p++] as number; x |= c << 28
      if (c < 0x80) { this.pos = p; return x >>> 0 }
      // Bits above 32 are dropped, as protobuf does for 32-bit fields, but the varint must end.
      for (let i = 5; i < 10; i++) {
        if ((b[p++] as number) < 0x80) { this.pos = p; return x >>> 0 }
      }
      this.fail('malformed varint (more than 10 bytes)', this.pos)
    }
    return this.uint32Slow()
  }

  private uint32Slow (): number {
    const start = this.pos
    let x = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint', start)
      const c = this.buf[this.pos++] as number
      if (i < 5) x |= (c & 0x7f) << (7 * i)
      if (c < 0x80) return x >>> 0
    }
    return this.fail('malformed varint (more than 10 bytes)', start)
  }

  /** int32 fields: negative values arrive sign-extended to 10 bytes; the low 32 bits are the value. */
  int32 (): number {
    return this.uint32() | 0
  }

  sint32 (): number {
    const n = this.uint32()
    return (n >>> 1) ^ -(n & 1)
  }

  bool (): boolean {
    // A bool is a whole varint; any non-zero value is true.
    const start = this.pos
    const [lo, hi] = this.varint64(start)
    return lo !== 0 || hi !== 0
  }

  /** Reads a varint as [low 32 bits, high 32 bits], both unsigned. */
  varint64 (start = this.pos): [number, number] {
    const b = this.buf
    let lo = 0
    let hi = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint', start)
      const c = b[this.pos++] as number
      const bits = c & 0x7f
      if (i < 4) lo |= bits << (7 * i)
      else if (i === 4) { lo |= bits << 28; hi = bits >>> 4 } else hi |= bits << (7 * i - 32)
      if (c < 0x80) return [lo >>> 0, hi >>> 0]
    }
    return this.fail('malformed varint (more than 10 bytes)', start)
  }

  /** int64 as a JS number; values beyond ±2^53 cannot be represented exactly and are rejected. */
  int64 (): number {
    const start = this.pos
    const [lo, hi] = this.varint64()
    return this.safe((hi | 0) * TWO_32 + lo, start)
  }

  uint64 (): number {
    const start = this.pos
    const [lo, hi] = this.varint64()
    return this.safe(hi * TWO_32 + lo, start)
  }

  sint64 (): number {
    const start = this.pos
    const [lo, hi] = this.varint64()
    // Zigzag on the 64-bit pair: value = (n >>> 1) ^ -(n & 1).
    const neg = lo & 1
    let vlo = ((lo >>> 1) | (hi << 31)) >>> 0
    let vhi = hi >>> 1
    if (neg !== 0) { vlo = ~vlo >>> 0; vhi = ~vhi >>> 0 }
    return this.safe((vhi | 0) * TWO_32 + vlo, start)
  }

  private safe (value: number, start: number): number {
    if (!Number.isSafeInteger(value)) this.fail('64-bit integer outside ±2^53 cannot be represented exactly', start)
    return value
  }

  private need (n: number): number {
    const p = this.pos
    if (n > this.end - p) this.fail(`truncated: need ${n} bytes, ${this.end - p} left`)
    this.pos = p + n
    return p
  }

  private dataView (): DataView {
    this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)
    return this.view
  }

  fixed32 (): number { return this.dataView().getUint32(this.need(4), true) }
  sfixed32 (): number { return this.dataView().getInt32(this.need(4), true) }
  float (): number { return this.dataView().getFloat32(this.need(4), true) }
  double (): number { return this.dataView().getFloat64(this.need(8), true) }

  fixed64 (): number {
    const start = this.pos
    const p = this.need(8)
    const v = this.dataView()
    return this.safe(v.getUint32(p + 4, true) * TWO_32 + v.getUint32(p, true), start)
  }

  sfixed64 (): number {
    const start = this.pos
    const p = this.need(8)
    const v = this.dataView()
    return this.safe(v.getInt32(p + 4, true) * TWO_32 + v.getUint32(p, true), start)
  }

  /** Reads a length prefix and returns the end offset of the payload, checked against `end`. */
  lengthEnd (): number {
    const start = this.pos
    const len = this.uint32()
    // uint32() drops high bits; a length that needed them is bogus anyway, so recheck the raw size.
    if (len > this.end - this.pos) this.fail(`length ${len} exceeds the ${this.end - this.pos} bytes left`, start)
    return this.pos + len
  }

  /** A length-delimited payload as a view into the input (no copy). */
  bytesView (): Uint8Array {
    const end = this.lengthEnd()
    const out = this.buf.subarray(this.pos, end)
    this.pos = end
    return out
  }

  /** A length-delimited payload copied out of the input. */
  bytes (): Uint8Array {
    return this.bytesView().slice()
  }

  string (): string {
    const start = this.pos
    const end = this.lengthEnd()
    const b = this.buf
    let p = this.pos
    // Most Caffe strings (names, paths) are short ASCII; decoding them by hand beats TextDecoder.
    if (end - p <= 64) {
      let s = ''
      for (; p < end; p++) {
        const c = b[p] as number
        if (c >= 0x80) break
        s += String.fromCharCode(c)
      }
      if (p === end) { this.pos = end; return s }
    }
    try {
      const s = utf8Decoder.decode(b.subarray(this.pos, end))
      this.pos = end
      return s
    } catch {
      return this.fail('string field is not valid UTF-8', start)
    }
  }

  /** Copies `n` little-endian floats starting at the current position into a new Float32Array. */
  floats (n: number): Float32Array {
    const p = this.need(n * 4)
    const out = new Float32Array(n)
    if (LITTLE_ENDIAN) {
      new Uint8Array(out.buffer).set(this.buf.subarray(p, p + n * 4))
    } else {
      const v = this.dataView()
      for (let i = 0; i < n; i++) out[i] = v.getFloat32(p + 4 * i, true)
    }
    return out
  }

  doubles (n: number): Float64Array {
    const p = this.need(n * 8)
    const out = new Float64Array(n)
    if (LITTLE_ENDIAN) {
      new Uint8Array(out.buffer).set(this.buf.subarray(p, p + n * 8))
    } else {
      const v = this.dataView()
      for (let i = 0; i < n; i++) out[i] = v.getFloat64(p + 8 * i, true)
    }
    return out
  }

  /** A packed repeated float payload (length prefix included) as a Float32Array. */
  packedFloats (): Float32Array {
    const start = this.pos
    const end = this.lengthEnd()
    const len = end - this.pos
    if (len % 4 !== 0) this.fail(`packed float payload of ${len} bytes is not a multiple of 4`, start)
    return this.floats(len / 4)
  }

  packedDoubles (): Float64Array {
    const start = this.pos
    const end = this.lengthEnd()
    const len = end - this.pos
    if (len % 8 !== 0) this.fail(`packed double payload of ${len} bytes is not a multiple of 8`, start)
    return this.doubles(len / 8)
  }

  /** Reads a tag; returns field number * 8 + wire type after validating both. */
  tag (): number {
    const start = this.pos
    const t = this.uint32()
    const no = t >>> 3
    if (no === 0 || no > MAX_FIELD_NUMBER) this.fail(`invalid field number ${no}`, start)
    const wt = t & 7
    if (wt > 5) this.fail(`invalid wire type ${wt} for field ${no}`, start)
    return t
  }

  /** Skips the value of a field we do not know (or do not keep). */
  skip (wireType: number, fieldNo: number, depth = 0): void {
    switch (wireType) {
      case WireType.VARINT: this.varint64(); return
      case WireType.I64: this.need(8); return
      case WireType.LEN: this.pos = this.lengthEnd(); return
      case WireType.I32: this.need(4); return
      case WireType.SGROUP: {
        if (depth >= MAX_GROUP_DEPTH) this.fail('groups nested too deeply')
        for (;;) {
          if (this.pos >= this.end) this.fail(`unterminated group ${fieldNo}`)
          const t = this.tag()
          if ((t & 7) === WireType.EGROUP) {
            if (t >>> 3 !== fieldNo) this.fail(`group ${fieldNo} closed by end-group ${t >>> 3}`)
            return
          }
          this.skip(t & 7, t >>> 3, depth + 1)
        }
      }
      default:
        this.fail(`unexpected wire type ${wireType} for field ${fieldNo}`)
    }
  }
}

/**
 * Appends protobuf wire format to a growable buffer. Length-delimited sub-messages are written
 * in place: `beginLen()` reserves one byte for the length, `endLen()` widens it if the payload
 * turned out longer than 127 bytes (one memmove per nesting level, cheap next to the payload).
 */
export class WireWriter {
  buf: Uint8Array
  pos = 0
  private view: DataView

  constructor (initialCapacity = 256) {
    this.buf = new Uint8Array(Math.max(16, initialCapacity))
    this.view = new DataView(this.buf.buffer)
  }

  ensure (n: number): void {
    if (this.pos + n <= this.buf.length) return
    let cap = this.buf.length * 2
    while (cap < this.pos + n) cap *= 2
    const next = new Uint8Array(cap)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  /** The bytes written so far, copied into an exactly sized array. */
  finish (): Uint8Array {
    return this.buf.slice(0, this.pos)
  }

  tag (fieldNo: number, wireType: number): void {
    this.uint32(fieldNo * 8 + wireType)
  }

  /** Writes v (taken as unsigned 32-bit) as a varint. */
  uint32 (v: number): void {
    this.ensure(5)
    const b = this.buf
    let x = v >>> 0
    while (x >= 0x80) {
      b[this.pos++] = (x & 0x7f) | 0x80
      x >>>= 7
    }
    b[this.pos++] = x
  }

  /** Negative int32 values are sign-extended to 64 bits, as protobuf requires (10 bytes). */
  int32 (v: number): void {
    if (v >= 0) this.uint32(v)
    else this.varint64(v >>> 0, 0xffffffff)
  }

  sint32 (v: number): void {
    this.uint32((v << 1) ^ (v >> 31))
  }

  bool (v: boolean): void {
    this.ensure(1)
    this.buf[this.pos++] = v ? 1 : 0
  }

  varint64 (lo: number, hi: number): void {
    this.ensure(10)
    const b = this.buf
    let l = lo >>> 0
    let h = hi >>> 0
    while (h !== 0 || l >= 0x80) {
      b[this.pos++] = (l & 0x7f) | 0x80
      l = ((l >>> 7) | (h << 25)) >>> 0
      h >>>= 7
    }
    b[this.pos++] = l
  }

  int64 (v: number): void {
    const [lo, hi] = split64(v)
    this.varint64(lo, hi)
  }

  uint64 (v: number): void {
    if (v < 0) throw new ProtoEncodeError(`uint64 value ${v} is negative`)
    this.int64(v)
  }

  sint64 (v: number): void {
    const [lo, hi] = split64(v)
    // Zigzag on the 64-bit pair: (n << 1) ^ (n >> 63).
    const sign = hi >> 31
    const zlo = ((lo << 1) ^ sign) >>> 0
    const zhi = (((hi << 1) | (lo >>> 31)) ^ sign) >>> 0
    this.varint64(zlo, zhi)
  }

  fixed32 (v: number): void { this.ensure(4); this.view.setUint32(this.pos, v >>> 0, true); this.pos += 4 }
  sfixed32 (v: number): void { this.ensure(4); this.view.setInt32(this.pos, v | 0, true); this.pos += 4 }
  float (v: number): void { this.ensure(4); this.view.setFloat32(this.pos, v, true); this.pos += 4 }
  double (v: number): void { this.ensure(8); this.view.setFloat64(this.pos, v, true); this.pos += 8 }

  fixed64 (v: number): void {
    if (v < 0) throw new ProtoEncodeError(`fixed64 value ${v} is negative`)
    this.sfixed64(v)
  }

  sfixed64 (v: number): void {
    const [lo, hi] = split64(v)
    this.ensure(8)
    this.view.setUint32(this.pos, lo, true)
    this.view.setUint32(this.pos + 4, hi, true)
    this.pos += 8
  }

  /** Raw bytes with no length prefix. */
  raw (bytes: Uint8Array): void {
    this.ensure(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
  }

  bytes (bytes: Uint8Array): void {
    this.uint32(bytes.length)
    this.raw(bytes)
  }

  string (s: string): void {
    // Worst case 3 UTF-8 bytes per UTF-16 unit; encode straight into the buffer after a 1-byte length guess.
    const max = s.length * 3
    this.ensure(5 + max)
    const start = this.beginLen()
    const { written } = utf8Encoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + max))
    this.pos += written
    this.endLen(start)
  }

  /** Little-endian float payload without a prefix: a memcpy on little-endian hosts. */
  floats (values: ArrayLike<number>): void {
    const n = values.length
    this.ensure(n * 4)
    if (LITTLE_ENDIAN && values instanceof Float32Array) {
      this.buf.set(new Uint8Array(values.buffer, values.byteOffset, n * 4), this.pos)
      this.pos += n * 4
      return
    }
    for (let i = 0; i < n; i++) this.view.setFloat32(this.pos + 4 * i, values[i] as number, true)
    this.pos += n * 4
  }

  doubles (values: ArrayLike<number>): void {
    const n = values.length
    this.ensure(n * 8)
    if (LITTLE_ENDIAN && values instanceof Float64Array) {
      this.buf.set(new Uint8Array(values.buffer, values.byteOffset, n * 8), this.pos)
      this.pos += n * 8
      return
    }
    for (let i = 0; i < n; i++) this.view.setFloat64(this.pos + 8 * i, values[i] as number, true)
    this.pos += n * 8
  }

  packedFloats (fieldNo: number, values: ArrayLike<number>): void {
    this.tag(fieldNo, WireType.LEN)
    this.uint32(values.length * 4)
    this.floats(values)
  }

  packedDoubles (fieldNo: number, values: ArrayLike<number>): void {
    this.tag(fieldNo, WireType.LEN)
    this.uint32(values.length * 8)
    this.doubles(values)
  }

  /** Starts a length-delimited value; pass the result to endLen() when the payload is written. */
  beginLen (): number {
    this.ensure(1)
    this.buf[this.pos++] = 0
    return this.pos
  }

  endLen (payloadStart: number): void {
    const len = this.pos - payloadStart
    if (len < 0x80) {
      this.buf[payloadStart - 1] = len
      return
    }
    let extra = 0
    for (let x = len >>> 7; x > 0; x >>>= 7) extra++
    this.ensure(extra)
    this.buf.copyWithin(payloadStart + extra, payloadStart, this.pos)
    let p = payloadStart - 1
    let x = len
    while (x >= 0x80) {
      this.buf[p++] = (x & 0x7f) | 0x80
      x >>>= 7
    }
    this.buf[p] = x
    this.pos += extra
  }
}

/** Splits a safe integer into two's-complement [low, high] 32-bit halves. */
export function split64 (v: number): [number, number] {
  if (!Number.isSafeInteger(v)) throw new ProtoEncodeError(`64-bit integer field value ${v} is not a safe integer`)
  if (v >= 0) return [v % TWO_32 >>> 0, Math.floor(v / TWO_32) >>> 0]
  const a = -v
  let lo = a % TWO_32 >>> 0
  let hi = Math.floor(a / TWO_32) >>> 0
  // Negate the 64-bit magnitude: invert and add one, carrying from low to high.
  lo = (~lo + 1) >>> 0
  hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0
  return [lo, hi]
}

/** Bytes a value takes as a varint (unsigned 32-bit). */
export function varintSize (v: number): number {
  let x = v >>> 0
  let n = 1
  while (x >= 0x80) { x >>>= 7; n++ }
  return n
}
