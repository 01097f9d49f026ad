/**
 * Cross-check of our pure-TypeScript LMDB reader/writer against the real liblmdb, through
 * Debian's lmdb-utils (mdb_stat, mdb_dump, mdb_load 0.9.x, the library Caffe links). Not part of
 * `npm test`, which must not need the tools; .ci/run runs it after installing them:
 *
 *   apt-get install -y lmdb-utils
 *   npx tsx test/interop/lmdb-utils-check.ts
 *
 * It checks that
 * - databases our writer makes (empty, one leaf, deep trees with overflow pages, no-subdir files,
 *   a converted MNIST set) are read back record for record by mdb_dump, and mdb_stat reports
 *   the tree our writer says it built;
 * - liblmdb can keep writing into our files (mdb_load adds keys that split our pages);
 * - our reader reads what liblmdb wrote (non-append inserts, many transactions, freed pages).
 * Exits non-zero on the first mismatch.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLmdbWriter } from '../../src/engine/data/lmdb/lmdb-writer.js'
import { openLmdb } from '../../src/engine/data/lmdb/lmdb-reader.js'
import { convertMnistData } from '../../src/engine/tools/convert-mnist-data.js'
import { silentLog } from '../../src/engine/net/engine-log.js'

type Rec = { key: Buffer, value: Buffer }

const dir = mkdtempSync(join(tmpdir(), 'lmdb-interop-'))
const say = (s: string): void => { process.stdout.write(`${s}\n`) }

function tool (cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 })
  if (r.error !== undefined) throw new Error(`${cmd}: ${r.error.message} (install lmdb-utils)`)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString()}`)
  return r.stdout.toString()
}

/** Records from mdb_dump's bytevalue output. */
function dumpRecords (path: string, extra: string[] = []): Rec[] {
  const lines = tool('mdb_dump', [...extra, path]).split('\n')
  const start = lines.indexOf('HEADER=END') + 1
  const out: Rec[] = []
  for (let i = start; i < lines.length && lines[i] !== 'DATA=END'; i += 2) {
    out.push({ key: Buffer.from((lines[i] ?? '').trim(), 'hex'), value: Buffer.from((lines[i + 1] ?? '').trim(), 'hex') })
  }
  return out
}

function stat (path: string, extra: string[] = []): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of tool('mdb_stat', [...extra, path]).matchAll(/^\s+([A-Za-z ]+): (\d+)$/gm)) out[(m[1] ?? '').trim()] = Number(m[2])
  return out
}

function dumpText (records: Rec[], mapSize = 1 << 30): string {
  const body = records.map((r) => ` ${r.key.toString('hex')}\n ${r.value.toString('hex')}`).join('\n')
  return `VERSION=3\nformat=bytevalue\ntype=btree\nmapsize=${mapSize}\nHEADER=END\n${body}${records.length > 0 ? '\n' : ''}DATA=END\n`
}

function ours (path: string): Rec[] {
  const r = openLmdb(path)
  const c = r.cursor()
  const out: Rec[] = []
  for (let ok = c.first(); ok; ok = c.next()) out.push({ key: Buffer.from(c.key), value: Buffer.from(c.value) })
  assert.equal(out.length, r.count, 'md_entries matches the records iterated')
  r.close()
  return out
}

function sameRecords (a: Rec[], b: Rec[], what: string): void {
  assert.equal(a.length, b.length, `${what}: record count`)
  for (let i = 0; i < a.length; i++) {
    if (!(a[i]?.key.equals(b[i]?.key as Buffer) ?? false) || !(a[i]?.value.equals(b[i]?.value as Buffer) ?? false)) {
      assert.fail(`${what}: record ${i} differs (key ${a[i]?.key.toString('latin1')} vs ${b[i]?.key.toString('latin1')})`)
    }
  }
}

function records (n: number, seed: number, keyPrefix = ''): Rec[] {
  let s = seed
  const rand = (): number => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s / 0x80000000 }
  return Array.from({ length: n }, (_, i) => {
    const r = rand()
    const len = r < 0.03 ? 2023 + Math.floor(rand() * 20000) : r < 0.1 ? 2000 + Math.floor(rand() * 40) : Math.floor(rand() * 1200)
    const value = Buffer.alloc(len)
    for (let j = 0; j < len; j++) value[j] = (i * 7 + j) & 255
    return { key: Buffer.from(`${keyPrefix}${String(i).padStart(8, '0')}_dir/image ${i}.png`), value }
  })
}

function writeOurs (path: string, recs: Rec[], noSubdir = false): ReturnType<ReturnType<typeof createLmdbWriter>['close']> {
  const w = createLmdbWriter(path, { noSubdir })
  for (const r of recs) w.put(r.key, r.value)
  return w.close()
}

try {
  for (const [name, n] of [['empty', 0], ['one-leaf', 3], ['deep', 30000]] as const) {
    const path = join(dir, name)
    const recs = records(n, n + 1)
    const st = writeOurs(path, recs)
    sameRecords(dumpRecords(path), recs, `mdb_dump of our ${name} database`)
    const s = stat(path)
    assert.deepEqual(
      { depth: s['Tree depth'], branch: s['Branch pages'], leaf: s['Leaf pages'], overflow: s['Overflow pages'], entries: s.Entries },
      { depth: st.depth, branch: st.branchPages, leaf: st.leafPages, overflow: st.overflowPages, entries: st.entries },
      `mdb_stat of our ${name} database`
    )
    say(`ok  mdb_dump/mdb_stat read our ${name} database (${n} records, depth ${st.depth}, ${st.overflowPages} overflow pages)`)
  }

  const file = join(dir, 'single.mdb')
  const single = records(500, 9)
  writeOurs(file, single, true)
  sameRecords(dumpRecords(file, ['-n']), single, 'mdb_dump -n of our single-file database')
  say('ok  mdb_dump -n reads our MDB_NOSUBDIR file')

  // liblmdb writing into our file: new keys interleave with ours and split our leaves and branches.
  const grown = join(dir, 'deep')
  const extra = records(3000, 77, '').map((r, i) => ({ key: Buffer.from(`${String(i * 10).padStart(8, '0')}_added`), value: r.value }))
  tool('mdb_load', [grown], dumpText(extra))
  const expected = [...records(30000, 30001), ...extra].sort((a, b) => Buffer.compare(a.key, b.key))
  sameRecords(ours(grown), expected, 'our reader after liblmdb added 3000 keys to our database')
  sameRecords(dumpRecords(grown), expected, 'mdb_dump after liblmdb added keys')
  say('ok  liblmdb extends our database and both readers agree')

  // liblmdb's own layout: random-order inserts over many transactions.
  const theirs = join(dir, 'theirs')
  mkdirSync(theirs)
  const mixed = records(20000, 5)
  const shuffled = [...mixed]
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1)
    const t = shuffled[i] as Rec
    shuffled[i] = shuffled[j] as Rec
    shuffled[j] = t
  }
  tool('mdb_load', [theirs], dumpText(shuffled.slice(0, 10000)))
  tool('mdb_load', [theirs], dumpText(shuffled.slice(10000)))
  sameRecords(ours(theirs), mixed, 'our reader on a liblmdb-written database')
  say(`ok  our reader reads liblmdb's database (${stat(theirs)['Leaf pages']} leaves, txn-by-txn inserts)`)

  const mnist = join(import.meta.dirname, '../../../shared/data/mnist')
  const mnistDb = join(dir, 'mnist_test_lmdb')
  await convertMnistData(join(mnist, 't10k-images-idx3-ubyte.gz'), join(mnist, 't10k-labels-idx1-ubyte.gz'), mnistDb, 'LMDB', { log: silentLog, stdout: process.stdout, stderr: process.stderr })
  assert.equal(stat(mnistDb).Entries, 10000, 'mdb_stat entries of converted MNIST')
  const first = dumpRecords(mnistDb)[0]
  assert.equal(first?.key.toString(), '00000000')
  // channels 1, height 28, width 28, 784 bytes of data, label 7: the Datum Caffe writes.
  assert.equal(first?.value.subarray(0, 9).toString('hex'), '0801101c181c229006')
  assert.equal(first?.value.subarray(9 + 784).toString('hex'), '2807')
  say('ok  mdb_stat/mdb_dump read the MNIST test set converted by our convert_mnist_data')
} finally {
  rmSync(dir, { recursive: true, force: true })
}
