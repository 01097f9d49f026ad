import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { publishMetricsFlags } from '../../src/commands/publish-metrics.js'
import { statusFlags } from '../../src/commands/status.js'
import { ConfigError, loadServerConfig, readFlags } from '../../src/config.js'
import { loadWorkerConfig } from '../../src/worker-config.js'

// The deployment files start our programs with flags and ET_* variables; these helpers run
// those exact arguments through the programs' own configuration parsers, so a renamed flag or
// a bad value fails here instead of on a server at boot.

/** Splits one shell command line into words: single and double quotes, backslash escapes. */
export function shellWords (line: string): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let quote: '"' | "'" | null = null
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? ''
    if (quote !== null) {
      if (c === quote) quote = null
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i] ?? ''
      else word += c
    } else if (c === "'" || c === '"') {
      quote = c
      inWord = true
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i] ?? ''
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
    } else {
      word += c
      inWord = true
    }
  }
  if (quote !== null) throw new Error(`unterminated ${quote} in: ${line}`)
  if (inWord) words.push(word)
  return words
}

/** The script's lines with backslash-newline continuations joined. */
export function logicalLines (script: string): string[] {
  return script.replace(/\\\n/g, ' ').split('\n')
}

/** Bodies of the script's `… <path> … <<EOF` here-documents, keyed by the first absolute path on the line. */
export function hereDocuments (script: string): Map<string, string> {
  const docs = new Map<string, string>()
  const lines = script.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ''
    if (!/<<-?'?EOF'?/.test(line)) continue
    const target = /(\/[\w./-]+)/.exec(line.replace(/<<.*$/, ''))?.[1]
    const end = lines.indexOf('EOF', i + 1)
    if (target !== undefined && end > i) docs.set(target, lines.slice(i + 1, end).join('\n'))
  }
  return docs
}

/** KEY=VALUE lines (docker --env-file syntax: no quoting, # comments). */
export function envFile (text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim())
    if (m?.[1] !== undefined) env[m[1]] = m[2] ?? ''
  }
  return env
}

/** The ENV of a Dockerfile's last stage (the image that runs). */
export function dockerfileEnv (path: string): Record<string, string> {
  const text = readFileSync(path, 'utf8').replace(/\\\n/g, ' ')
  const lastStage = text.slice(text.lastIndexOf('\nFROM '))
  const env: Record<string, string> = {}
  for (const line of lastStage.split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim())
    if (m?.[1] === undefined) continue
    for (const pair of shellWords(m[1])) {
      const eq = pair.indexOf('=')
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1)
    }
  }
  return env
}

/** A Compose service's environment as the container sees it: a key without a value (null) is unset. */
export function setVariables (environment: Record<string, string | null> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(environment ?? {}).filter((e): e is [string, string] => e[1] !== null))
}

export type Role = 'server' | 'worker' | 'publish-metrics' | 'status'

/**
 * Runs `args` (after the role word) with `env` through the role's configuration parser;
 * returns the one-line error it would print, or null when the program would start.
 */
export function configError (role: Role, args: string[], env: Record<string, string>): string | null {
  try {
    if (role === 'server') loadServerConfig(args, env)
    else if (role === 'worker') loadWorkerConfig(args, env, tmpdir())
    else readFlags(role === 'status' ? statusFlags : publishMetricsFlags, args, env)
    return null
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
}
