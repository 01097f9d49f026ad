/** One server-sent event, or a comment line (the server's heartbeat). */
export interface SseEvent {
  event: string
  data: string
  comment: boolean
}

/**
 * Incremental text/event-stream parser (the WHATWG rules the dashboard needs: `event`,
 * multi-line `data`, comments, CR/LF/CRLF line ends). Bytes arrive in arbitrary chunks, so
 * a partial line waits for the next push. No DOM: unit-tested under Node.
 */
export class SseParser {
  private buffer = ''
  private event = ''
  private data: string[] = []
  private sawField = false
  private pendingCr = false
  private idBuffer = ''
  /**
   * The id to send back in `Last-Event-ID` when reconnecting: that of the last event fully
   * received. An `id` line counts only once its event's blank line arrives, so a connection cut
   * mid-event resumes before that event rather than after it.
   */
  lastEventId = ''

  /** Feeds decoded text; returns the events it completed. */
  push (text: string): SseEvent[] {
    let input = text
    // A CRLF split across chunks: the CR already ended its line, so drop the LF.
    if (this.pendingCr && input.startsWith('\n')) input = input.slice(1)
    this.pendingCr = false
    this.buffer += input
    const out: SseEvent[] = []
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer)
      if (match === null) break
      // A lone CR at the very end may be the first half of a CRLF.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) {
        this.pendingCr = true
      }
      const line = this.buffer.slice(0, match.index)
      this.buffer = this.buffer.slice(match.index + match[0].length)
      const event = this.line(line)
      if (event !== null) out.push(event)
    }
    return out
  }

  private line (line: string): SseEvent | null {
    if (line === '') {
      if (!this.sawField) return null
      this.lastEventId = this.idBuffer
      const event = { event: this.event === '' ? 'message' : this.event, data: this.data.join('\n'), comment: false }
      this.event = ''
      this.data = []
      this.sawField = false
      return event
    }
    if (line.startsWith(':')) return { event: '', data: line.slice(1).trim(), comment: true }
    const colon = line.indexOf(':')
    const name = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (name === 'event') {
      this.event = value
      this.sawField = true
    } else if (name === 'data') {
      this.data.push(value)
      this.sawField = true
    } else if (name === 'id' && !value.includes('\0')) {
      this.idBuffer = value
      this.sawField = true
    }
    // `retry` matters to EventSource's reconnection timing, which this client does itself.
    return null
  }
}
