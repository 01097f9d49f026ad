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

  it('keeps the last event id of the last complete event, across events without one', () => {
    const p = new SseParser()
    expect(p.lastEventId).toBe('')
    p.push('event: ready\nid: 12-abc\ndata: {}\n\nevent: change\ndata: {"a":1}\n\n: heartbeat\n\n')
    expect(p.lastEventId).toBe('12-abc')
    // An event cut off before its blank line has not been received: its id does not count yet.
    p.push('event: change\ndata: {"a":2}\nid: 13-def\n')
    expect(p.lastEventId).toBe('12-abc')
    p.push('\n')
    expect(p.lastEventId).toBe('13-def')
    // An id with a NUL is ignored, as the standard says.
    p.push('data: x\nid: 1\0\n\n')
    expect(p.lastEventId).toBe('13-def')
  })
})
