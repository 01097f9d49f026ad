import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import sharp from 'sharp'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { runCli } from '../../../src/engine/cli.js'
import { encodeBlobProto, encodeNetParameter } from '../../../src/engine/proto/binary.js'
import { createMessage } from '../../../src/engine/proto/caffe.js'
import { captureIo } from './cli-io.js'

let dir: string
const lenetDeploy = fileURLToPath(new URL('../../../../shared/fixtures/caffe-prototxt/lenet.prototxt', import.meta.url))

// Deploy net in the old input/input_dim form (upgraded to an Input layer on load), batch 2.
const TINY = `name: "tiny"
input: "data"
input_dim: 2 input_dim: 1 input_dim: 2 input_dim: 2
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
`

async function png (path: string, pixels: number[]): Promise<void> {
  await sharp(Buffer.from(pixels), { raw: { width: 2, height: 2, channels: 1 } }).png().toFile(path)
}

const softmax = (z: number[]): number[] => {
  const e = z.map((v) => Math.exp(v))
  const s = e.reduce((a, b) => a + b, 0)
  return e.map((v) => v / s)
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'et-cli-cmd-'))
  writeFileSync(join(dir, 'tiny.prototxt'), TINY)
  // Class 0 looks at the top-left pixel, class 1 at the bottom-right one, class 2 is a bias.
  const model = createMessage('NetParameter', {
    name: 'tiny',
    layer: [{
      name: 'ip',
      type: 'InnerProduct',
      blobs: [
        { shape: { dim: [3, 4] }, data: [4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0] },
        { shape: { dim: [3] }, data: [0, 0, 1] }
      ]
    }]
  })
  writeFileSync(join(dir, 'tiny.caffemodel'), encodeNetParameter(model))
  writeFileSync(join(dir, 'labels.txt'), 'zero\none\ntwo\n')
  await png(join(dir, 'a.png'), [255, 0, 0, 0])
  await png(join(dir, 'b.png'), [0, 0, 0, 255])
  await png(join(dir, 'c.png'), [0, 0, 0, 0])
  // A colour net: three 1×1 input channels, class k = input channel k (identity weights).
  writeFileSync(join(dir, 'rgb.prototxt'), `name: "rgb"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 1 dim: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }`)
  writeFileSync(join(dir, 'rgb.caffemodel'), encodeNetParameter(createMessage('NetParameter', {
    layer: [{ name: 'ip', type: 'InnerProduct', blobs: [{ shape: { dim: [3, 3] }, data: [1, 0, 0, 0, 1, 0, 0, 0, 1] }, { shape: { dim: [3] }, data: [0, 0, 0] }] }]
  })))
  writeFileSync(join(dir, 'rgb_mean.binaryproto'), encodeBlobProto(createMessage('BlobProto', { shape: { dim: [1, 3, 1, 1] }, data: [0, 0, 300] })))
  await sharp(Buffer.from([255, 0, 0]), { raw: { width: 1, height: 1, channels: 3 } }).png().toFile(join(dir, 'red.png'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('et-caffe classify', () => {
  it('prints the top-k classes of every image as JSON, batching past the net\'s batch size', async () => {
    const io = captureIo()
    const code = await runCli(['classify', `--model=${join(dir, 'tiny.prototxt')}`, `--weights=${join(dir, 'tiny.caffemodel')}`,
      `--labels=${join(dir, 'labels.txt')}`, '--top_k=2', '--scale=0.00392156862745098', '--kernels=ts',
      join(dir, 'a.png'), join(dir, 'b.png'), join(dir, 'c.png')], io)
    expect(io.err()).not.toMatch(/^F/m)
    expect(code).toBe(0)
    const out = JSON.parse(io.out()) as { results: Array<{ input: string, predictions: Array<{ label: string, index: number, probability: number }> }> }
    expect(out.results.map((r) => r.input)).toEqual([join(dir, 'a.png'), join(dir, 'b.png'), join(dir, 'c.png')])
    const pa = softmax([4, 0, 1])
    expect(out.results[0]?.predictions.map((p) => p.label)).toEqual(['zero', 'two'])
    expect(out.results[0]?.predictions[0]?.probability).toBeCloseTo(pa[0]!, 5)
    expect(out.results[0]?.predictions[1]?.probability).toBeCloseTo(pa[2]!, 5)
    expect(out.results[1]?.predictions[0]).toMatchObject({ label: 'one', index: 1 })
    expect(out.results[2]?.predictions[0]).toMatchObject({ label: 'two', index: 2 })
    expect(out.results[2]?.predictions[0]?.probability).toBeCloseTo(softmax([0, 0, 1])[2]!, 5)
    expect(out.results.every((r) => r.predictions.length === 2)).toBe(true)
  })

  it('subtracts mean_value before scaling', async () => {
    const io = captureIo()
    // With mean 255 every dark pixel of c.png becomes -1: logits (-4, -4, 1).
    const code = await runCli(['classify', `--model=${join(dir, 'tiny.prototxt')}`, `--weights=${join(dir, 'tiny.caffemodel')}`,
      '--mean_value=255', '--scale=0.00392156862745098', '--top_k=3', '--kernels=ts', join(dir, 'c.png')], io)
    expect(code).toBe(0)
    const out = JSON.parse(io.out()) as { results: Array<{ predictions: Array<{ label: string, probability: number }> }> }
    const expected = softmax([-4, -4, 1])
    expect(out.results[0]?.predictions[0]?.label).toBe('2')
    expect(out.results[0]?.predictions[0]?.probability).toBeCloseTo(expected[2]!, 5)
  })
})

describe('et-caffe classify on colour images', () => {
  const top = (out: string): string => (JSON.parse(out) as { results: Array<{ predictions: Array<{ label: string }> }> }).results[0]?.predictions[0]?.label ?? ''
  const run = async (...flags: string[]): Promise<string> => {
    const io = captureIo()
    const code = await runCli(['classify', `--model=${join(dir, 'rgb.prototxt')}`, `--weights=${join(dir, 'rgb.caffemodel')}`, '--kernels=ts', ...flags, join(dir, 'red.png')], io)
    expect(code).toBe(0)
    return io.out()
  }

  it('feeds BGR by default, like Caffe models expect, and follows --channel_swap', async () => {
    // Red lands in input channel 2 (BGR) by default, in channel 0 with the identity order.
    expect(top(await run())).toBe('2')
    expect(top(await run('--channel_swap=0,1,2'))).toBe('0')
  })

  it('subtracts a mean .binaryproto per channel', async () => {
    // Mean 300 on channel 2 turns red's 255 there into -45: channels 0 and 1 (0) now win.
    expect(top(await run(`--mean_file=${join(dir, 'rgb_mean.binaryproto')}`))).toBe('0')
  })
})

describe('et-caffe time and device_query', () => {
  it('times the deploy LeNet layer by layer with Caffe\'s lines', async () => {
    const io = captureIo()
    const code = await runCli(['time', `--model=${lenetDeploy}`, '--iterations=1', '--phase=TEST'], io)
    expect(code).toBe(0)
    const log = io.err()
    expect(log).toContain('caffe.cpp:352] Use CPU.')
    expect(log).toContain('caffe.cpp:374] *** Benchmark begins ***')
    expect(log).toMatch(/caffe\.cpp:409\] {6}conv1\tforward: [\d.e+-]+ ms\./)
    expect(log).toMatch(/caffe\.cpp:417\] Average Forward pass: [\d.e+-]+ ms\./)
    expect(log).toContain('caffe.cpp:424] *** Benchmark ends ***')
  })

  it('dispatches the dataset tools; a wrong argument count prints their usage', async () => {
    const io = captureIo()
    expect(await runCli(['convert_mnist_data', 'only-one-arg'], io)).toBe(1)
    expect(io.err()).toContain('convert_mnist_data')
    const io2 = captureIo()
    expect(await runCli(['compute_image_mean'], io2)).toBe(1)
    expect(io2.err()).toContain('compute_image_mean')
  })

  it('device_query reports the CPU and succeeds; --gpu is accepted', async () => {
    const io = captureIo()
    expect(await runCli(['device_query', '--gpu=0'], io)).toBe(0)
    expect(io.err()).toContain('Querying GPUs 0')
    expect(io.err()).toMatch(/Kernels: (ts|blas) \(/)
  })
})
