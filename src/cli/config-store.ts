import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { CliError } from './cli-error.js'

/** What `et login` keeps: where the API is and how to sign in to it. */
export const StoredConfig = z.object({
  url: z.string(),
  username: z.string(),
  password: z.string()
})
export type StoredConfig = z.infer<typeof StoredConfig>

export interface Credentials {
  url: string
  username: string
  password: string
}

/** `$XDG_CONFIG_HOME/elastic-thought/config.json`, else `~/.config/elastic-thought/config.json`. */
export function configPath (env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME
  const base = xdg !== undefined && xdg.startsWith('/') ? xdg : join(env.HOME ?? homedir(), '.config')
  return join(base, 'elastic-thought', 'config.json')
}

/**
 * Reads the config file; null when there is none. A file others can read is still used but
 * reported (`warning`), as ssh does for keys, since it holds a password.
 */
export async function readConfig (path: string): Promise<{ config: Partial<StoredConfig>, warning: string | null } | null> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return null
    throw new CliError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new CliError(`${path} is not valid JSON; fix it or run \`et login\` again`)
  }
  const result = StoredConfig.partial().safeParse(parsed)
  if (!result.success) throw new CliError(`${path} does not look like an et config file; run \`et login\` again`)
  const mode = (await stat(path)).mode & 0o777
  const warning = (mode & 0o077) !== 0 ? `${path} can be read by other users (mode ${mode.toString(8)}); run \`chmod 600 ${path}\`` : null
  return { config: result.data, warning }
}

/**
 * Writes the config atomically with mode 0600 in a 0700 directory: a temp file created
 * private from its first byte (never chmod-ed after the password is in it), then renamed.
 */
export async function writeConfig (path: string, config: StoredConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const temp = `${path}.${process.pid}.tmp`
  // 'wx' creates a new file (a stale temp file is removed first) so its mode is ours; a umask
  // can only narrow 0600.
  await rm(temp, { force: true })
  const handle = await open(temp, 'wx', 0o600)
  try {
    await handle.writeFile(JSON.stringify(config, null, 2) + '\n')
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, path)
}

export async function removeConfig (path: string): Promise<boolean> {
  try {
    await rm(path)
    return true
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return false
    throw err
  }
}

/**
 * Credentials from the environment (ET_URL, ET_USERNAME, ET_PASSWORD), each overriding the
 * config file's field. Throws a CliError naming what is missing.
 */
export function resolveCredentials (env: NodeJS.ProcessEnv, stored: Partial<StoredConfig> | null): Credentials {
  const pick = (name: 'url' | 'username' | 'password', variable: string): string | undefined => {
    const fromEnv = env[variable]
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : stored?.[name]
  }
  const url = pick('url', 'ET_URL')
  const username = pick('username', 'ET_USERNAME')
  const password = pick('password', 'ET_PASSWORD')
  if (url === undefined || username === undefined || password === undefined) {
    throw new CliError('not logged in: run `et login`, or set ET_URL, ET_USERNAME and ET_PASSWORD')
  }
  return { url: normaliseUrl(url), username, password }
}

/** `host:8080` → `http://host:8080`; no trailing slash; credentials in the URL are refused. */
export function normaliseUrl (raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new CliError(`not a valid URL: ${JSON.stringify(raw)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`the API URL must be http:// or https://, not ${url.protocol}`)
  if (url.username !== '' || url.password !== '') throw new CliError('put the username and password in `et login` (or ET_USERNAME/ET_PASSWORD), not in the URL')
  return url.toString().replace(/\/+$/, '')
}

function codeOf (err: unknown): string | undefined {
  const code: unknown = typeof err === 'object' && err !== null ? Reflect.get(err, 'code') : undefined
  return typeof code === 'string' ? code : undefined
}
