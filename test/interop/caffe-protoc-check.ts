/**
 * Byte-compatibility check against Google's protoc (Debian package protobuf-compiler). Not part
 * of `npm test`, which must not need protoc; run it by hand or in a CI job that installs it:
 *
 *   apt-get install -y protobuf-compiler
 *   npx tsx test/interop/caffe-protoc-check.ts [path/to/BVLC/caffe.proto]
 *
 * It writes our schema table out as .proto source, then checks that protoc
 * - compiles it (and, given BVLC's caffe.proto, that both describe identical fields),
 * - encodes every fixture prototxt to exactly the bytes our encoder writes,
 * - decodes our binary messages (caffemodel, solverstate, binaryproto, Datum) to exactly the
 *   text our printer writes.
 * Exits non-zero on the first mismatch.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { caffeProtoSource } from './caffe-proto-source.js'
import { encodeMessage } from '../../src/engine/proto/binary.js'
import { createMessage, type MessageName, type Messages } from '../../src/engine/proto/caffe.js'
import { parseTextFormat, printTextFormat } from '../../src/engine/proto/text-format.js'

const fixtures = join(import.meta.dirname, '../../../shared/fixtures/caffe-prototxt')
const dir = mkdtempSync(join(tmpdir(), 'caffe-protoc-'))
const write = (s: string): void => { process.stdout.write(`${s}\n`) }

function protoc (args: string[], input: Uint8Array | string, cwd = dir): Buffer {
  const r = spawnSync('protoc', args, { cwd, input, maxBuffer: 1 << 28 })
  if (r.error !== undefined) throw new Error(`protoc not runnable (${r.error.message}); apt-get install -y protobuf-compiler`)
  if (r.status !== 0) throw new Error(`protoc ${args.join(' ')} failed: ${r.stderr.toString()}`)
  return r.stdout
}

function descriptorText (protoDir: string): string {
  protoc(['--descriptor_set_out=set.pb', 'caffe.proto'], '', protoDir)
  const set = readFileSync(join(protoDir, 'set.pb'))
  return protoc(['--decode=google.protobuf.FileDescriptorSet', '-I/usr/include', '/usr/include/google/protobuf/descriptor.proto'], set).toString()
}

/** Field descriptors keyed by "Message.field", ignoring declaration order. */
function fieldsOf (descriptor: string): Map<string, string> {
  const out = new Map<string, string>()
  const stack: string[] = []
  const messages: string[] = []
  let field: string[] | undefined
  for (const raw of descriptor.split('\n')) {
    const line = raw.trim()
    if (line.endsWith('{')) {
      const key = line.slice(0, -1).trim()
      stack.push(key)
      if (key === 'field') field = []
      continue
    }
    if (line === '}') {
      const key = stack.pop()
      if (key === 'field' && field !== undefined) {
        const name = field.find((l) => l.startsWith('name:')) ?? ''
        out.set(`${messages.at(-1) ?? ''}.${name}`, field.filter((l) => !l.startsWith('json_name')).sort().join('; '))
        field = undefined
      }
      if (key === 'message_type' || key === 'nested_type') messages.pop()
      continue
    }
    const top = stack.at(-1)
    if (line.startsWith('name:') && (top === 'message_type' || top === 'nested_type')) messages.push(line)
    else if (field !== undefined) field.push(line)
  }
  return out
}

function check (name: string, fn: () => void): void {
  fn()
  write(`ok  ${name}`)
}

try {
  writeFileSync(join(dir, 'caffe.proto'), caffeProtoSource())
  const ours = fieldsOf(descriptorText(dir))
  check(`protoc compiles the schema table (${ours.size} fields)`, () => assert.ok(ours.size > 400))

  const real = process.argv[2]
  if (real !== undefined) {
    const realDir = mkdtempSync(join(tmpdir(), 'caffe-real-'))
    writeFileSync(join(realDir, 'caffe.proto'), readFileSync(real))
    const theirs = fieldsOf(descriptorText(realDir))
    rmSync(realDir, { recursive: true, force: true })
    check('every field matches BVLC caffe.proto (number, label, type, default, packed)', () => assert.deepEqual(ours, theirs))
  }

  for (const f of readdirSync(fixtures)) {
    const type: MessageName = f.includes('solver') ? 'SolverParameter' : 'NetParameter'
    const text = readFileSync(join(fixtures, f), 'utf8')
    check(`protoc --encode ${f} gives our bytes`, () => {
      const theirs = protoc([`--encode=caffe.${type}`, 'caffe.proto'], text)
      const mine = encodeMessage(type, parseTextFormat(type, text))
      assert.equal(Buffer.from(mine).toString('hex'), theirs.toString('hex'))
    })
  }

  const floats = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i) * 10 ** ((i % 7) - 3)))
  const samples: Array<{ [M in MessageName]: [M, Messages[M]] }[MessageName]> = [
    ['NetParameter', createMessage('NetParameter', {
      name: 'm "q"\n\u00e9',
      layer: [
        { name: 'conv1', type: 'Convolution', param: [{ lr_mult: 1 }, { lr_mult: 2, decay_mult: 0 }], blobs: [{ shape: { dim: [4, 1, 3, 3] }, data: floats(36) }, { shape: { dim: [4] }, data: floats(4) }], convolution_param: { num_output: 4, kernel_size: [3], pad: [1] } },
        { name: 'loss', type: 'SoftmaxWithLoss', loss_weight: [0.3], include: [{ phase: 'TRAIN', min_level: -2 }] }
      ],
      layers: [{ name: 'old', type: 'INNER_PRODUCT', blobs_lr: [1, 2], weight_decay: [1, 0], blobs: [{ num: 1, channels: 1, height: 2, width: 3, data: floats(6) }] }]
    })],
    ['SolverState', createMessage('SolverState', { iter: 5000, learned_net: 'lenet_iter_5000.caffemodel', current_step: 3, history: [{ shape: { dim: [2, 3] }, data: floats(6) }] })],
    ['BlobProto', createMessage('BlobProto', { shape: { dim: [1, 3, 2, 2] }, data: floats(12), double_data: [0.1, -1e300] })],
    ['Datum', createMessage('Datum', { channels: 3, height: 1, width: 2, data: new Uint8Array([0, 1, 127, 128, 255, 34]), label: -1, encoded: false, float_data: [1.5, -2] })],
    ['SolverParameter', createMessage('SolverParameter', { base_lr: 1e-8, random_seed: -3, delta: 123456.789, stepvalue: [1, 2], solver_type: 'ADAM', weights: ['a', 'b'] })]
  ]
  for (const [type, msg] of samples) {
    check(`protoc --decode caffe.${type} prints what our printer prints`, () => {
      const theirs = protoc([`--decode=caffe.${type}`, 'caffe.proto'], encodeMessage(type, msg as never)).toString()
      assert.equal(printTextFormat(type, msg as never), theirs)
    })
  }
  write('all protoc interop checks passed')
} finally {
  rmSync(dir, { recursive: true, force: true })
}
