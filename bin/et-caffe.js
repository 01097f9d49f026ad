#!/usr/bin/env node
// et-caffe: the builtin Caffe-compatible engine's command line (built code in dist/).
import { runCli, processIo } from '../dist/src/engine/cli.js'

process.exitCode = await runCli(process.argv.slice(2), processIo())
