import { describe, expect, it } from 'vitest'
import { inspectArchive } from '../../../src/jobs/archive/inspect-archive.js'
import { imageSpecs, streamOf, targz } from './archive-fixtures.js'

describe('inspectArchive', () => {
  it('reads labels', async () => {
    const r = await inspectArchive(streamOf(targz(imageSpecs({ foo: ['1', '2'], bar: ['1', '2', '3'] }))))
    expect(r).toMatchObject({ format: 'images-tar-gz', labels: ['bar', 'foo'], imageCount: 5 })
  })
})
