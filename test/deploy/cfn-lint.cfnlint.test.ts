import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../helpers/processes.js'

// `npm run test:deploy`: AWS's own linter on the template (resource schemas, property types,
// intrinsic functions). Debian bookworm does not package it; CFN_LINT names the executable
// when it is not `cfn-lint` on PATH (pip install cfn-lint).

const TEMPLATE = join(repoRoot, 'cloudformation/elastic-thought.yaml')
const cfnLint = process.env.CFN_LINT ?? 'cfn-lint'
const lint = (path: string): { status: number | null, output: string } => {
  const result = spawnSync(cfnLint, ['--format', 'parseable', '--', path], { encoding: 'utf8', timeout: 120_000 })
  return { status: result.status, output: `${result.stdout}${result.stderr}${result.error?.message ?? ''}` }
}

const dir = mkdtempSync(join(tmpdir(), 'et-cfn-lint-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('cfn-lint on cloudformation/elastic-thought.yaml', () => {
  it('cfn-lint is installed', () => {
    const version = spawnSync(cfnLint, ['--version'], { encoding: 'utf8' })
    expect(version.error?.message ?? '', `run \`pip install cfn-lint\` or set CFN_LINT (${cfnLint})`).toBe('')
    expect(version.stdout).toMatch(/cfn-lint \d+\./)
  })

  it('reports nothing: no errors, no warnings', () => {
    const { status, output } = lint(TEMPLATE)
    expect(output).toBe('')
    expect(status).toBe(0)
  })

  it('does lint: a dangling Ref and a string port in a copy are reported', () => {
    const broken = readFileSync(TEMPLATE, 'utf8')
      .replace('SubnetId: !Ref SubnetA', 'SubnetId: !Ref SubnetZ')
      .replace('FromPort: 5984', 'FromPort: couchdb')
    const path = join(dir, 'broken.yaml')
    writeFileSync(path, broken)
    const { status, output } = lint(path)
    expect(status).not.toBe(0)
    expect(output).toContain('SubnetZ')
    expect(output).toMatch(/couchdb/)
  })
})
