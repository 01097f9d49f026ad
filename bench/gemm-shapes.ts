/**
 * Raw GEMM throughput of the BLAS path on LeNet's forward shapes (min and median wall time of
 * many calls), to tell the products' cost from the layers' own.
 * `npx tsx bench/gemm-shapes.ts [--threads=N] [--reps=N]`
 */
import { allocFloats } from '../src/engine/blob.js'
import { BlasKernels } from '../src/engine/kernels/blas-kernels.js'

const args = new Map(process.argv.slice(2).map((a) => {
  const [k, v] = a.replace(/^--/, '').split('=')
  return [k ?? '', v ?? '']
}))
const threads = Number(args.get('threads') ?? 2)
const reps = Number(args.get('reps') ?? 200)
const k = new BlasKernels({ threads })
const shapes: Array<[string, boolean, boolean, number, number, number]> = [
  ['conv1 batched  M20 N36864 K25', false, false, 20, 36864, 25],
  ['conv1 transp   M36864 N20 K25', false, true, 36864, 20, 25],
  ['conv1 per-img  M20 N576 K25', false, false, 20, 576, 25],
  ['conv2 batched  M50 N4096 K500', false, false, 50, 4096, 500],
  ['conv2 transp   M4096 N50 K500', false, true, 4096, 50, 500],
  ['conv2 per-img  M50 N64 K500', false, false, 50, 64, 500],
  ['ip1            M64 N500 K800', false, true, 64, 500, 800],
  ['ip2            M64 N10 K500', false, true, 64, 10, 500]
]
for (const [name, ta, tb, M, N, K] of shapes) {
  const A = allocFloats(M * K).map(() => Math.random())
  const B = allocFloats(K * N).map(() => Math.random())
  const C = allocFloats(M * N)
  const times: number[] = []
  for (let r = 0; r < reps; r++) {
    const t = performance.now()
    k.gemm(ta, tb, M, N, K, 1, A, 0, B, 0, 0, C, 0)
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  const min = times[0]!
  const med = times[Math.floor(times.length / 2)]!
  process.stdout.write(`${name}: min ${min.toFixed(3)} ms (${(2 * M * N * K / min / 1e6).toFixed(1)} GFLOP/s), median ${med.toFixed(3)} ms\n`)
}
k.close()
