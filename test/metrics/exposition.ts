/** One sample line of the Prometheus text exposition format. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/**
 * Parses Prometheus text format 0.0.4 strictly enough to catch malformed output: every
 * non-comment line must be `name{label="value",…} number`, label values unescaped.
 */
export function parseExposition (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line)
    if (m === null) throw new Error(`not an exposition line: ${line}`)
    const labels: Record<string, string> = {}
    const body = m[2] ?? ''
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g
    let consumed = 0
    for (const lm of body.matchAll(labelPattern)) {
      if (lm.index !== consumed) throw new Error(`bad labels in: ${line}`)
      consumed += lm[0].length
      labels[lm[1] ?? ''] = (lm[2] ?? '').replace(/\\(.)/g, (_s, c: string) => c === 'n' ? '\n' : c)
    }
    if (consumed !== body.length) throw new Error(`bad labels in: ${line}`)
    const raw = m[3] ?? ''
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw)
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`bad value in: ${line}`)
    samples.push({ name: m[1] ?? '', labels, value })
  }
  return samples
}

/** The value of the one sample with this name and (at least) these labels; throws if not exactly one. */
export function sampleValue (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (found.length !== 1) throw new Error(`${found.length} samples for ${name} ${JSON.stringify(labels)}`)
  return (found[0] as Sample).value
}
