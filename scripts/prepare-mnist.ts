/**
 * Converts the MNIST originals (../shared/data/mnist, gzipped IDX) into the LMDB datasets
 * BVLC's lenet_train_test.prototxt reads, using our convert_mnist_data:
 *
 *   npx tsx scripts/prepare-mnist.ts [--src=DIR] [--out=DIR] [--backend=lmdb|leveldb] [--force]
 *
 * Writes OUT/mnist_train_<backend> (60,000 records) and OUT/mnist_test_<backend> (10,000);
 * OUT defaults to data/mnist (git-ignored). Existing databases are kept unless --force.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createGlogWriter } from '../src/engine/log/glog.js'
import { parseBackend } from '../src/engine/data/backend.js'
import { convertMnistData } from '../src/engine/tools/convert-mnist-data.js'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const src = resolve(flag('src') ?? join(repo, '..', 'shared', 'data', 'mnist'))
const out = resolve(flag('out') ?? join(repo, 'data', 'mnist'))
const backendName = (flag('backend') ?? 'lmdb').toLowerCase()
const backend = parseBackend(backendName)
const force = args.includes('--force')
const log = createGlogWriter((s) => { process.stderr.write(s) })
const io = { log, stdout: process.stdout, stderr: process.stderr }

mkdirSync(out, { recursive: true })
for (const [set, prefix] of [['train', 'train'], ['test', 't10k']] as const) {
  const db = join(out, `mnist_${set}_${backendName}`)
  if (existsSync(db)) {
    if (!force) {
      process.stdout.write(`${db} exists; keeping it (--force to rebuild)\n`)
      continue
    }
    rmSync(db, { recursive: true, force: true })
  }
  const start = performance.now()
  const n = await convertMnistData(join(src, `${prefix}-images-idx3-ubyte.gz`), join(src, `${prefix}-labels-idx1-ubyte.gz`), db, backend, io)
  process.stdout.write(`${db}: ${n} records in ${((performance.now() - start) / 1000).toFixed(2)} s\n`)
}
