/**
 * `npm run bench:archive`: throughput of the datafile pipeline's pure data handling on MNIST.
 * Builds a 60,000-image `<digit>/<n>.png` tar.gz from ../shared/data/mnist (PNG-encoded here),
 * then times inspectArchive, splitArchive (80/20, both outputs written to files) and
 * extractArchive of the training side, reading from disk as a job would read a blob. Two
 * baselines put the figures in context on a shared machine: a bare streaming gunzip of the
 * same file, and creating the same number of small files with a bare writeFileSync loop.
 *
 * Flags: --data=<dir with train-*-idx*-ubyte.gz> (default ../shared/data/mnist), --keep.
 */
import { createReadStream, createWriteStream, mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib'
import { extractArchive } from '../src/jobs/archive/extract-archive.js'
import { inspectArchive } from '../src/jobs/archive/inspect-archive.js'
import { splitArchive } from '../src/jobs/archive/split-archive.js'
import { pngFromRaw, tarBytes } from '../test/jobs/archive/archive-fixtures.js'
import type { TarSpec } from '../test/jobs/archive/archive-fixtures.js'

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string | undefined]))
const dataDir = args.get('data') ?? path.resolve(import.meta.dirname, '../../shared/data/mnist')
const out = (line: string): void => { process.stdout.write(line + '\n') }
const MB = 1e6

async function buildArchive (): Promise<Buffer> {
  const images = gunzipSync(await readFile(path.join(dataDir, 'train-images-idx3-ubyte.gz')))
  const labels = gunzipSync(await readFile(path.join(dataDir, 'train-labels-idx1-ubyte.gz')))
  const n = images.readUInt32BE(4)
  const rows = images.readUInt32BE(8)
  const cols = images.readUInt32BE(12)
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(cols, 0)
  ihdr.writeUInt32BE(rows, 4)
  ihdr[8] = 8
  const specs: TarSpec[] = []
  for (let i = 0; i < n; i++) {
    const raw = Buffer.alloc((cols + 1) * rows)
    for (let y = 0; y < rows; y++) images.copy(raw, y * (cols + 1) + 1, 16 + i * rows * cols + y * cols, 16 + i * rows * cols + (y + 1) * cols)
    specs.push({ path: `${labels[8 + i] as number}/${String(i).padStart(5, '0')}.png`, body: pngFromRaw(ihdr, raw) })
  }
  return gzipSync(tarBytes(specs))
}

async function timed<T> (fn: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint()
  const r = await fn()
  return [r, Number(process.hrtime.bigint() - t) / 1e9]
}

const work = await mkdtemp(path.join(tmpdir(), 'et-bench-archive-'))
try {
  const [gz, buildS] = await timed(buildArchive)
  const file = path.join(work, 'mnist.tar.gz')
  await writeFile(file, gz)
  out(`built ${file}: ${(gz.length / MB).toFixed(1)} MB compressed in ${buildS.toFixed(1)} s`)

  const [gunzipped, gunzipS] = await timed(async () => {
    const g = createGunzip({ chunkSize: 64 * 1024 })
    pipeline(createReadStream(file), g).catch(() => {})
    let n = 0
    for await (const c of g) n += (c as Buffer).length
    return n
  })
  out(`baseline gunzip: ${(gunzipped / MB / gunzipS).toFixed(0)} MB/s uncompressed`)

  const [inspection, inspectS] = await timed(async () => await inspectArchive(createReadStream(file)))
  if (inspection.format !== 'images-tar-gz') throw new Error('expected images')
  const tarMB = inspection.bytes / MB
  out(`inspect: ${inspection.imageCount} images, ${inspection.labels.length} labels, ${tarMB.toFixed(1)} MB tar in ${inspectS.toFixed(2)} s` +
    ` = ${(tarMB / inspectS).toFixed(0)} MB/s uncompressed, ${(gz.length / MB / inspectS).toFixed(0)} MB/s compressed, ${(inspection.imageCount / inspectS).toFixed(0)} images/s`)

  const [report, splitS] = await timed(async () => {
    const s = splitArchive(createReadStream(file), { inspection, trainingFraction: 0.8 })
    await Promise.all([
      pipeline(s.training, createWriteStream(path.join(work, 'training.tar.gz'))),
      pipeline(s.test, createWriteStream(path.join(work, 'testing.tar.gz')))
    ])
    return await s.done
  })
  out(`split 80/20: ${report.training.imageCount} / ${report.test.imageCount} images in ${splitS.toFixed(2)} s` +
    ` = ${(tarMB / splitS).toFixed(0)} MB/s uncompressed, ${(inspection.imageCount / splitS).toFixed(0)} images/s`)
  out(`inspect + split: ${(inspectS + splitS).toFixed(2)} s = ${(tarMB / (inspectS + splitS)).toFixed(0)} MB/s of tar per pass pair`)

  const trainingFile = path.join(work, 'training.tar.gz')
  const [extracted, extractS] = await timed(async () => await extractArchive(createReadStream(trainingFile), path.join(work, 'training-data')))
  const trainingGz = (await stat(trainingFile)).size
  out(`extract training side: ${extracted.files.length} files in ${extractS.toFixed(2)} s = ${(extracted.files.length / extractS).toFixed(0)} files/s (${(trainingGz / MB).toFixed(1)} MB compressed)`)
  const [, createS] = await timed(async () => {
    const dir = path.join(work, 'baseline')
    const body = Buffer.alloc(300, 1)
    for (let l = 0; l < 10; l++) mkdirSync(path.join(dir, String(l)), { recursive: true })
    for (let i = 0; i < extracted.files.length; i++) writeFileSync(path.join(dir, String(i % 10), `${i}.png`), body, { flag: 'wx' })
  })
  out(`baseline file creation: ${(extracted.files.length / createS).toFixed(0)} files/s (bare writeFileSync loop, same count)`)
  out(`peak RSS ${(process.memoryUsage().rss / MB).toFixed(0)} MB`)
} finally {
  if (!args.has('keep')) await rm(work, { recursive: true, force: true })
}
