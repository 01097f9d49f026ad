import { describe, expect, it } from 'vitest'
import { inspectArchive } from '../../../src/jobs/archive/inspect-archive.js'
import type { ImagesInspection } from '../../../src/jobs/archive/inspect-archive.js'
import { splitArchive } from '../../../src/jobs/archive/split-archive.js'
import { collect, imageSpecs, streamOf, targz } from './archive-fixtures.js'

describe('splitArchive', () => {
  it('80/20', async () => {
    const gz = targz(imageSpecs({ foo: ['1', '2'], bar: ['1', '2', '3', '4', '5'] }))
    const inspection = await inspectArchive(streamOf(gz)) as ImagesInspection
    const s = splitArchive(streamOf(gz), { inspection, trainingFraction: 0.8 })
    const [tr, te, report] = await Promise.all([collect(s.training), collect(s.test), s.done])
    expect(report.training.counts).toEqual({ foo: 1, bar: 4 })
    expect(report.test.counts).toEqual({ foo: 1, bar: 1 })
    const a = await inspectArchive(streamOf(tr))
    const b = await inspectArchive(streamOf(te))
    expect(a).toMatchObject({ labels: ['bar', 'foo'], imageCount: 5 })
    expect(b).toMatchObject({ labels: ['bar', 'foo'], imageCount: 2 })
  })
})
