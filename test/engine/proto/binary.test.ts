import { describe, it, expect } from 'vitest'
import {
  decodeDatum, encodeDatum, decodeMessage, encodeMessage, decodeBlobProto, encodeBlobProto,
  decodeNetParameter, encodeNetParameter, decodeSolverState, encodeSolverState, blobProtoShape, blobProtoData,
  decodeBlobProtoVector, encodeBlobProtoVector
} from '../../../src/engine/proto/binary.js'
import { createMessage, type Datum, type NetParameter } from '../../../src/engine/proto/caffe.js'
import { ProtoDecodeError, ProtoEncodeError } from '../../../src/engine/proto/errors.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'))

describe('Datum', () => {
  const datum: Datum = { channels: 1, height: 2, width: 2, data: new Uint8Array([1, 2, 3, 4]), label: 7, float_data: new Float32Array(0) }
  // field 1 varint (08) 1, field 2 (10) 2, field 3 (18) 2, field 4 LEN (22) len 4 + bytes, field 5 (28) 7
  const golden = '0801 1002 1802 2204 01020304 2807'

  it('encodes to the hand-computed bytes, on the fast and the generic path', () => {
    expect(hex(encodeDatum(datum))).toBe(golden.replace(/ /g, ''))
    expect(hex(encodeMessage('Datum', datum))).toBe(golden.replace(/ /g, ''))
  })

  it('decodes the hand-computed bytes, on the fast and the generic path', () => {
    for (const d of [decodeDatum(bytes(golden)), decodeMessage('Datum', bytes(golden))]) {
      expect(d.channels).toBe(1)
      expect(d.height).toBe(2)
      expect(d.width).toBe(2)
      expect([...(d.data ?? [])]).toEqual([1, 2, 3, 4])
      expect(d.label).toBe(7)
      expect(d.encoded).toBeUndefined()
      expect(d.float_data.length).toBe(0)
    }
  })

  it('copies data by default and aliases it on request', () => {
    const input = bytes(golden)
    const copied = decodeDatum(input)
    const aliased = decodeDatum(input, { alias: true })
    input[8] = 99
    expect(copied.data?.[0]).toBe(1)
    expect(aliased.data?.[0]).toBe(99)
  })

  it('writes a negative label as a 10-byte varint and float_data unpacked', () => {
    const d: Datum = { label: -1, float_data: new Float32Array([1]), encoded: true }
    const out = encodeDatum(d)
    expect(hex(out)).toBe('28ffffffffffffffffff01' + '350000803f' + '3801')
    expect(hex(encodeMessage('Datum', d))).toBe(hex(out))
    const back = decodeDatum(out)
    expect(back.label).toBe(-1)
    expect([...back.float_data]).toEqual([1])
    expect(back.encoded).toBe(true)
  })

  it('accepts packed float_data too (other writers pack it)', () => {
    const d = decodeDatum(bytes('3208 0000803f 000020c0 3500004040'))
    expect([...d.float_data]).toEqual([1, -2.5, 3])
    expect([...decodeMessage('Datum', bytes('3208 0000803f 000020c0 3500004040')).float_data]).toEqual([1, -2.5, 3])
  })

  it('skips unknown fields and rejects wrong wire types with the offset', () => {
    const d = decodeDatum(bytes('0801 4a03616263 2805'))
    expect(d.channels).toBe(1)
    expect(d.label).toBe(5)
    expect(() => decodeDatum(bytes('0801 0d00000000'))).toThrow('invalid caffe.Datum at byte 2: field 1 has wire type 5')
  })

  it('round-trips a 28×28 datum and decodes it cheaply', () => {
    const pixels = new Uint8Array(784).map((_, i) => (i * 31) & 255)
    const enc = encodeDatum({ channels: 1, height: 28, width: 28, data: pixels, label: 3, float_data: new Float32Array(0) })
    expect(enc.length).toBe(2 + 2 + 2 + 3 + 784 + 2)
    const back = decodeDatum(enc)
    expect(back.data).toEqual(pixels)
    const n = 60_000
    const t0 = performance.now()
    let sum = 0
    for (let i = 0; i < n; i++) sum += decodeDatum(enc).label ?? 0
    const ms = performance.now() - t0
    expect(sum).toBe(3 * n)
    // 60k decodes is one MNIST epoch; anything near a second would dominate a training epoch.
    expect(ms).toBeLessThan(1000)
  })

  it('rejects truncated datums', () => {
    const enc = encodeDatum({ channels: 1, height: 28, width: 28, data: new Uint8Array(784), label: 3, float_data: new Float32Array(0) })
    expect(() => decodeDatum(enc.subarray(0, 100))).toThrow(/invalid caffe.Datum at byte 7: length 784 exceeds the 9[0-9]? bytes left/)
  })
})

describe('BlobProto', () => {
  it('encodes data packed and shape as BlobShape, in field-number order', () => {
    const b = createMessage('BlobProto', { shape: { dim: [2] }, data: [1, -2.5] })
    // data (5, packed): 2a 08 + 2 floats; shape (7): 3a 03 [dim (1, packed): 0a 01 02]
    expect(hex(encodeBlobProto(b))).toBe('2a080000803f000020c0' + '3a030a0102')
  })

  it('reads the legacy num/channels/height/width fields', () => {
    // num 1, channels 3, height 1, width 2, then 6 packed floats
    const floats = Buffer.alloc(24)
    for (let i = 0; i < 6; i++) floats.writeFloatLE(i / 2, i * 4)
    const b = decodeBlobProto(bytes('0801 1003 1801 2002 2a18' + floats.toString('hex')))
    expect(b.shape).toBeUndefined()
    expect(blobProtoShape(b)).toEqual([1, 3, 1, 2])
    expect([...blobProtoData(b)]).toEqual([0, 0.5, 1, 1.5, 2, 2.5])
  })

  it('reads unpacked repeated floats and double_data', () => {
    const b = decodeBlobProto(bytes('2d0000803f 2d000020c0 3a030a0102'))
    expect([...b.data]).toEqual([1, -2.5])
    const d = decodeBlobProto(bytes('4210 000000000000f03f 000000000000f0bf 3a030a0102'))
    expect(d.double_data).toBeInstanceOf(Float64Array)
    expect([...blobProtoData(d)]).toEqual([1, -1])
  })

  it('checks the value count against the shape', () => {
    const b = createMessage('BlobProto', { shape: { dim: [2, 2] }, data: [1, 2, 3] })
    expect(() => blobProtoData(decodeBlobProto(encodeBlobProto(b)))).toThrow('shape [2, 2] needs 4 values but the blob holds 3')
  })

  it('round-trips a BlobProtoVector', () => {
    const v = createMessage('BlobProtoVector', { blobs: [{ shape: { dim: [1] }, data: [5] }, { shape: { dim: [] } }] })
    const back = decodeBlobProtoVector(encodeBlobProtoVector(v))
    expect(back.blobs.length).toBe(2)
    expect([...(back.blobs[0]?.data ?? [])]).toEqual([5])
    expect(back.blobs[1]?.shape?.dim).toEqual([])
  })
})

function sameFloats (a: Float32Array | undefined, b: Float32Array | undefined): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false
  return Buffer.compare(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) === 0
}

function lenetLikeModel (scale: number): NetParameter {
  const rnd = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.1)
  const layer = (name: string, type: string, shapes: number[][]) => ({
    name,
    type,
    bottom: ['x'],
    top: [name],
    blobs: shapes.map((s) => ({ shape: { dim: s }, data: rnd(s.reduce((a, b) => a * b, 1)) }))
  })
  return createMessage('NetParameter', {
    name: 'LeNet',
    layer: [
      { name: 'mnist', type: 'Data', top: ['data', 'label'], include: [{ phase: 'TRAIN' }], data_param: { source: 'x', backend: 'LMDB', batch_size: 64 } },
      layer('conv1', 'Convolution', [[20, 1, 5, 5], [20]]),
      layer('conv2', 'Convolution', [[50, 20, 5, 5], [50]]),
      layer('ip1', 'InnerProduct', [[500 * scale, 800], [500 * scale]]),
      layer('ip2', 'InnerProduct', [[10, 500 * scale], [10]])
    ]
  })
}

describe('NetParameter (.caffemodel)', () => {
  it('round-trips layers with blobs, enums and nested rules', () => {
    const net = lenetLikeModel(1)
    const enc = encodeNetParameter(net)
    const back = decodeNetParameter(enc)
    expect(back.name).toBe('LeNet')
    expect(back.layer.map((l) => l.name)).toEqual(['mnist', 'conv1', 'conv2', 'ip1', 'ip2'])
    expect(back.layer[0]?.include[0]?.phase).toBe('TRAIN')
    expect(back.layer[0]?.data_param?.backend).toBe('LMDB')
    expect(back.layer[3]?.blobs[0]?.shape?.dim).toEqual([500, 800])
    expect(sameFloats(back.layer[3]?.blobs[0]?.data, net.layer[3]?.blobs[0]?.data)).toBe(true)
    expect(back.layers).toEqual([])
    expect(Buffer.from(encodeNetParameter(back)).equals(enc)).toBe(true)
  })

  it('encodes and decodes a multi-megabyte model in milliseconds', () => {
    const net = lenetLikeModel(4) // ip1 is 2000×800: about 1.7 M floats, 7 MB
    const t0 = performance.now()
    const enc = encodeNetParameter(net)
    const t1 = performance.now()
    const back = decodeNetParameter(enc)
    const t2 = performance.now()
    expect(enc.length).toBeGreaterThan(6_000_000)
    expect(back.layer[3]?.blobs[0]?.data.length).toBe(2000 * 800)
    expect(t1 - t0).toBeLessThan(200)
    expect(t2 - t1).toBeLessThan(200)
  })

  it('merges a non-repeated message field that appears twice, as protobuf does', () => {
    // layer { name: "a" convolution_param { num_output: 3 } convolution_param { bias_term: false } }
    const conv1 = '0803' // num_output 3
    const conv2 = '1000' // bias_term false
    const layer = '0a0161' + 'd206' + '02' + conv1 + 'd206' + '02' + conv2
    const net = decodeNetParameter(bytes('a206' + (layer.length / 2).toString(16).padStart(2, '0') + layer))
    expect(net.layer[0]?.convolution_param).toEqual({ num_output: 3, bias_term: false, pad: [], kernel_size: [], stride: [], dilation: [] })
  })

  it('names the innermost message and the byte offset of truncation', () => {
    const enc = encodeNetParameter(lenetLikeModel(1))
    // cut inside the packed data of the first conv1 blob
    const cut = enc.subarray(0, 200)
    let err: unknown
    try { decodeNetParameter(cut) } catch (e) { err = e }
    expect(err).toBeInstanceOf(ProtoDecodeError)
    expect((err as ProtoDecodeError).message).toMatch(/^invalid caffe\.(NetParameter|LayerParameter|BlobProto) at byte \d+: length \d+ exceeds/)
  })

  it('fails cleanly on every truncation and on random garbage', () => {
    const enc = encodeNetParameter(createMessage('NetParameter', {
      name: 'n',
      layer: [{ name: 'c', type: 'Convolution', convolution_param: { num_output: 2, kernel_size: [3] }, blobs: [{ shape: { dim: [2] }, data: [1, 2] }] }]
    }))
    let failures = 0
    for (let n = 0; n < enc.length; n++) {
      try {
        decodeNetParameter(enc.subarray(0, n))
      } catch (e) {
        expect(e).toBeInstanceOf(ProtoDecodeError)
        failures++
      }
    }
    expect(failures).toBeGreaterThan(enc.length / 2)
    let seed = 12345
    const next = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
    for (let i = 0; i < 2000; i++) {
      const junk = new Uint8Array(1 + (next() % 64)).map(() => next() & 255)
      try {
        decodeNetParameter(junk)
        decodeSolverState(junk)
      } catch (e) {
        expect(e).toBeInstanceOf(ProtoDecodeError)
      }
    }
  })

  it('rejects wrong wire types for known fields', () => {
    // field 1 (name, string) sent as varint
    expect(() => decodeNetParameter(bytes('0801'))).toThrow('invalid caffe.NetParameter at byte 0: field name (1) has wire type 0, expected 2')
  })

  it('refuses to encode values of the wrong type, naming the field', () => {
    const bad = createMessage('LayerParameter', { convolution_param: { num_output: -1 } })
    expect(() => encodeMessage('LayerParameter', bad)).toThrow(ProtoEncodeError)
    expect(() => encodeMessage('LayerParameter', bad)).toThrow('caffe.ConvolutionParameter.num_output: expected uint32, got -1')
    const badEnum = createMessage('PoolingParameter', { pool: 'MIN' as 'MAX' })
    expect(() => encodeMessage('PoolingParameter', badEnum)).toThrow('caffe.PoolingParameter.pool: expected a PoolingParameter.PoolMethod name (MAX, AVE, STOCHASTIC), got "MIN"')
  })

  it('enforces required fields both ways', () => {
    expect(() => encodeMessage('ClipParameter', { min: 1 } as never)).toThrow('caffe.ClipParameter.max: required field is not set')
    expect(() => decodeMessage('ClipParameter', bytes('0d0000803f'))).toThrow('invalid caffe.ClipParameter at byte 5: missing required field max')
  })

  it('drops unknown enum numbers like proto2 does', () => {
    // pool: 7 is not a PoolMethod
    expect(decodeMessage('PoolingParameter', bytes('0807 1002')).pool).toBeUndefined()
  })
})

describe('SolverState (.solverstate)', () => {
  it('round-trips iter, learned_net, history and current_step', () => {
    const s = createMessage('SolverState', {
      iter: 5000,
      learned_net: 'lenet_iter_5000.caffemodel',
      history: [{ shape: { dim: [20, 1, 5, 5] }, data: new Float32Array(500).fill(0.25) }, { shape: { dim: [20] }, data: new Float32Array(20) }],
      current_step: 2
    })
    const enc = encodeSolverState(s)
    // iter: 08 88 27 (5000 = 0x1388 → 0x88 0x27)
    expect(hex(enc.subarray(0, 3))).toBe('088827')
    const back = decodeSolverState(enc)
    expect(back.iter).toBe(5000)
    expect(back.learned_net).toBe('lenet_iter_5000.caffemodel')
    expect(back.current_step).toBe(2)
    expect(back.history.map((h) => h.shape?.dim)).toEqual([[20, 1, 5, 5], [20]])
    expect(back.history[0]?.data.every((v) => v === 0.25)).toBe(true)
  })
})
