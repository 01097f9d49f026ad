/**
 * Where a LeNet forward (deploy net, TEST phase) or training step spends its time, layer by
 * layer, on one kernel path: wall time min and median over many batches (the min is the figure
 * least disturbed by other processes on a shared machine), and mean CPU time of all the
 * process's threads (what the layer costs whatever the load).
 * `npx tsx bench/engine-profile.ts [--path=blas|ts] [--reps=N] [--batch=N] [--train] [--conv=auto|batched|rows]`
 */
import { createKernels } from '../src/engine/kernels/create-kernels.js'
import { ConvolutionLayer } from '../src/engine/layers/convolution-layer.js'
import { createLayer } from '../src/engine/layers/registry.js'
import { Net } from '../src/engine/net.js'
import { parseNetPrototxt } from '../src/engine/proto/text-format.js'
import { Rng } from '../src/engine/random.js'
import { lenetDeployNet, lenetTrainNet } from './lenet-nets.js'

const args = new Map(process.argv.slice(2).map((a) => {
  const [k, v] = a.replace(/^--/, '').split('=')
  return [k ?? '', v ?? '']
}))
const path = (args.get('path') ?? 'blas') as 'blas' | 'ts'
const batch = Number(args.get('batch') ?? 64)
const train = args.has('train')
const reps = Number(args.get('reps') ?? (path === 'ts' ? 20 : 300))
const out = (s: string): void => { process.stdout.write(`${s}\n`) }
const conv = args.get('conv') ?? 'auto'
if (conv !== 'auto' && conv !== 'batched' && conv !== 'rows') throw new Error(`--conv=${conv}: use auto, batched or rows`)
ConvolutionLayer.forwardMethod = conv

const kernels = createKernels({ kind: path, threads: args.has('threads') ? Number(args.get('threads')) : undefined })
const text = train ? lenetTrainNet(batch) : lenetDeployNet(batch)
const net = await Net.create(parseNetPrototxt(text), { kernels, createLayer, rng: new Rng(1), state: { phase: train ? 'TRAIN' : 'TEST' } })
const rng = new Rng(7)
const data = net.blobByName('data')
const label = net.blobByName('label')
if (data !== undefined) for (let i = 0; i < data.count; i++) data.data[i] = rng.uniform()
if (label !== undefined) for (let i = 0; i < label.count; i++) label.data[i] = rng.int(10)

const names = net.layerNames
const fwd = names.map(() => [] as number[])
const bwd = names.map(() => [] as number[])
const fwdCpu = new Float64Array(names.length)
const bwdCpu = new Float64Array(names.length)
const total: number[] = []
/** Process CPU time in ms, all threads. */
const cpu = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const cpu0 = cpu()
for (let r = -5; r < reps; r++) {
  const t0 = performance.now()
  for (let i = 0; i < names.length; i++) {
    const c = cpu()
    const t = performance.now()
    await net.forwardLayer(i)
    if (r >= 0) {
      fwd[i]!.push(performance.now() - t)
      fwdCpu[i]! += cpu() - c
    }
  }
  if (train) {
    for (let i = names.length - 1; i >= 0; i--) {
      const c = cpu()
      const t = performance.now()
      net.backwardLayer(i)
      if (r >= 0) {
        bwd[i]!.push(performance.now() - t)
        bwdCpu[i]! += cpu() - c
      }
    }
    net.clearParamDiffs()
  }
  if (r >= 0) total.push(performance.now() - t0)
}
const cpuPerRep = (cpu() - cpu0) / (reps + 5)
const stat = (a: number[]): [number, number] => {
  const s = [...a].sort((x, y) => x - y)
  return [s[0] ?? 0, s[Math.floor(s.length / 2)] ?? 0]
}
out(`${kernels.description}; batch ${batch}, ${train ? 'training step' : 'inference forward'}, convolution ${conv}, ${reps} reps; wall ms min / median, cpu ms mean`)
for (let i = 0; i < names.length; i++) {
  const [fMin, fMed] = stat(fwd[i]!)
  const b = train ? `   backward ${stat(bwd[i]!).map((x) => x.toFixed(3)).join(' / ')}, cpu ${(bwdCpu[i]! / reps).toFixed(3)}` : ''
  out(`  ${names[i]!.padEnd(12)} forward ${fMin.toFixed(3)} / ${fMed.toFixed(3)}, cpu ${(fwdCpu[i]! / reps).toFixed(3)}${b}`)
}
const sums = fwd.map((f) => stat(f)[0]).reduce((a, b) => a + b, 0) + (train ? bwd.map((f) => stat(f)[0]).reduce((a, b) => a + b, 0) : 0)
const [tMin, tMed] = stat(total)
out(`  total ${tMin.toFixed(3)} / ${tMed.toFixed(3)} ms (${(batch * 1000 / tMin).toFixed(0)} / ${(batch * 1000 / tMed).toFixed(0)} img/s); sum of per-layer minima ${sums.toFixed(3)} ms; cpu ${cpuPerRep.toFixed(3)} ms`)
await net.close()
kernels.close()
