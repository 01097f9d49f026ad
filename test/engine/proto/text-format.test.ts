import { describe, it, expect } from 'vitest'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  parseTextFormat, printTextFormat, parseNetPrototxt, parseSolverPrototxt, lineOf, positionOf, formatFloat, formatDouble, formatG
} from '../../../src/engine/proto/text-format.js'
import { PrototxtError } from '../../../src/engine/proto/errors.js'
import { encodeNetParameter, decodeNetParameter } from '../../../src/engine/proto/binary.js'

const fixtures = join(import.meta.dirname, '../../../../shared/fixtures')
const prototxt = (name: string): string => readFileSync(join(fixtures, 'caffe-prototxt', name), 'utf8')

function errorOf (fn: () => unknown): PrototxtError {
  try {
    fn()
  } catch (e) {
    if (e instanceof PrototxtError) return e
    throw e
  }
  throw new Error('expected a PrototxtError')
}

describe('BVLC example prototxt files', () => {
  it('parses every fixture', () => {
    const files = readdirSync(join(fixtures, 'caffe-prototxt')).filter((f) => f.endsWith('.prototxt'))
    expect(files.length).toBe(6)
    for (const f of files) {
      const msg = f.includes('solver') ? parseSolverPrototxt(prototxt(f), f) : parseNetPrototxt(prototxt(f), f)
      expect(msg).toBeTypeOf('object')
    }
  })

  it('reads the LeNet solver values', () => {
    const s = parseSolverPrototxt(prototxt('lenet_solver.prototxt'))
    expect(s.net).toBe('examples/mnist/lenet_train_test.prototxt')
    expect(s.test_iter).toEqual([100])
    expect(s.test_interval).toBe(500)
    expect(s.base_lr).toBe(Math.fround(0.01))
    expect(s.momentum).toBe(Math.fround(0.9))
    expect(s.weight_decay).toBe(Math.fround(0.0005))
    expect(s.lr_policy).toBe('inv')
    expect(s.gamma).toBe(Math.fround(0.0001))
    expect(s.power).toBe(0.75)
    expect(s.max_iter).toBe(10000)
    expect(s.snapshot).toBe(5000)
    expect(s.snapshot_prefix).toBe('examples/mnist/lenet')
    expect(s.solver_mode).toBe('GPU')
    expect(s.type).toBeUndefined()
  })

  it('reads the LeNet and CIFAR-10 nets', () => {
    const lenet = parseNetPrototxt(prototxt('lenet_train_test.prototxt'))
    expect(lenet.name).toBe('LeNet')
    expect(lenet.layer.map((l) => l.type)).toEqual(['Data', 'Data', 'Convolution', 'Pooling', 'Convolution', 'Pooling', 'InnerProduct', 'ReLU', 'InnerProduct', 'Accuracy', 'SoftmaxWithLoss'])
    const train = lenet.layer[0]
    expect(train?.include).toEqual([{ phase: 'TRAIN', stage: [], not_stage: [] }])
    expect(train?.transform_param?.scale).toBe(0.00390625)
    expect(train?.data_param).toEqual({ source: 'examples/mnist/mnist_train_lmdb', batch_size: 64, backend: 'LMDB' })
    expect(lenet.layer[2]?.param.map((p) => p.lr_mult)).toEqual([1, 2])
    expect(lenet.layer[2]?.convolution_param?.kernel_size).toEqual([5])
    expect(lenet.layer[3]?.pooling_param?.pool).toBe('MAX')
    const cifar = parseNetPrototxt(prototxt('cifar10_quick_train_test.prototxt'))
    expect(cifar.layer[0]?.transform_param?.mean_file).toBe('examples/cifar10/mean.binaryproto')
    expect(cifar.layer.filter((l) => l.pooling_param?.pool === 'AVE').map((l) => l.name)).toEqual(['pool2', 'pool3'])
    const deploy = parseNetPrototxt(prototxt('cifar10_quick.prototxt'))
    expect(deploy.layer[0]?.input_param?.shape[0]?.dim).toEqual([1, 3, 32, 32])
    // The fixture README mentions snapshot_format HDF5, but the stock file does not set it.
    const cifarSolver = parseSolverPrototxt(prototxt('cifar10_quick_solver.prototxt'))
    expect(cifarSolver.snapshot_format).toBeUndefined()
    expect(cifarSolver.max_iter).toBe(4000)
    expect(cifarSolver.lr_policy).toBe('fixed')
  })

  it('prints the train/test nets byte for byte as they are written (they are in DebugString form)', () => {
    for (const f of ['lenet_train_test.prototxt', 'cifar10_quick_train_test.prototxt']) {
      expect(printTextFormat('NetParameter', parseNetPrototxt(prototxt(f)))).toBe(prototxt(f))
    }
  })

  it('round-trips every fixture through the printer and through binary', () => {
    for (const f of readdirSync(join(fixtures, 'caffe-prototxt'))) {
      if (f.includes('solver')) {
        const s = parseSolverPrototxt(prototxt(f))
        expect(parseSolverPrototxt(printTextFormat('SolverParameter', s))).toEqual(s)
      } else {
        const n = parseNetPrototxt(prototxt(f))
        expect(parseNetPrototxt(printTextFormat('NetParameter', n))).toEqual(n)
        expect(decodeNetParameter(encodeNetParameter(n))).toEqual(n)
      }
    }
  })
})

/** The text blocks Caffe printed with DebugString() after "Initializing solver/net from parameters:". */
function dumpedBlocks (file: string): Array<{ kind: 'SolverParameter' | 'NetParameter', text: string, line: number }> {
  const lines = readFileSync(join(fixtures, 'caffe-logs', file), 'utf8').split(/\r?\n/)
  const out: Array<{ kind: 'SolverParameter' | 'NetParameter', text: string, line: number }> = []
  for (let i = 0; i < lines.length; i++) {
    const m = /Initializing (solver|net) from parameters: ?$/.exec(lines[i] ?? '')
    if (m === null) continue
    const block: string[] = []
    for (let j = i + 1; j < lines.length && !/^[IWEF]\d{4} /.test(lines[j] ?? ''); j++) block.push(lines[j] ?? '')
    out.push({ kind: m[1] === 'solver' ? 'SolverParameter' : 'NetParameter', text: `${block.join('\n')}\n`, line: i + 1 })
  }
  return out
}

describe('real Caffe DebugString output found in the fixture logs', () => {
  it('parses and reprints every complete solver and net dump identically', () => {
    let checked = 0
    for (const f of ['cpu.err', 'complete-lenet_train.log', 'interrupted-lenet_train.log', 'failed-lenet_train.log', 'caffe_train_HingeLoss.log']) {
      for (const b of dumpedBlocks(f)) {
        const printed = printTextFormat(b.kind, parseTextFormat(b.kind, b.text) as never)
        expect(printed, `${f}:${b.line}`).toBe(b.text)
        checked++
      }
    }
    expect(checked).toBe(12)
  })

  it('rejects the dumps that are not valid caffe.proto text, naming the problem', () => {
    // glog cuts messages at 30000 bytes, so the GoogLeNet dumps end mid-field.
    const google = dumpedBlocks('caffe.jin-PC.jin.log.INFO.20150701-205606.29064')
    expect(google.map((b) => b.kind)).toEqual(['SolverParameter', 'NetParameter', 'NetParameter'])
    expect(() => parseTextFormat('SolverParameter', google[0]?.text ?? '')).not.toThrow()
    expect(errorOf(() => parseNetPrototxt(google[1]?.text ?? '')).problem).toBe('unexpected end of input: missing "}" to close "convolution_param" opened at line 1812')
    expect(errorOf(() => parseNetPrototxt(google[2]?.text ?? '')).message).toBe('1819:5: unknown field "de" in caffe.ParamSpec')
    // The 2015 fork behind cifar-lr1.log added transform_param fields that BVLC Caffe does not have.
    const cifar = dumpedBlocks('cifar-lr1.log')
    expect(errorOf(() => parseNetPrototxt(cifar[1]?.text ?? '', 'dump')).message).toBe('dump:16:5: unknown field "contrast_adjustment" in caffe.TransformationParameter')
  })
})

describe('text-format syntax', () => {
  it('accepts comments, optional colons, <> and separators', () => {
    const n = parseNetPrototxt(`
      # a comment
      name: 'x' ; # trailing
      layer: { name: "a", type: "ReLU" bottom: "in" top: "in" }
      layer < name: "b"; type: "Pooling" pooling_param { pool: AVE, kernel_size: 3 } >,
      input_dim: [1, 3, 0x20, 040]
    `)
    expect(n.name).toBe('x')
    expect(n.layer.map((l) => [l.name, l.type])).toEqual([['a', 'ReLU'], ['b', 'Pooling']])
    expect(n.layer[1]?.pooling_param).toEqual({ pool: 'AVE', kernel_size: 3 })
    expect(n.input_dim).toEqual([1, 3, 32, 32])
  })

  it('decodes string escapes and concatenates adjacent strings', () => {
    const n = parseNetPrototxt(String.raw`name: "a\"b\\c\n\t\x41\101\u00e9" 'd' "é\'"`)
    expect(n.name).toBe('a"b\\c\n\tAAéd' + "é'")
    expect(parseNetPrototxt(printTextFormat('NetParameter', n)).name).toBe(n.name)
    expect(printTextFormat('NetParameter', n)).toBe(String.raw`name: "a\"b\\c\n\tAA\303\251d\303\251\'"` + '\n')
  })

  it('reads numbers in every spelling', () => {
    const s = parseSolverPrototxt('base_lr: 1e-4 gamma: .5 power: 2.f momentum: -inf weight_decay: nan delta: 3 clip_gradients: -1.5E2 random_seed: -7 device_id: 0x1F')
    expect(s.base_lr).toBe(Math.fround(1e-4))
    expect(s.gamma).toBe(0.5)
    expect(s.power).toBe(2)
    expect(s.momentum).toBe(-Infinity)
    expect(s.weight_decay).toBeNaN()
    expect(s.delta).toBe(3)
    expect(s.clip_gradients).toBe(-150)
    expect(s.random_seed).toBe(-7)
    expect(s.device_id).toBe(31)
    expect(parseSolverPrototxt('momentum: Infinity').momentum).toBe(Infinity)
    expect(parseSolverPrototxt('max_iter: 010').max_iter).toBe(8)
  })

  it('reads bools and enums in every spelling', () => {
    for (const [text, v] of [['true', true], ['True', true], ['t', true], ['1', true], ['false', false], ['False', false], ['f', false], ['0', false]] as const) {
      expect(parseSolverPrototxt(`test_initialization: ${text}`).test_initialization).toBe(v)
    }
    expect(parseSolverPrototxt('solver_mode: 0').solver_mode).toBe('CPU')
    expect(parseNetPrototxt('layers { type: 4 }').layers[0]?.type).toBe('CONVOLUTION')
  })

  it('records where each message and field was written', () => {
    const text = prototxt('lenet_train_test.prototxt')
    const n = parseNetPrototxt(text, 'lenet_train_test.prototxt')
    const conv1 = n.layer.find((l) => l.name === 'conv1')
    expect(conv1).toBeDefined()
    const expectedLine = text.split('\n').findIndex((l) => l.includes('name: "conv1"')) // line before it opens the layer
    expect(lineOf(conv1 ?? {})).toBe(expectedLine)
    expect(positionOf(conv1 ?? {}, 'convolution_param')).toEqual({ file: 'lenet_train_test.prototxt', line: expectedLine + 11, column: 3 })
    expect(positionOf(n)).toEqual({ file: 'lenet_train_test.prototxt', line: 1, column: 1 })
    expect(lineOf({})).toBeUndefined()
  })
})

describe('text-format errors', () => {
  const cases: Array<[string, string]> = [
    ['layer {\n  name: "a"\n    bogus: 1\n}', 'lenet.prototxt:3:5: unknown field "bogus" in caffe.LayerParameter'],
    ['name "x"', 'lenet.prototxt:1:6: expected ":" after field "name" in caffe.NetParameter, got a string'],
    ['name: "a" name: "b"', 'lenet.prototxt:1:11: non-repeated field "name" in caffe.NetParameter is specified more than once'],
    ['layer {\n name: "a"\n', 'lenet.prototxt:3:1: unexpected end of input: missing "}" to close "layer" opened at line 1'],
    ['layer { pooling_param { pool: MIN } }', 'lenet.prototxt:1:31: unknown value "MIN" for enum caffe.PoolingParameter.PoolMethod of field "pool" in caffe.PoolingParameter (expected one of MAX, AVE, STOCHASTIC)'],
    ['layer { convolution_param { num_output: -1 } }', 'lenet.prototxt:1:42: integer -1 is out of range for field "num_output" in caffe.ConvolutionParameter (uint32)'],
    ['layer { convolution_param { num_output: 1.5 } }', 'lenet.prototxt:1:41: expected an integer for field "num_output" in caffe.ConvolutionParameter, got "1.5"'],
    ['input_dim: 4294967296', 'lenet.prototxt:1:12: integer 4294967296 is out of range for field "input_dim" in caffe.NetParameter (int32)'],
    ['name: "abc', 'lenet.prototxt:1:7: unterminated string'],
    ['name: "a\nb"', 'lenet.prototxt:1:7: string literals cannot cross line boundaries'],
    ['name: "\\q"', 'lenet.prototxt:1:8: invalid escape sequence "\\q"'],
    ['layer { name: 1 }', 'lenet.prototxt:1:15: expected a string for field "name" in caffe.LayerParameter, got "1"'],
    ['force_backward: yes', 'lenet.prototxt:1:17: expected true or false for field "force_backward" in caffe.NetParameter, got "yes"'],
    ['name: "a" }', 'lenet.prototxt:1:11: expected a field name in caffe.NetParameter, got "}"'],
    ['layer 5', 'lenet.prototxt:1:7: expected "{" to start message field "layer" in caffe.NetParameter, got "5"'],
    ['name: [ "a" ]', 'lenet.prototxt:1:7: field "name" in caffe.NetParameter is not repeated and cannot take a list'],
    ['input_dim: 12ab', 'lenet.prototxt:1:12: malformed number "12a"'],
    ['input_dim: 09', 'lenet.prototxt:1:12: malformed integer "09" for field "input_dim" in caffe.NetParameter'],
    ['[ext] { }', 'lenet.prototxt:1:1: extensions and Any fields are not supported in caffe.NetParameter']
  ]
  it.each(cases)('%j → %s', (text, message) => {
    const err = errorOf(() => parseNetPrototxt(text, 'lenet.prototxt'))
    expect(err.message).toBe(message)
    expect(err.code).toBe('ET_PROTOTXT')
    expect(err.file).toBe('lenet.prototxt')
  })

  it('omits the file name when none is given', () => {
    expect(errorOf(() => parseSolverPrototxt('base_lr: x')).message).toBe('1:10: expected a number for field "base_lr" in caffe.SolverParameter, got "x"')
  })
})

describe('number printing (protobuf SimpleFtoa/SimpleDtoa)', () => {
  it('formats like printf %g', () => {
    expect(formatG(0.0001, 6)).toBe('0.0001')
    expect(formatG(0.00001, 6)).toBe('1e-05')
    expect(formatG(1234567, 6)).toBe('1.23457e+06')
    expect(formatG(100000, 6)).toBe('100000')
    expect(formatG(-2.5, 6)).toBe('-2.5')
  })

  it('prints floats with 6 digits unless 9 are needed to read back the same float', () => {
    expect(formatFloat(Math.fround(0.1))).toBe('0.1')
    expect(formatFloat(Math.fround(1e-8))).toBe('1e-08')
    expect(formatFloat(0.00390625)).toBe('0.00390625')
    expect(formatFloat(Math.fround(1.2345678))).toBe('1.23456776')
    expect(formatFloat(1234567)).toBe('1234567')
    expect(formatFloat(Infinity)).toBe('inf')
    expect(formatFloat(-Infinity)).toBe('-inf')
    expect(formatFloat(NaN)).toBe('nan')
    expect(formatDouble(0.1)).toBe('0.1')
    expect(formatDouble(1 / 3)).toBe('0.33333333333333331')
  })

  it('prints every float so that it parses back to the same bits', () => {
    const buf = new Float32Array(1)
    const bits = new Uint32Array(buf.buffer)
    let seed = 7
    for (let i = 0; i < 5000; i++) {
      seed = (seed * 1664525 + 1013904223) >>> 0
      bits[0] = seed
      const x = buf[0] ?? 0
      if (!Number.isFinite(x)) continue
      const s = parseSolverPrototxt(`base_lr: ${formatFloat(x)}`)
      expect(Object.is(s.base_lr, x), `${x}`).toBe(true)
    }
  })
})
