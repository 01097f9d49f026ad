import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/config.js'
import { main } from '../../src/server.js'
import { loadWorkerConfig } from '../../src/worker-config.js'

const worker = (...flags: string[]) => loadWorkerConfig(['--couch-url', 'http://127.0.0.1:5984/et', '--blob-store-url', 'file:///tmp/et-blobs', ...flags], {}, '/tmp')

describe('command line', () => {
  it('elastic-thought dispatches on its first word and refuses unknown commands in one line', async () => {
    const written: string[] = []
    const original = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((chunk: string) => { written.push(String(chunk)); return true }) as typeof process.stderr.write
    try {
      expect(await main(['stauts'], {})).toBe(2)
    } finally {
      process.stderr.write = original
    }
    expect(written.join('')).toBe("elastic-thought: unknown command 'stauts' (commands: serve, status, publish-metrics; see --help)\n")
  })

  it('elastic-thought-worker --exit-when-idle and --metrics-port parse into milliseconds and an address', () => {
    const parsed = worker('--exit-when-idle', '2.5', '--metrics-port', '9464', '--metrics-host', '0.0.0.0')
    if (parsed.help) throw new Error('help')
    expect(parsed.config.exitWhenIdleMs).toBe(2500)
    expect(parsed.config.metrics).toEqual({ host: '0.0.0.0', port: 9464 })
    const plain = worker()
    if (plain.help) throw new Error('help')
    expect(plain.config.exitWhenIdleMs).toBeNull()
    expect(plain.config.metrics).toBeNull()
    expect(() => worker('--exit-when-idle', '0')).toThrow(new ConfigError('invalid --exit-when-idle: must be more than 0 seconds'))
    expect(() => worker('--exit-when-idle', 'soon')).toThrow(new ConfigError('invalid --exit-when-idle: must be a number of seconds'))
    expect(() => worker('--metrics-port', '70000')).toThrow(new ConfigError('invalid --metrics-port: must be 0–65535'))
  })
})
