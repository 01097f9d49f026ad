import { mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { configPath, normaliseUrl, readConfig, resolveCredentials, writeConfig } from '../../src/cli/config-store.js'

describe('et config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-config-'))
  afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

  it('lives under XDG_CONFIG_HOME when it is absolute, else ~/.config', () => {
    expect(configPath({ HOME: '/home/ann', XDG_CONFIG_HOME: '/xdg' })).toBe('/xdg/elastic-thought/config.json')
    expect(configPath({ HOME: '/home/ann' })).toBe('/home/ann/.config/elastic-thought/config.json')
    // The XDG spec says a relative value is to be ignored.
    expect(configPath({ HOME: '/home/ann', XDG_CONFIG_HOME: 'relative' })).toBe('/home/ann/.config/elastic-thought/config.json')
  })

  it('is written 0600 even over a file with looser permissions, and warns when it is readable by others', async () => {
    const path = join(dir, 'a', 'config.json')
    await writeConfig(path, { url: 'http://x:1', username: 'u', password: 'p4ssword!' })
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect((await readConfig(path))?.warning).toBeNull()
    chmodSync(path, 0o644)
    expect((await readConfig(path))?.warning).toContain('can be read by other users')
    await writeConfig(path, { url: 'http://x:1', username: 'u', password: 'new p4ssword' })
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(await readConfig(join(dir, 'missing.json'))).toBeNull()
    writeFileSync(join(dir, 'bad.json'), '{not json')
    await expect(readConfig(join(dir, 'bad.json'))).rejects.toThrow('not valid JSON')
  })

  it('takes each credential from the environment first, then the file', () => {
    const stored = { url: 'http://file:1', username: 'fileuser', password: 'filepass' }
    expect(resolveCredentials({}, stored)).toEqual(stored)
    expect(resolveCredentials({ ET_PASSWORD: 'envpass', ET_URL: 'envhost:8080/' }, stored)).toEqual({ url: 'http://envhost:8080', username: 'fileuser', password: 'envpass' })
    expect(() => resolveCredentials({ ET_URL: 'http://a' }, null)).toThrow('not logged in')
  })

  it('normalises the API URL and refuses credentials inside it', () => {
    expect(normaliseUrl('127.0.0.1:8080')).toBe('http://127.0.0.1:8080')
    expect(normaliseUrl('https://et.example.com/api/')).toBe('https://et.example.com/api')
    expect(() => normaliseUrl('http://u:p@host')).toThrow('not in the URL')
    expect(() => normaliseUrl('ftp://host')).toThrow('http:// or https://')
  })
})
