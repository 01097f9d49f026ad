#!/usr/bin/env node
// The job worker for GPU/CPU nodes. Runs the compiled code in dist/ (built by `npm install`).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/src/worker.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('elastic-thought-worker: dist/ is missing; run `npm install` (or `npm run build`) first\n')
  process.exit(1)
}
const { main } = await import(entry.href)
const code = await main(process.argv.slice(2), process.env)
// -1: the worker is running and exits on a signal.
if (code >= 0) process.exit(code)
