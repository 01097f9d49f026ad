#!/usr/bin/env node
// `et`, the command-line client. Runs the compiled code in dist/ (built by `npm install` via the prepare script).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/src/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('et: dist/ is missing; run `npm install` (or `npm run build`) first\n')
  process.exit(1)
}
const { main } = await import(entry.href)
process.exitCode = await main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env })
