import { describe, it, expect } from 'vitest'
import { WireReader, WireWriter, WireType, split64 } from '../../../src/engine/proto/wire.js'
import { ProtoDecodeError } from '../../../src/engine/proto/errors.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'))

function written (fn: (w: WireWriter) => void): string {
  const w = new WireWriter(16)
  fn(w)
  return hex(w.finish())
}

describe('WireWriter golden bytes (hand-computed from the wire-format rules)', () => {
  it('writes varints', () => {
    expect(written((w) => w.uint32(0))).toBe('00')
    expect(written((w) => w.uint32(1))).toBe('01')
    // 150 = 0b1001_0110 → low 7 bits 0x16 | 0x80, then 150 >> 7 = 1
    expect(written((w) => w.uint32(150))).toBe('9601')
    expect(written((w) => w.uint32(300))).toBe('ac02')
    expect(written((w) => w.uint32(0xffffffff))).toBe('ffffffff0f')
  })

  it('sign-extends negative int32 to 10 bytes', () => {
    expect(written((w) => w.int32(-1))).toBe('ffffffffffffffffff01')
    expect(written((w) => w.int32(-2))).toBe('feffffffffffffffff01')
    expect(written((w) => w.int64(-1))).toBe('ffffffffffffffffff01')
  })

  it('zigzag-encodes sint32 and sint64', () => {
    expect(written((w) => w.sint32(0))).toBe('00')
    expect(written((w) => w.sint32(-1))).toBe('01')
    expect(written((w) => w.sint32(1))).toBe('02')
    expect(written((w) => w.sint32(-2))).toBe('03')
    expect(written((w) => w.sint32(2147483647))).toBe('feffffff0f')
    expect(written((w) => w.sint32(-2147483648))).toBe('ffffffff0f')
    expect(written((w) => w.sint64(-1))).toBe('01')
    expect(written((w) => w.sint64(2147483648))).toBe('8080808010')
  })

  it('writes 64-bit varints beyond 32 bits', () => {
    // 2^32 = 1 followed by 32 zero bits: 4 groups of 7 zero bits (0x80 each), then 0b0010000 (bits 28..34) = 0x10
    expect(written((w) => w.int64(4294967296))).toBe('8080808010')
    expect(written((w) => w.int64(Number.MAX_SAFE_INTEGER))).toBe('ffffffffffffff0f')
  })

  it('writes fixed-width little-endian values', () => {
    expect(written((w) => w.float(1))).toBe('0000803f')
    expect(written((w) => w.float(-2.5))).toBe('000020c0')
    expect(written((w) => w.double(1))).toBe('000000000000f03f')
    expect(written((w) => w.fixed32(0xdeadbeef))).toBe('efbeadde')
    expect(written((w) => w.sfixed64(-2))).toBe('feffffffffffffff')
  })

  it('writes tags, strings and packed floats', () => {
    expect(written((w) => w.tag(1, WireType.VARINT))).toBe('08')
    expect(written((w) => w.tag(7, WireType.LEN))).toBe('3a')
    expect(written((w) => w.tag(100, WireType.LEN))).toBe('a206')
    expect(written((w) => { w.tag(2, WireType.LEN); w.string('testing') })).toBe('120774657374696e67')
    expect(written((w) => { w.tag(1, WireType.LEN); w.string('é') })).toBe('0a02c3a9')
    expect(written((w) => w.packedFloats(5, new Float32Array([1, -2.5])))).toBe('2a080000803f000020c0')
    expect(written((w) => w.packedFloats(5, [1, -2.5]))).toBe('2a080000803f000020c0')
  })

  it('widens a reserved length byte when a sub-message is longer than 127 bytes', () => {
    const w = new WireWriter(4)
    w.tag(1, WireType.LEN)
    const start = w.beginLen()
    for (let i = 0; i < 200; i++) w.uint32(7)
    w.endLen(start)
    const out = w.finish()
    // 200 = 0xc8 → varint c8 01
    expect(hex(out.subarray(0, 3))).toBe('0ac801')
    expect(out.length).toBe(3 + 200)
    expect(out.subarray(3).every((b) => b === 7)).toBe(true)
  })
})

describe('WireReader', () => {
  it('reads back every written type', () => {
    const w = new WireWriter()
    const ints = [0, 1, 127, 128, 300, 2147483647, -1, -2147483648]
    for (const v of ints) w.int32(v)
    for (const v of ints) w.sint32(v)
    const longs = [0, -1, 4294967296, -4294967297, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 123456789012]
    for (const v of longs) w.int64(v)
    for (const v of longs) w.sint64(v)
    for (const v of longs) w.sfixed64(v)
    w.uint64(Number.MAX_SAFE_INTEGER)
    w.fixed64(2 ** 40)
    w.bool(true)
    w.double(Math.PI)
    w.float(0.1)
    w.string('héllo, wörld')
    w.bytes(new Uint8Array([0, 255, 3]))
    const r = new WireReader(w.finish(), 'caffe.Test')
    expect(ints.map(() => r.int32())).toEqual(ints)
    expect(ints.map(() => r.sint32())).toEqual(ints)
    expect(longs.map(() => r.int64())).toEqual(longs)
    expect(longs.map(() => r.sint64())).toEqual(longs)
    expect(longs.map(() => r.sfixed64())).toEqual(longs)
    expect(r.uint64()).toBe(Number.MAX_SAFE_INTEGER)
    expect(r.fixed64()).toBe(2 ** 40)
    expect(r.bool()).toBe(true)
    expect(r.double()).toBe(Math.PI)
    expect(r.float()).toBe(Math.fround(0.1))
    expect(r.string()).toBe('héllo, wörld')
    expect([...r.bytes()]).toEqual([0, 255, 3])
    expect(r.pos).toBe(r.end)
  })

  it('keeps the low 32 bits of an over-long uint32 varint, as protobuf does', () => {
    // 2^32 + 5 as a 64-bit varint
    const w = new WireWriter()
    w.int64(4294967301)
    expect(new WireReader(w.finish()).uint32()).toBe(5)
  })

  it('reads packed floats into a Float32Array', () => {
    const r = new WireReader(bytes('080000803f000020c0'))
    const f = r.packedFloats()
    expect(f).toBeInstanceOf(Float32Array)
    expect([...f]).toEqual([1, -2.5])
  })

  it('rejects a truncated varint with the message name and offset', () => {
    const r = new WireReader(bytes('08 96'), 'caffe.Datum')
    r.tag()
    expect(() => r.uint32()).toThrow(ProtoDecodeError)
    expect(() => new WireReader(bytes('08 96'), 'caffe.Datum', 1).uint32()).toThrow('invalid caffe.Datum at byte 1: truncated varint')
  })

  it('rejects varints longer than 10 bytes', () => {
    const r = new WireReader(bytes('ffffffffffffffffffff01' + '00'.repeat(10)), 'caffe.X')
    expect(() => r.uint32()).toThrow('malformed varint')
  })

  it('rejects a length that runs past the end without allocating it', () => {
    // claims 0x7fffffff bytes
    const r = new WireReader(bytes('ffffffff07 0000'), 'caffe.BlobProto')
    expect(() => r.bytes()).toThrow('invalid caffe.BlobProto at byte 0: length 2147483647 exceeds the 2 bytes left')
  })

  it('rejects a packed float payload that is not a multiple of 4', () => {
    expect(() => new WireReader(bytes('03 000000')).packedFloats()).toThrow('not a multiple of 4')
  })

  it('rejects 64-bit values that do not fit a JS number exactly', () => {
    const w = new WireWriter()
    w.varint64(0, 0x00200000) // 2^53
    expect(() => new WireReader(w.finish()).int64()).toThrow('±2^53')
  })

  it('rejects invalid tags and wire types', () => {
    expect(() => new WireReader(bytes('00')).tag()).toThrow('invalid field number 0')
    expect(() => new WireReader(bytes('0f')).tag()).toThrow('invalid wire type 7')
  })

  it('skips every wire type including nested groups', () => {
    const w = new WireWriter()
    w.tag(1, WireType.VARINT); w.int64(-1)
    w.tag(2, WireType.I64); w.double(1)
    w.tag(3, WireType.LEN); w.string('abc')
    w.tag(4, WireType.I32); w.float(1)
    w.tag(5, WireType.SGROUP); w.tag(6, WireType.VARINT); w.uint32(1); w.tag(7, WireType.SGROUP); w.tag(7, WireType.EGROUP); w.tag(5, WireType.EGROUP)
    w.tag(9, WireType.VARINT); w.uint32(42)
    const r = new WireReader(w.finish())
    for (let i = 0; i < 5; i++) {
      const t = r.tag()
      r.skip(t & 7, t >>> 3)
    }
    expect(r.tag()).toBe(9 * 8)
    expect(r.uint32()).toBe(42)
  })

  it('rejects an unterminated group', () => {
    const w = new WireWriter()
    w.tag(5, WireType.SGROUP); w.tag(6, WireType.VARINT); w.uint32(1)
    const r = new WireReader(w.finish())
    const t = r.tag()
    expect(() => r.skip(t & 7, t >>> 3)).toThrow('unterminated group 5')
  })
})

describe('split64', () => {
  it('splits into two’s-complement halves', () => {
    expect(split64(-1)).toEqual([0xffffffff, 0xffffffff])
    expect(split64(-4294967296)).toEqual([0, 0xffffffff])
    expect(split64(4294967297)).toEqual([1, 1])
    expect(() => split64(2 ** 53)).toThrow('not a safe integer')
  })
})
