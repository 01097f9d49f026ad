import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { extractArchive } from '../../../src/jobs/archive/extract-archive.js'
import { inspectArchive } from '../../../src/jobs/archive/inspect-archive.js'
import { createLabelMap, formatImageList, writeImageLists } from '../../../src/jobs/archive/label-index.js'
import { splitArchive } from '../../../src/jobs/archive/split-archive.js'
import { archiveErrorOf, collect, streamOf, targz, tinyPng } from './archive-fixtures.js'
import type { TarSpec } from './archive-fixtures.js'

let work: string
beforeEach(async () => { work = await mkdtemp(path.join(tmpdir(), 'et-labels-')) })
afterEach(async () => { await rm(work, { recursive: true, force: true }) })

const ALPHABET = [...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ']
const FONTS = ['Arial', 'ComicSansMS', 'CourierNew', 'TimesNewRoman', 'Verdana']

/** The original's data-test/alphabet.tar.gz layout: 36 dirs with 5 PNGs each, dir entries included (216 entries). */
function alphabet (order: readonly string[] = ALPHABET): TarSpec[] {
  const specs: TarSpec[] = []
  let seed = 0
  for (const l of order) {
    specs.push({ path: `${l}/` })
    for (const f of FONTS) specs.push({ path: `${l}/${f}-5-0.png`, body: tinyPng(seed++) })
  }
  return specs
}

describe('label map and list files', () => {
  it('numbers [foo/1, bar/1, bar/2] by sorted label, not by archive order', () => {
    const files = ['foo/1', 'bar/1', 'bar/2']
    const map = createLabelMap(files.map((f) => f.split('/')[0] as string))
    expect(map.labels).toEqual(['bar', 'foo'])
    // The original gave foo 0, bar 1 (first seen); ours is the same on every side and every upload.
    expect(formatImageList(files, map, { prefix: 'training-data', side: 'training' })).toBe(
      'training-data/bar/1 0\ntraining-data/bar/2 0\ntraining-data/foo/1 1\n'
    )
  })

  it('keeps the original alphabet case: 36 labels, 0 → "0", 35 → "Z", first and last lines', async () => {
    const specs = alphabet([...ALPHABET].reverse())
    expect(specs.length).toBe(216)
    const r = await extractArchive(streamOf(targz(specs)), path.join(work, 'training-data'))
    const lists = await writeImageLists({ workDir: work, training: r.files, test: [] })
    expect(lists.labels.length).toBe(36)
    expect(lists.labels[0]).toBe('0')
    expect(lists.labels[35]).toBe('Z')
    const lines = (await readFile(path.join(work, 'training.txt'), 'utf8')).trimEnd().split('\n')
    expect(lines.length).toBe(180)
    expect(lines[0]).toBe('training-data/0/Arial-5-0.png 0')
    expect(lines[179]).toBe('training-data/Z/Verdana-5-0.png 35')
    expect(await readFile(path.join(work, 'testing.txt'), 'utf8')).toBe('')
  })

  it('labels both sides of a split with the one training map', async () => {
    const gz = targz(alphabet())
    const inspection = await inspectArchive(streamOf(gz))
    if (inspection.format !== 'images-tar-gz') throw new Error('expected images')
    const s = splitArchive(streamOf(gz), { inspection, trainingFraction: 0.8 })
    const [training, test] = await Promise.all([collect(s.training), collect(s.test), s.done])
    const tr = await extractArchive(streamOf(training), path.join(work, 'training-data'))
    const te = await extractArchive(streamOf(test), path.join(work, 'test-data'))
    await writeImageLists({ workDir: work, training: tr.files, test: te.files })
    const testLines = (await readFile(path.join(work, 'testing.txt'), 'utf8')).trimEnd().split('\n')
    expect(testLines.length).toBe(36)
    expect(testLines[0]).toBe('test-data/0/ComicSansMS-5-0.png 0')
    expect(testLines[10]).toBe('test-data/A/ComicSansMS-5-0.png 10')
    expect(testLines[35]).toBe('test-data/Z/ComicSansMS-5-0.png 35')
  })

  it('keeps label numbers when the test side has fewer labels', async () => {
    await writeImageLists({ workDir: work, training: ['a/1', 'b/1', 'c/1'], test: ['c/2'] })
    expect(await readFile(path.join(work, 'testing.txt'), 'utf8')).toBe('test-data/c/2 2\n')
  })

  it('refuses a test label that training does not have, naming it', async () => {
    const err = await archiveErrorOf(writeImageLists({ workDir: work, training: ['a/1', 'b/1'], test: ['a/2', 'zebra/9.png'] }))
    expect(err.problem).toBe('label-mismatch')
    expect(err.message).toBe("the test set has label 'zebra' ('zebra/9.png'), which the training set does not have")
  })

  it('refuses names Caffe list files cannot hold', async () => {
    const err = await archiveErrorOf(writeImageLists({ workDir: work, training: ['a/my cat.png'], test: [] }))
    expect(err.problem).toBe('bad-name')
    expect(err.message).toContain('whitespace')
    expect(() => createLabelMap(['tab\tlabel'])).toThrow(/cannot be written/)
  })

  it('can interleave labels for an ImageData layer without shuffle', () => {
    const files = ['b/1', 'a/1', 'a/2', 'a/3', 'b/2']
    const map = createLabelMap(['a', 'b'])
    expect(formatImageList(files, map, { prefix: 'p', side: 'training', order: 'interleaved' })).toBe('p/a/1 0\np/b/1 1\np/a/2 0\np/b/2 1\np/a/3 0\n')
  })
})
