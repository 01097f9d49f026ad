import { isDeepStrictEqual } from 'node:util'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { documentSchemas } from '../../models/documents.js'
import { UserView } from '../../models/user.js'
import { ErrorResponse } from '../../routes/error-response.js'
import { viewSchema } from '../../routes/resource-routes.js'
import { compileFastSerializer } from '../../src/plugins/serializer.js'

describe('response serializer', () => {
  it('compiles every resource view, the user view and the error shape to the fast path', () => {
    for (const [type, schema] of Object.entries(documentSchemas)) {
      if (type === 'user') continue
      expect(compileFastSerializer(viewSchema(schema)), type).not.toBeNull()
    }
    expect(compileFastSerializer(UserView)).not.toBeNull()
    expect(compileFastSerializer(ErrorResponse)).not.toBeNull()
  })

  it('writes the same JSON as zod would, and drops fields the schema does not declare', () => {
    const view = viewSchema(documentSchemas['training-job'])
    const serialize = compileFastSerializer(view)
    const doc = {
      _id: 'a1',
      _rev: '3-x',
      id: 'a1',
      type: 'training-job',
      'user-id': 'user:amy',
      'solver-id': 's1',
      'created-at': '2026-11-21T00:00:00.000Z',
      'updated-at': '2026-11-21T00:00:01.000Z',
      'processing-state': 'processing',
      'processing-log': '',
      attempts: 1,
      'worker-id': 'w1',
      'lease-expires-at': '2026-11-21T00:01:00.000Z',
      'started-at': '2026-11-21T00:00:00.500Z',
      'finished-at': null,
      'retry-at': null,
      'std-out-url': null,
      'std-err-url': null,
      'trained-model-url': null,
      labels: ['0', '1'],
      snapshots: [{ iteration: 500, 'model-url': 'cbfs://a1/snapshot_iter_500.caffemodel', 'state-url': null }],
      'notify-url': null,
      'notify-state': 'none',
      'notify-attempts': 0,
      'notify-next-at': null,
      'notify-sender': null,
      'notify-lease-expires-at': null,
      'notify-last-error': null,
      'notify-last-status': null,
      'notify-delivered-at': null,
      'notify-base-url': null,
      progress: { iteration: 20, 'max-iter': 100, loss: 0.25, lr: 0.01, 'test-outputs': { accuracy: 0.97 }, series: [{ iteration: 10, loss: 1.5, lr: 0.01, test: null }, { iteration: 20, loss: 0.25, lr: null, test: { accuracy: 0.97 } }] },
      'password-hash': { secret: true },
      Configuration: { DbUrl: 'http://admin:pw@db' }
    }
    const fast = JSON.parse(serialize?.(doc) ?? 'null') as Record<string, unknown>
    const viaZod = z.encode(view, doc as never) as Record<string, unknown>
    expect(isDeepStrictEqual(fast, JSON.parse(JSON.stringify(viaZod)))).toBe(true)
    expect(fast).not.toHaveProperty('password-hash')
    expect(fast).not.toHaveProperty('Configuration')
  })
})
