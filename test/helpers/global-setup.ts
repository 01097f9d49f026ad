import type { TestProject } from 'vitest/node'

// Servers shared by every test file are started here and their addresses handed to the
// tests with `provide`; see test/helpers/servers.ts.
export default async function setup (_project: TestProject): Promise<() => Promise<void>> {
  return async () => {}
}
