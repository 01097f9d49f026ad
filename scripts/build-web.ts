import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

export interface BuildWebOptions {
  /** Where index.html and assets/ go (default dist/web, where the server looks). */
  outDir?: string
  minify?: boolean
}

/**
 * Bundles the dashboard (src/web) into static files: index.html, assets/app.js (ES module,
 * with uPlot inside) and assets/app.css. Everything is local: no CDN, works offline.
 */
export async function buildWeb (options: BuildWebOptions = {}): Promise<string> {
  const outDir = path.resolve(options.outDir ?? path.join(root, 'dist', 'web'))
  // Build next to the target and swap, so a running server never serves half a build.
  const tmp = `${outDir}.tmp-${process.pid}`
  await rm(tmp, { recursive: true, force: true })
  await mkdir(path.join(tmp, 'assets'), { recursive: true })
  try {
    await build({
      entryPoints: { app: path.join(root, 'src/web/main.ts'), style: path.join(root, 'src/web/styles.css') },
      outdir: path.join(tmp, 'assets'),
      entryNames: '[name]',
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['chrome111', 'firefox111', 'safari16.4'],
      tsconfig: path.join(root, 'src/web/tsconfig.json'),
      minify: options.minify ?? true,
      sourcemap: 'linked',
      legalComments: 'none',
      logLevel: 'warning'
    })
    // Two entry points so CSS needs no import from TypeScript; served as app.css.
    await rename(path.join(tmp, 'assets', 'style.css'), path.join(tmp, 'assets', 'app.css'))
    await rm(path.join(tmp, 'assets', 'style.css.map'), { force: true })
    await copyFile(path.join(root, 'src/web/index.html'), path.join(tmp, 'index.html'))
    // uPlot's MIT licence requires its notice to travel with the bundled copy.
    const license = await readFile(path.join(root, 'node_modules/uplot/LICENSE'), 'utf8')
    await writeFile(path.join(tmp, 'assets', 'third-party-licenses.txt'), `uPlot (https://github.com/leeoniya/uPlot), bundled in app.js and app.css:\n\n${license}`)
    await rm(outDir, { recursive: true, force: true })
    await mkdir(path.dirname(outDir), { recursive: true })
    await rename(tmp, outDir)
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
  return outDir
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const outDir = await buildWeb({ ...(process.argv[2] === undefined ? {} : { outDir: process.argv[2] }) })
  process.stdout.write(`dashboard built in ${path.relative(process.cwd(), outDir) || '.'}\n`)
}
