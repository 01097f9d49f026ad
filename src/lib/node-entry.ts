import { fileURLToPath } from 'node:url'

/**
 * How to start a sibling module as its own Node process. Built code runs the `.js` file;
 * source under tsx or vitest runs the `.ts` file through tsx's loader.
 */
export function nodeEntry (moduleUrl: string, siblingBasename: string): { script: string, execArgv: string[] } {
  const fromSource = moduleUrl.endsWith('.ts')
  const script = fileURLToPath(new URL(`./${siblingBasename}${fromSource ? '.ts' : '.js'}`, moduleUrl))
  return { script, execArgv: fromSource ? ['--import', 'tsx'] : [] }
}
