import { describe, it, expect } from 'vitest'
import { CAFFE_SCHEMA, CAFFE_ENUMS, messageSpec, defaultOf, createMessage, type MessageName } from '../../../src/engine/proto/caffe.js'

const names = Object.keys(CAFFE_SCHEMA) as MessageName[]

describe('caffe schema table', () => {
  it('resolves every message, with unique field numbers and names', () => {
    for (const name of names) {
      const spec = messageSpec(name)
      expect(spec.byNumber.size, name).toBe(spec.fields.length)
      expect(spec.fields.map((f) => f.no)).toEqual([...spec.fields.map((f) => f.no)].sort((a, b) => a - b))
    }
  })

  it('has enum defaults that are members of their enum and scalar defaults of the right type', () => {
    for (const name of names) {
      for (const f of messageSpec(name).fields) {
        if (f.default === undefined) continue
        expect(f.label, `${name}.${f.name}`).toBe('optional')
        if (f.kind === 'enum') expect(Object.keys(f.enumValues ?? {}), `${name}.${f.name}`).toContain(f.default)
        else if (f.type === 'string') expect(typeof f.default).toBe('string')
        else if (f.type === 'bool') expect(typeof f.default).toBe('boolean')
        else expect(typeof f.default, `${name}.${f.name}`).toBe('number')
      }
    }
  })

  it('has the field numbers binary files depend on', () => {
    const no = (m: MessageName, f: string): number | undefined => messageSpec(m).byName.get(f)?.no
    expect(no('NetParameter', 'layer')).toBe(100)
    expect(no('NetParameter', 'layers')).toBe(2)
    expect(no('LayerParameter', 'blobs')).toBe(7)
    expect(no('BlobProto', 'shape')).toBe(7)
    expect(no('BlobProto', 'data')).toBe(5)
    expect(no('BlobProto', 'double_data')).toBe(8)
    expect(no('Datum', 'float_data')).toBe(6)
    expect(no('SolverState', 'history')).toBe(3)
    expect(no('V1LayerParameter', 'blobs_lr')).toBe(7)
    expect(no('V1LayerParameter', 'param')).toBe(1001)
    expect(messageSpec('BlobProto').byName.get('data')?.packed).toBe(true)
    expect(messageSpec('Datum').byName.get('float_data')?.packed).toBe(false)
    expect(CAFFE_ENUMS['V1LayerParameter.LayerType'].CONVOLUTION).toBe(4)
  })

  it('gives proto2 defaults, explicit or zero', () => {
    expect(defaultOf('PoolingParameter', 'pool')).toBe('MAX')
    expect(defaultOf('PoolingParameter', 'stride')).toBe(1)
    expect(defaultOf('NetState', 'phase')).toBe('TEST')
    expect(defaultOf('NetStateRule', 'phase')).toBe('TRAIN')
    expect(defaultOf('SolverParameter', 'random_seed')).toBe(-1)
    expect(defaultOf('SolverParameter', 'type')).toBe('SGD')
    expect(defaultOf('SolverParameter', 'delta')).toBe(1e-8)
    expect(defaultOf('SolverParameter', 'max_iter')).toBe(0)
    expect(defaultOf('LayerParameter', 'name')).toBe('')
    expect(defaultOf('HingeLossParameter', 'norm')).toBe('L1')
    expect(defaultOf('ConvolutionParameter', 'kernel_size')).toEqual([])
    expect(defaultOf('BlobProto', 'data')).toBeInstanceOf(Float32Array)
    expect(() => defaultOf('PoolingParameter', 'bogus' as 'pool')).toThrow('no field bogus')
  })

  it('creates messages with every repeated field present', () => {
    const b = createMessage('BlobProto', { shape: { dim: [2, 3] }, data: [1, 2, 3, 4, 5, 6] })
    expect(b.data).toBeInstanceOf(Float32Array)
    expect(b.diff.length).toBe(0)
    expect(b.shape?.dim).toEqual([2, 3])
    const l = createMessage('LayerParameter', { name: 'ip', param: [{ lr_mult: 2 }] })
    expect(l.bottom).toEqual([])
    expect(l.param[0]?.lr_mult).toBe(2)
    expect(l.param[0]?.name).toBeUndefined()
    expect(() => createMessage('LayerParameter', { bogus: 1 } as never)).toThrow('caffe.LayerParameter has no field bogus')
  })
})
