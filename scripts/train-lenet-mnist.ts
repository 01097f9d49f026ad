/**
 * `npm run train:mnist`: the full BVLC LeNet tutorial on the builtin engine. Converts
 * ../shared/data/mnist to LMDB with our convert_mnist_data, lays the files out as Caffe's
 * examples/mnist/ expects, runs the UNMODIFIED lenet_solver.prototxt + lenet_train_test.prototxt
 * (their relative paths resolve inside the work directory, so nothing is rewritten) for 10,000
 * iterations, and records the log plus a summary under docs/engine-runs/.
 *
 * Flags: --workdir=DIR (default: $TMPDIR/et-lenet-mnist), --kernels=auto|ts|blas,
 * --max-iter=N (a shorter run for trying things; the recorded run uses the solver's 10,000).
 */
import { spawn } from 'node:child_process'
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const shared = resolve(repo, '..', 'shared')
const args = process.argv.slice(2)
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const workdir = resolve(flag('workdir') ?? join(tmpdir(), 'et-lenet-mnist'))
const kernels = flag('kernels') ?? 'auto'
const maxIter = flag('max-iter')
const out = (s: string): void => { process.stdout.write(`${s}\n`) }

/** Runs the engine CLI as its own process (built code when present, else the TS source through tsx). */
function cliCommand (): { cmd: string, argv: string[] } {
  const built = join(repo, 'dist', 'src', 'engine', 'cli.js')
  if (existsSync(built) && process.env.ET_USE_SOURCE === undefined) return { cmd: process.execPath, argv: [built] }
  // The child runs in the work directory, where a bare `tsx` would not resolve: pass its URL.
  return { cmd: process.execPath, argv: ['--import', import.meta.resolve('tsx'), join(repo, 'src', 'engine', 'cli.ts')] }
}

interface RunResult { code: number, seconds: number, peakRssMiB: number, meanLoad: number }

/** Spawns the CLI, tees stderr into `logFile`, and samples the child's peak RSS (VmHWM) while it runs. */
async function runCli (argv: string[], logFile: string | undefined, echo: (line: string) => boolean): Promise<RunResult> {
  const { cmd, argv: pre } = cliCommand()
  const start = performance.now()
  const child = spawn(cmd, [...pre, ...argv], { cwd: workdir, stdio: ['ignore', 'inherit', 'pipe'] })
  const log = logFile === undefined ? undefined : createWriteStream(logFile)
  let peakKiB = 0
  // The machine may be shared: the load average while we ran says how much of it we had.
  const loads: number[] = []
  const sample = (): void => {
    loads.push(loadavg()[0] ?? 0)
    try {
      const status = readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8')
      const m = /VmHWM:\s+(\d+) kB/.exec(status)
      if (m?.[1] !== undefined) peakKiB = Math.max(peakKiB, Number(m[1]))
    } catch {
      // The process may already have exited between two samples.
    }
  }
  const timer = setInterval(sample, 250)
  let pending = ''
  child.stderr.on('data', (chunk: Buffer) => {
    log?.write(chunk)
    pending += chunk.toString('utf8')
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) if (echo(line)) out(line)
  })
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)))
  clearInterval(timer)
  await new Promise<void>((resolve) => { if (log === undefined) resolve(); else log.end(() => resolve()) })
  const meanLoad = loads.length === 0 ? 0 : loads.reduce((a, b) => a + b, 0) / loads.length
  return { code, seconds: (performance.now() - start) / 1000, peakRssMiB: peakKiB / 1024, meanLoad }
}

async function main (): Promise<void> {
  const mnistDir = join(workdir, 'examples', 'mnist')
  const rawDir = join(workdir, 'raw')
  mkdirSync(mnistDir, { recursive: true })
  mkdirSync(rawDir, { recursive: true })
  for (const name of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
    const target = join(rawDir, name)
    if (!existsSync(target)) writeFileSync(target, gunzipSync(readFileSync(join(shared, 'data', 'mnist', `${name}.gz`))))
  }
  for (const [images, labels, db] of [
    ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 'mnist_train_lmdb'],
    ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', 'mnist_test_lmdb']
  ] as const) {
    if (existsSync(join(mnistDir, db))) continue
    out(`converting ${images} → examples/mnist/${db}`)
    const r = await runCli(['convert_mnist_data', join(rawDir, images), join(rawDir, labels), join('examples', 'mnist', db), '--backend=lmdb'], undefined, () => false)
    if (r.code !== 0) throw new Error(`convert_mnist_data failed with exit code ${r.code}`)
  }
  for (const f of ['lenet_solver.prototxt', 'lenet_train_test.prototxt']) {
    copyFileSync(join(shared, 'fixtures', 'caffe-prototxt', f), join(mnistDir, f))
  }
  let solver = join('examples', 'mnist', 'lenet_solver.prototxt')
  if (maxIter !== undefined) {
    // Only for trial runs: a copy of the solver with a different max_iter; the recorded run never uses this.
    const text = readFileSync(join(mnistDir, 'lenet_solver.prototxt'), 'utf8').replace(/max_iter:\s*\d+/, `max_iter: ${maxIter}`)
    solver = join('examples', 'mnist', 'lenet_solver_short.prototxt')
    writeFileSync(join(workdir, solver), text)
  }

  const runs = join(repo, 'docs', 'engine-runs')
  mkdirSync(runs, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)
  const logName = `lenet-mnist-${stamp}.log`
  const logFile = join(runs, logName)
  out(`training in ${workdir} (kernels ${kernels}); log → docs/engine-runs/${logName}`)
  const r = await runCli(['train', `--solver=${solver}`, `--kernels=${kernels}`], logFile,
    (line) => /Test net output|Iteration \d+ \(|Optimization Done|Snapshotting to|Kernels:|F\d{4} /.test(line))
  const log = readFileSync(logFile, 'utf8')
  const accuracies = [...log.matchAll(/Test net output #\d+: accuracy = ([\d.e+-]+)/g)].map((m) => Number(m[1]))
  const losses = [...log.matchAll(/Test net output #\d+: loss = ([\d.e+-]+)/g)].map((m) => Number(m[1]))
  const rates = [...log.matchAll(/Iteration \d+ \(([\d.e+-]+) iter\/s/g)].map((m) => Number(m[1])).filter((v) => v > 0)
  const kernelLine = /Kernels: (.*)/.exec(log)?.[1] ?? kernels
  const accuracy = accuracies[accuracies.length - 1]
  const testLoss = losses[losses.length - 1]
  const meanRate = rates.length === 0 ? 0 : rates.reduce((a, b) => a + b, 0) / rates.length
  const bestRate = Math.max(0, ...rates)
  const minutes = Math.floor(r.seconds / 60)
  const wall = `${minutes}m ${(r.seconds - minutes * 60).toFixed(1)}s`
  const summary = [
    `# LeNet on MNIST with the builtin engine (${stamp})`,
    '',
    'BVLC `lenet_solver.prototxt` + `lenet_train_test.prototxt`, unmodified (run from a work directory laid out',
    `as Caffe's examples/mnist/), data converted from ../shared/data/mnist with our convert_mnist_data.${maxIter === undefined ? '' : ` **Trial run: max_iter ${maxIter}.**`}`,
    '',
    '| figure | value | reference |',
    '| --- | --- | --- |',
    `| exit code | ${r.code} | 0 |`,
    `| final test accuracy | ${accuracy ?? 'n/a'} | ≥ 0.989 (Caffe tutorial 0.9897; cpu.err 0.9906) |`,
    `| final test loss | ${testLoss ?? 'n/a'} | cpu.err 0.0287233 |`,
    `| wall time (10k iterations, tests included) | ${wall} | real Caffe CPU 6m 42.9s |`,
    `| training speed (mean of display lines) | ${meanRate.toFixed(1)} iter/s = ${(meanRate * 64).toFixed(0)} img/s | Caffe CPU 29 iter/s ≈ 1,870 img/s |`,
    `| fastest 100-iteration stretch | ${bestRate.toFixed(1)} iter/s = ${(bestRate * 64).toFixed(0)} img/s | |`,
    `| peak memory (VmHWM) | ${r.peakRssMiB.toFixed(0)} MiB | < 1 GiB |`,
    `| machine load during the run (mean 1-min load average, ${availableParallelism()} cores) | ${r.meanLoad.toFixed(1)} | |`,
    `| kernels | ${kernelLine} | |`,
    '',
    `Full log: [${logName}](${logName}).`,
    ''
  ].join('\n')
  writeFileSync(join(runs, `lenet-mnist-${stamp}.md`), summary)
  out(summary)
  if (r.code !== 0) process.exitCode = r.code
}

await main()
