/**
 * The records in test/fixtures/lmdb/plain.mdb.gz, computed rather than stored so the test can
 * check every byte the real liblmdb wrote. Record 3 has an empty value and record 7 a value
 * large enough for two overflow pages; the rest fill more than one leaf so the tree has a branch.
 */
export function fixtureRecords (): Array<{ key: Buffer, value: Buffer }> {
  const out: Array<{ key: Buffer, value: Buffer }> = []
  for (let i = 0; i < 60; i++) {
    const key = Buffer.from(`${String(i).padStart(8, '0')}_rec`)
    const len = i === 3 ? 0 : i === 7 ? 5000 : 40 + (i * 13) % 60
    const value = Buffer.alloc(len)
    for (let j = 0; j < len; j++) value[j] = (i * 31 + j * 7) & 255
    out.push({ key, value })
  }
  return out
}

/** mdb_dump's text format ("bytevalue") for a list of records, optionally with dump header extras. */
export function dumpText (records: Array<{ key: Buffer, value: Buffer }>, headerExtra: string[] = []): string {
  const lines = ['VERSION=3', 'format=bytevalue', 'type=btree', 'mapsize=1048576', ...headerExtra, 'HEADER=END']
  for (const r of records) lines.push(` ${r.key.toString('hex')}`, ` ${r.value.toString('hex')}`)
  lines.push('DATA=END')
  return lines.join('\n') + '\n'
}
