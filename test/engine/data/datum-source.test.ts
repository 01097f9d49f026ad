import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RESTART_MESSAGE, createDatumSink, openDatumSource } from '../../../src/engine/data/datum-source.js'
import type { Backend } from '../../../src/engine/data/backend.js'
import { encodeDatum } from '../../../src/engine/proto/binary.js'
import { DatabaseError } from '../../../src/engine/data/errors.js'

let tmp: string
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'et-datum-')) })
afterAll(() => { rmSync(tmp, { recursive: true, force: true }) })

const datum = (i: number): { channels: number, height: number, width: number, data: Uint8Array, label: number, float_data: Float32Array } =>
  ({ channels: 1, height: 2, width: 2, data: Uint8Array.from([i, i + 1, i + 2, i + 3]), label: i % 10, float_data: new Float32Array(0) })

describe.each<Backend>(['LMDB', 'LEVELDB'])('DatumSource over %s', (backend) => {
  it('reads Datums in key order and wraps around like Caffe, reporting each restart', async () => {
    const path = join(tmp, `${backend}-wrap`)
    const sink = await createDatumSink(path, backend)
    for (let i = 0; i < 5; i++) await sink.put(String(i).padStart(8, '0'), datum(i))
    expect(sink.count).toBe(5)
    await sink.close()
    let restarts = 0
    const src = await openDatumSource(path, backend, { onRestart: () => { restarts++ } })
    expect(RESTART_MESSAGE).toBe('Restarting data prefetching from start.')
    expect(await src.count()).toBe(5)
    expect((await src.peek()).label).toBe(0)
    expect(Buffer.from(src.peekKey()).toString()).toBe('00000000')
    const labels: number[] = []
    for (let i = 0; i < 12; i++) labels.push((await src.next()).label ?? -1)
    expect(labels).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1])
    // Caffe logs the restart right after handing out the last record.
    expect(restarts).toBe(2)
    const d = await src.next()
    expect([d.channels, d.height, d.width, ...(d.data ?? [])]).toEqual([1, 2, 2, 2, 3, 4, 5])
    await src.skip(3)
    expect((await src.next()).label).toBe(1)
    await src.reset()
    expect(Buffer.from(await src.nextRaw()).equals(Buffer.from(encodeDatum(datum(0))))).toBe(true)
    await src.close()
  })

  it('refuses an empty database with a clear error', async () => {
    const path = join(tmp, `${backend}-empty`)
    await (await createDatumSink(path, backend)).close()
    await expect(openDatumSource(path, backend)).rejects.toThrow(DatabaseError)
    await expect(openDatumSource(path, backend)).rejects.toThrow(/is empty/)
  })
})
