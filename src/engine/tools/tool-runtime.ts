import { existsSync } from 'node:fs'
import { AppError } from '../../lib/errors.js'
import type { EngineLog } from '../net/engine-log.js'
import { FlagError, describeFlags, parseFlags } from '../cli/flags.js'
import type { FlagSpecs, ParsedFlags } from '../cli/flags.js'
import type { Backend } from '../data/backend.js'
import { createDatumSink, openDatumSource } from '../data/datum-source.js'
import type { DatumSink, DatumSource } from '../data/datum-source.js'

/**
 * What a dataset tool needs from the CLI (a structural subset of its CliIo): the glog sink,
 * which may also write `F` lines, and the two text streams.
 */
export interface ToolIo {
  readonly log: EngineLog & { fatal?: (where: string, message: string) => void }
  readonly stdout: { write (text: string): unknown }
  readonly stderr: { write (text: string): unknown }
}

/**
 * A failed CHECK in one of Caffe's tools: `where` is the Caffe source tag printed in the F line
 * (`convert_mnist_data.cpp:59`), the message reads like Caffe's (`Check failed: magic == 2051 …`).
 */
export class ToolCheckError extends AppError {
  readonly where: string
  constructor (where: string, message: string, options?: { cause?: unknown }) {
    super(400, 'ET_TOOL_CHECK', message, options)
    this.where = where
  }
}

/** How a tool's command line is described when it is used wrongly (gflags' usage text). */
export interface ToolUsage {
  /** gflags::SetUsageMessage text. */
  message: string
  /** The file gflags lists the flags under: `tools/convert_imageset.cpp`. */
  file: string
  flags: FlagSpecs
}

/**
 * Parses argv and runs a tool body, turning every failure into Caffe's way of failing: one glog
 * `F` line (no stack) and exit code 1. Wrong positional counts print the usage and return 1.
 */
export async function runTool (
  argv: readonly string[],
  io: ToolIo,
  usage: ToolUsage,
  positional: { min: number, max: number },
  defaultWhere: string,
  body: (flags: ParsedFlags) => Promise<void>
): Promise<number> {
  let parsed: ParsedFlags
  try {
    parsed = parseFlags(argv, usage.flags)
  } catch (err) {
    if (!(err instanceof FlagError)) throw err
    io.stderr.write(`${err.message}\n`)
    return 1
  }
  const n = parsed.positional.length
  if (n < positional.min || n > positional.max) {
    io.stderr.write(`${usage.message}\n  Flags from ${usage.file}:\n${describeFlags(usage.flags)}\n`)
    return 1
  }
  try {
    await body(parsed)
    return 0
  } catch (err) {
    const where = err instanceof ToolCheckError ? err.where : defaultWhere
    const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ')
    if (io.log.fatal !== undefined) io.log.fatal(where, message)
    else io.log.error(where, message)
    // Errors users cause carry an ET_ code; anything else is a bug and gets its stack.
    const expected = err instanceof AppError || (err instanceof Error && String(Reflect.get(err, 'code') ?? '').startsWith('ET_'))
    if (!expected && err instanceof Error && err.stack !== undefined) io.stderr.write(`*** Check failure stack trace: ***\n${err.stack}\n`)
    return 1
  }
}

/**
 * Caffe's db::GetDB(backend)->Open(path, db::NEW): refuses an existing path with the CHECK
 * Caffe fails with, then logs `Opened lmdb|leveldb PATH`.
 */
export async function openNewDb (path: string, backend: Backend, io: ToolIo): Promise<DatumSink> {
  if (backend === 'LMDB') {
    if (existsSync(path)) throw new ToolCheckError('db_lmdb.cpp:13', `Check failed: mkdir(source.c_str(), 0744) == 0 (-1 vs. 0) mkdir ${path} failed`)
    const sink = await createDatumSink(path, backend)
    io.log.info('db_lmdb.cpp:35', `Opened lmdb ${path}`)
    return sink
  }
  if (existsSync(path)) {
    throw new ToolCheckError('db_leveldb.cpp:16', `Check failed: status.ok() Failed to open leveldb ${path} Invalid argument: ${path}: exists (error_if_exists is true)`)
  }
  const sink = await createDatumSink(path, backend)
  io.log.info('db_leveldb.cpp:18', `Opened leveldb ${path}`)
  return sink
}

/** Caffe's Open(path, db::READ) plus its `Opened …` line. */
export async function openDbForRead (path: string, backend: Backend, io: ToolIo): Promise<DatumSource> {
  const src = await openDatumSource(path, backend)
  io.log.info(backend === 'LMDB' ? 'db_lmdb.cpp:35' : 'db_leveldb.cpp:18', `Opened ${backend === 'LMDB' ? 'lmdb' : 'leveldb'} ${path}`)
  return src
}

/** caffe::format_int(n, 8): zero-padded decimal, the key prefix of every Caffe dataset tool. */
export function formatInt (n: number, width = 8): string {
  return String(n).padStart(width, '0')
}
