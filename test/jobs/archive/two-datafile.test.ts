import { gunzipSync } from 'node:zlib'
import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { inspectArchive } from '../../../src/jobs/archive/inspect-archive.js'
import { checkDatafilePair, inspectDatafilePair } from '../../../src/jobs/archive/two-datafile.js'
import { archiveErrorOf, imageSpecs, streamOf, targz } from './archive-fixtures.js'

const lmdbBytes = gunzipSync(readFileSync(new URL('../../fixtures/lmdb/plain.mdb.gz', import.meta.url)))
const images = (tree: Record<string, string[]>): Buffer => targz(imageSpecs(tree))

describe('two datafiles for one dataset', () => {
  it('accepts a test set whose labels are a subset of training', async () => {
    const pair = await inspectDatafilePair(streamOf(images({ a: ['1', '2'], b: ['1'], c: ['1'] })), streamOf(images({ c: ['9'], a: ['9'] })))
    expect(pair.training.format).toBe('images-tar-gz')
    expect(pair.test.format === 'images-tar-gz' ? pair.test.labels : []).toEqual(['a', 'c'])
  })

  it('names the test labels training lacks', async () => {
    const err = await archiveErrorOf(inspectDatafilePair(streamOf(images({ a: ['1'], b: ['1'] })), streamOf(images({ a: ['1'], x: ['1'], y: ['1'] }))))
    expect(err.problem).toBe('label-mismatch')
    expect(err.message).toBe("the test datafile has labels 'x', 'y' that the training datafile does not have")
  })

  it('refuses images on one side and a database on the other', async () => {
    const training = await inspectArchive(streamOf(images({ a: ['1'] })))
    const test = await inspectArchive(streamOf(targz([{ path: 'data.mdb', body: lmdbBytes }])))
    const err = await archiveErrorOf(Promise.resolve().then(() => checkDatafilePair(training, test)))
    expect(err.problem).toBe('layout')
    expect(err.message).toContain('training datafile is an archive of images but the test datafile is an LMDB database')
    expect(checkDatafilePair(test, test).training.format).toBe('lmdb')
  })

  it('says which side is bad, and stops waiting for the other', async () => {
    const gz = images({ a: ['1', '2'] })
    let timer: NodeJS.Timeout | undefined
    async function * stalled (): AsyncGenerator<Buffer> {
      yield gz.subarray(0, 100)
      await new Promise((resolve) => { timer = setTimeout(resolve, 3_000) })
      yield gz.subarray(100)
    }
    const started = Date.now()
    const err = await archiveErrorOf(inspectDatafilePair(Readable.from(stalled()), streamOf(Buffer.from('<html>404</html>'))))
    clearTimeout(timer)
    expect(err.problem).toBe('not-an-archive')
    expect(err.message).toMatch(/^test datafile: the file is not a \.tar\.gz archive/)
    expect(Date.now() - started).toBeLessThan(1_500)
  })
})
