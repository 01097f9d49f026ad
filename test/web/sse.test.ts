import { describe, expect, it } from 'vitest'
import { SseParser } from '../../src/web/sse.js'

describe('SseParser (the dashboard\'s event-stream reader)', () => {
  it('parses events, multi-line data and comments', () => {
    const p = new SseParser()
    const events = p.push('retry: 3000\nevent: ready\ndata: {"a":1}\n\n: heartbeat\n\nevent: change\ndata: line 1\ndata: line 2\n\n')
    expect(events).toEqual([
      { event: 'ready', data: '{"a":1}', comment: false },
      { event: '', data: 'heartbeat', comment: true },
      { event: 'change', data: 'line 1\nline 2', comment: false }
    ])
  })

  it('joins events split anywhere across chunks, including inside a CRLF', () => {
    const text = 'event: change\r\ndata: {"id":"x"}\r\n\r\nevent: change\r\ndata: {"id":"y"}\r\n\r\n'
    for (let cut = 1; cut < text.length; cut++) {
      const p = new SseParser()
      const events = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))]
      expect(events.map((e) => e.data), `cut at ${cut}`).toEqual(['{"id":"x"}', '{"id":"y"}'])
    }
  })

  it('defaults the event name to message, keeps a value without the space, and ignores unknown fields', () => {
    const p = new SseParser()
    expect(p.push('data:x\nid: 7\nfoo: bar\n\n')).toEqual([{ event: 'message', data: 'x', comment: false }])
    // A blank line with no fields before it dispatches nothing.
    expect(p.push('\n\n')).toEqual([])
  })
})
