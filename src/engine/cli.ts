import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { CAFFE_FLAGS, deviceQuery, test, time, train } from './cli/caffe-commands.js'
import { CLASSIFY_FLAGS, classify } from './cli/classify.js'
import { CaffeFatalError, fatalLineOf } from './cli/fatal.js'
import { FlagError, describeFlags, parseFlags } from './cli/flags.js'
import { createGlogWriter } from './log/glog.js'
import { runComputeImageMean } from './tools/compute-image-mean.js'
import { runConvertImageset } from './tools/convert-imageset.js'
import { runConvertMnistData } from './tools/convert-mnist-data.js'
import type { CliIo } from './cli/runtime.js'

const USAGE = `et-caffe: command line brew (a Caffe-compatible engine; CPU only)
usage: et-caffe <command> <args>

commands:
  train           train or finetune a model
  test            score a model
  device_query    show diagnostic information (CPU and kernel path)
  time            benchmark model execution time
  classify        classify images with a deploy net and a .caffemodel (JSON on stdout)
  convert_imageset, convert_mnist_data, compute_image_mean
                  Caffe's dataset tools
`

type Command = (argv: string[], io: CliIo) => Promise<number>

const caffeCommand = (run: (flags: ReturnType<typeof parseFlags>['values'], io: CliIo) => Promise<number> | number): Command =>
  async (argv, io) => {
    const parsed = parseFlags(argv, CAFFE_FLAGS)
    if (parsed.positional.length > 0) throw new FlagError(`ERROR: unexpected argument '${parsed.positional[0] ?? ''}'`)
    return await run(parsed.values, io)
  }

const COMMANDS: Record<string, Command> = {
  train: caffeCommand(train),
  test: caffeCommand(test),
  time: caffeCommand(time),
  device_query: caffeCommand(deviceQuery),
  classify: async (argv, io) => {
    const parsed = parseFlags(argv, CLASSIFY_FLAGS)
    return await classify(parsed.values, parsed.positional, io)
  },
  convert_imageset: runConvertImageset,
  convert_mnist_data: runConvertMnistData,
  compute_image_mean: runComputeImageMean
}

/**
 * Runs one et-caffe command and returns the process exit code: 0 on success, 1 after a fatal
 * error, which is reported as a single glog `F` line with Caffe's source tag and no JS stack
 * (a stack is added only for internal errors, which are bugs).
 */
export async function runCli (argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-help' || name === 'help') {
    io.stderr.write(`${USAGE}\n  Flags from caffe.cpp:\n${describeFlags(CAFFE_FLAGS)}\n`)
    return name === undefined ? 1 : 0
  }
  const command = COMMANDS[name]
  try {
    if (command === undefined) {
      io.log.error('caffe.cpp:78', 'Available caffe actions:')
      for (const known of Object.keys(COMMANDS).sort()) io.log.error('caffe.cpp:81', `\t${known}`)
      throw new CaffeFatalError('caffe.cpp:83', `Unknown action: ${name}`)
    }
    return await command(rest, io)
  } catch (err) {
    if (err instanceof FlagError) {
      // gflags reports bad flags on plain stderr before logging starts, not as a glog line.
      io.stderr.write(`${err.message}\n`)
      return 1
    }
    const line = fatalLineOf(err)
    io.log.fatal(line.where, line.message)
    if (!line.expected && err instanceof Error && err.stack !== undefined) io.stderr.write(`*** Check failure stack trace: ***\n${err.stack}\n`)
    return 1
  }
}

/** The real process: glog lines on stderr, JSON on stdout, process signals. */
export function processIo (): CliIo {
  return { log: createGlogWriter((text) => process.stderr.write(text)), stdout: process.stdout, stderr: process.stderr, signals: process }
}

// Run as a program only when this file is the entry point (node, tsx, or the bin shim), never on import.
function isMain (): boolean {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

/**
 * A worker that starts the engine names itself in ET_PARENT_PID. If that worker dies (SIGKILL,
 * a crash), the engine would run on as an orphan holding both cores for a job that another
 * worker will take over: it stops as soon as it sees it has been re-parented.
 */
function exitWithParent (io: CliIo): void {
  const parent = Number(process.env.ET_PARENT_PID)
  if (!Number.isInteger(parent) || parent <= 0) return
  setInterval(() => {
    if (process.ppid === parent) return
    io.log.error('caffe.cpp:0', `the process that started this run (pid ${parent}) has gone; stopping`)
    process.exit(1)
  }, 1000).unref()
}

if (isMain()) {
  const io = processIo()
  exitWithParent(io)
  const code = await runCli(process.argv.slice(2), io)
  process.exitCode = code
}
