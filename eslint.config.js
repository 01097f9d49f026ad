import neostandard from 'neostandard'

// Module boundaries from docs/style.md §2.2, enforced with core no-restricted-imports
// so that a wrong-way import fails `npm test`, not just review.
const io = ['nano', 'nsqjs', '@aws-sdk/*', 'undici', 'fastify', 'fastify-plugin', 'pouchdb', 'express-pouchdb', 'node:fs', 'node:fs/promises', 'node:net', 'node:http', 'node:child_process']

const restrict = (files, patterns, message) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }] }]
  }
})

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', 'node_modules/**', 'test-artifacts/**', 'scratch/**', 'data/**'] }),
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      // The zod idiom pairs `const X = z.object()` with `type X = z.infer<typeof X>`; tsc catches real redeclarations.
      '@typescript-eslint/no-redeclare': 'off'
    }
  },
  restrict(['models/**'], [...io, '**/src/db/*', '**/src/jobs/*', '**/src/changes/*', '**/src/services/*', '**/src/plugins/*', '**/src/engine/*', '**/routes/*', '**/blobstore/*', '**/schedulers/*'], 'models/ is pure: no I/O and no project layers above it'),
  restrict(['src/lib/**'], ['**/models/*', '**/routes/*', '**/blobstore/*', '**/schedulers/*', '**/src/db/*', '**/src/jobs/*'], 'src/lib is a leaf: node built-ins only'),
  restrict(['blobstore/**', 'schedulers/**'], ['fastify', 'fastify-plugin', '**/routes/*', '**/src/db/*', '**/src/jobs/*'], 'backends know nothing of HTTP routes or the database'),
  restrict(['src/db/**'], ['fastify', 'fastify-plugin', '**/routes/*'], 'the data layer knows nothing of HTTP'),
  restrict(['routes/**'], ['nano', 'nsqjs', '@aws-sdk/*', 'pouchdb', 'express-pouchdb', '**/src/db/*', '**/blobstore/*-blob-store*', '**/schedulers/*-scheduler*'], 'routes reach services only through decorators'),
  restrict(['src/engine/**'], ['fastify', 'fastify-plugin', 'nano', 'nsqjs', '@aws-sdk/*', '**/routes/*', '**/src/db/*', '**/src/jobs/*', '**/blobstore/*', '**/schedulers/*'], 'the engine is a standalone Caffe-compatible program')
]
