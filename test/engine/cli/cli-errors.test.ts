import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { runCli } from '../../../src/engine/cli.js'
import { createKernels } from '../../../src/engine/kernels/create-kernels.js'
import { createLayer } from '../../../src/engine/layers/registry.js'
import { Net } from '../../../src/engine/net.js'
import { encodeNetParameter } from '../../../src/engine/proto/binary.js'
import { parseNetPrototxt } from '../../../src/engine/proto/text-format.js'
import { Rng } from '../../../src/engine/random.js'
import { captureIo, fatalLines } from './cli-io.js'

const lenetDeploy = fileURLToPath(new URL('../../../../shared/fixtures/caffe-prototxt/lenet.prototxt', import.meta.url))
let dir: string
let model: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'et-cli-'))
  // Weights of the deploy LeNet as our engine writes them (random init is enough to test plumbing).
  const kernels = createKernels({ kind: 'ts', threads: 1 })
  const net = await Net.create(parseNetPrototxt(readFileSync(lenetDeploy, 'utf8')), { kernels, createLayer, rng: new Rng(3), state: { phase: 'TEST' } })
  model = join(dir, 'lenet.caffemodel')
  writeFileSync(model, encodeNetParameter(net.toProto()))
  kernels.close()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function run (...argv: string[]): Promise<{ code: number, err: string, out: string }> {
  const io = captureIo()
  const code = await runCli(argv, io)
  return { code, err: io.err(), out: io.out() }
}

describe('et-caffe errors: one F line with Caffe\'s tag, non-zero exit, no stack', () => {
  it('no command prints the usage and fails; help succeeds', async () => {
    const none = await run()
    expect(none.code).toBe(1)
    expect(none.err).toContain('usage: et-caffe <command> <args>')
    expect((await run('--help')).code).toBe(0)
  })

  it('an unknown action lists the known ones, like caffe.cpp', async () => {
    const r = await run('fly')
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^E\d{4} .* caffe\.cpp:78\] Available caffe actions:$/m)
    expect(r.err).toContain('caffe.cpp:81] \ttrain')
    expect(fatalLines(r.err)).toEqual(['caffe.cpp:83] Unknown action: fly'])
  })

  it('an unknown flag is reported as gflags does', async () => {
    const r = await run('train', '--solvr=x')
    expect(r.code).toBe(1)
    expect(r.err.trim()).toBe("ERROR: unknown command line flag 'solvr'")
  })

  it('train without --solver fails its CHECK', async () => {
    const r = await run('train')
    expect(r.code).toBe(1)
    expect(fatalLines(r.err)).toEqual(['caffe.cpp:181] Check failed: FLAGS_solver.size() > 0 (0 vs. 0) Need a solver definition to train.'])
  })

  it('--snapshot and --weights together are refused', async () => {
    const r = await run('train', '--solver=s.prototxt', '--snapshot=a.solverstate', '--weights=b.caffemodel')
    expect(fatalLines(r.err)[0]).toMatch(/^caffe\.cpp:182\] Check failed: .*Give a snapshot to resume training or weights to finetune but not both\.$/)
  })

  it('a missing solver file names the file', async () => {
    const r = await run('train', `--solver=${join(dir, 'nope.prototxt')}`)
    expect(r.code).toBe(1)
    expect(fatalLines(r.err)).toEqual([`io.cpp:36] Check failed: fd != -1 (-1 vs. -1) File not found: ${join(dir, 'nope.prototxt')}`])
  })

  it('a prototxt typo names the file, line and field', async () => {
    const solver = join(dir, 'typo_solver.prototxt')
    writeFileSync(solver, 'net: "x.prototxt"\nbase_lr: 0.01\nmax_itr: 100\n')
    const r = await run('train', `--solver=${solver}`)
    expect(r.code).toBe(1)
    const [line] = fatalLines(r.err)
    expect(line).toMatch(/^upgrade_proto\.cpp:1106\] Check failed: ReadProtoFromTextFile\(param_file, param\) Failed to parse SolverParameter file: /)
    expect(line).toContain(`${solver}:3:`)
    expect(line).toContain('max_itr')
  })

  it('a truncated .caffemodel is a parse failure, not a crash', async () => {
    const bad = join(dir, 'truncated.caffemodel')
    const bytes = readFileSync(model)
    writeFileSync(bad, bytes.subarray(0, Math.floor(bytes.length / 2)))
    const r = await run('test', `--model=${lenetDeploy}`, `--weights=${bad}`, '--iterations=1', '--kernels=ts')
    expect(r.code).toBe(1)
    const lines = fatalLines(r.err)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^upgrade_proto\.cpp:95\] Check failed: ReadProtoFromBinaryFile\(param_file, param\) Failed to parse NetParameter file: .*truncated\.caffemodel: /)
    expect(r.err).not.toContain('    at ')
  })

  it('weights of another shape give Caffe\'s shape-mismatch message', async () => {
    const wide = join(dir, 'wide.prototxt')
    writeFileSync(wide, readFileSync(lenetDeploy, 'utf8').replace('num_output: 500', 'num_output: 400'))
    const r = await run('test', `--model=${wide}`, `--weights=${model}`, '--iterations=1', '--kernels=ts')
    expect(r.code).toBe(1)
    expect(fatalLines(r.err)).toEqual(["net.cpp:757] Cannot copy param 0 weights from layer 'ip1'; shape mismatch.  Source param shape is 500 800 (400000); target param shape is 400 800 (320000). To learn this layer's parameters from scratch rather than copying from a saved net, rename the layer."])
  })

  it('an unsupported layer names its type and prototxt line', async () => {
    const net = join(dir, 'warp.prototxt')
    writeFileSync(net, readFileSync(lenetDeploy, 'utf8').replace('type: "ReLU"', 'type: "Warp"'))
    const r = await run('time', `--model=${net}`, '--iterations=1', '--kernels=ts')
    expect(r.code).toBe(1)
    const [line] = fatalLines(r.err)
    expect(line).toMatch(new RegExp(`^net\\.cpp:84\\] ${net.replace(/[.\\/]/g, '\\$&')}:\\d+: layer "relu1" \\(Warp\\): layer type "Warp" is not supported`))
  })

  it('classify refuses a file that is not an image', async () => {
    const fake = join(dir, 'fake.png')
    writeFileSync(fake, 'this is text, not a PNG')
    const r = await run('classify', `--model=${lenetDeploy}`, `--weights=${model}`, '--kernels=ts', fake)
    expect(r.code).toBe(1)
    expect(fatalLines(r.err)[0]).toMatch(new RegExp(`^io\\.cpp:80\\] Could not decode image ${fake.replace(/[.\\/]/g, '\\$&')}: `))
    expect(r.out).toBe('')
  })

  it('the real process exits non-zero with one F line and no JS stack trace', () => {
    const cli = fileURLToPath(new URL('../../../src/engine/cli.ts', import.meta.url))
    const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'train', `--solver=${join(dir, 'missing.prototxt')}`], { encoding: 'utf8', timeout: 60_000 })
    expect(r.status).toBe(1)
    const lines = r.stderr.split('\n').filter((l) => l !== '')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^F\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ io\.cpp:36\] Check failed: fd != -1 \(-1 vs\. -1\) File not found: /)
  })
})
