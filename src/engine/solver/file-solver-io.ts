import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { decodeNetParameter, decodeSolverState, encodeNetParameter, encodeSolverState } from '../proto/binary.js'
import type { NetParameter, SolverParameter, SolverState } from '../proto/caffe.js'
import { lineOf, parseNetPrototxt, parseSolverPrototxt } from '../proto/text-format.js'
import { upgradeNetParameter, upgradeSolverParameter, type UpgradeNote } from '../proto/upgrade.js'
import { silentLog, type EngineLog } from '../net/engine-log.js'
import { appendResumeRecord, readResumeRecord, type ResumeRecord } from './resume-extension.js'
import type { LoadedNet, SolverIo } from './solver.js'

/**
 * A Caffe CHECK that failed while reading or writing a file. `where` is the Caffe source tag
 * real Caffe prints for the same failure (`upgrade_proto.cpp:88`), so the CLI's F line matches.
 */
export class CaffeFileError extends Error {
  readonly code = 'ET_CAFFE_FILE'
  readonly where: string
  constructor (where: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CaffeFileError'
    this.where = where
  }
}

function readBytes (path: string): Uint8Array {
  try {
    return readFileSync(path)
  } catch (err) {
    if (isNoEntry(err)) throw new CaffeFileError('io.cpp:36', `Check failed: fd != -1 (-1 vs. -1) File not found: ${path}`, { cause: err })
    throw new CaffeFileError('io.cpp:36', `Cannot read ${path}: ${messageOf(err)}`, { cause: err })
  }
}

function readText (path: string): string {
  return new TextDecoder().decode(readBytes(path))
}

/** Prints the upgrade's notes as Caffe's upgrade_proto.cpp does while it rewrites a file. */
function logNotes (log: EngineLog, notes: readonly UpgradeNote[]): void {
  for (const n of notes) {
    if (n.severity === 'WARNING') log.warning('upgrade_proto.cpp:72', n.message)
    else log.info('upgrade_proto.cpp:67', n.message)
  }
}

/** Caffe's ReadSolverParamsFromTextFileOrDie (parse, then UpgradeSolverAsNeeded). */
export function readSolverPrototxt (path: string, log: EngineLog = silentLog): SolverParameter {
  const text = readText(path)
  let parsed: SolverParameter
  try {
    parsed = parseSolverPrototxt(text, path)
  } catch (err) {
    throw new CaffeFileError('upgrade_proto.cpp:1106', `Check failed: ReadProtoFromTextFile(param_file, param) Failed to parse SolverParameter file: ${path}: ${messageOf(err)}`, { cause: err })
  }
  const upgraded = upgradeSolverParameter(parsed, { file: path })
  logNotes(log, upgraded.notes)
  return upgraded.value
}

/** Caffe's ReadNetParamsFromTextFileOrDie (parse, then UpgradeNetAsNeeded), with each layer's line kept for error messages. */
export function readNetPrototxt (path: string, log: EngineLog = silentLog): LoadedNet {
  const text = readText(path)
  let net: NetParameter
  try {
    net = parseNetPrototxt(text, path)
  } catch (err) {
    throw new CaffeFileError('upgrade_proto.cpp:88', `Check failed: ReadProtoFromTextFile(param_file, param) Failed to parse NetParameter file: ${path}: ${messageOf(err)}`, { cause: err })
  }
  const upgraded = upgradeNetParameter(net, { file: path })
  logNotes(log, upgraded.notes)
  return {
    net: upgraded.value,
    locate: (layer) => {
      const line = lineOf(layer)
      return line === undefined ? undefined : `${path}:${line}`
    }
  }
}

/** Caffe's ReadNetParamsFromBinaryFileOrDie (.caffemodel), V1 models upgraded. */
export function readCaffemodel (path: string, log: EngineLog = silentLog): NetParameter {
  const bytes = readBytes(path)
  let net: NetParameter
  try {
    net = decodeNetParameter(bytes)
  } catch (err) {
    throw new CaffeFileError('upgrade_proto.cpp:95', `Check failed: ReadProtoFromBinaryFile(param_file, param) Failed to parse NetParameter file: ${path}: ${messageOf(err)}`, { cause: err })
  }
  const upgraded = upgradeNetParameter(net, { file: path })
  logNotes(log, upgraded.notes)
  return upgraded.value
}

/** Writes through a temporary file and a rename, so a crash never leaves half a snapshot behind. */
function writeAtomically (path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`
  try {
    writeFileSync(tmp, bytes)
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw new CaffeFileError('io.cpp:69', `Check failed: proto.SerializeToOstream(&output) cannot write ${path}: ${messageOf(err)}`, { cause: err })
  }
}

/** The solver's file access: prototxt, .caffemodel and .solverstate on the local file system. */
export function createFileSolverIo (log: EngineLog = silentLog): SolverIo {
  return {
    readNetText: (path) => readNetPrototxt(path, log),
    readNetBinary: (path) => readCaffemodel(path, log),
    writeNetBinary: (path, net) => writeAtomically(path, encodeNetParameter(net)),
    readSolverState: (path): { state: SolverState, resume: ResumeRecord | undefined } => {
      const bytes = readBytes(path)
      try {
        return { state: decodeSolverState(bytes), resume: readResumeRecord(bytes) }
      } catch (err) {
        throw new CaffeFileError('io.cpp:62', `Check failed: ReadProtoFromBinaryFile(param_file, param) Failed to parse SolverState file: ${path}: ${messageOf(err)}`, { cause: err })
      }
    },
    writeSolverState: (path, state, resume) => writeAtomically(path, appendResumeRecord(encodeSolverState(state), resume)),
    // Caffe's CheckSnapshotWritePermissions: create and remove a probe file under the prefix.
    probeWritable: (path) => {
      const fd = openSync(path, 'w')
      closeSync(fd)
      rmSync(path, { force: true })
    },
    exists: (path) => existsSync(path)
  }
}

function isNoEntry (err: unknown): boolean {
  return typeof err === 'object' && err !== null && Reflect.get(err, 'code') === 'ENOENT'
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
