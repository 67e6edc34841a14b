// An incremental parser for the text/event-stream format (HTML Living Standard §9.2.6 "Interpreting
// an event stream"): lines end in CRLF, LF or CR; `:` starts a comment (keep-alives); fields
// `event`, `data` (joined with LF), `id` (the last event id persists across events; one holding
// NUL is ignored) and `retry` (digits only); a blank line dispatches an event that has data.

const MAX_LINE = 1 << 20;

export interface ServerSentEvent {
  /** The event type; "message" when the stream named none. */
  event: string;
  data: string;
  /** The last event id in effect when this event was dispatched. */
  lastEventId: string;
}

export interface SseParser {
  push(chunk: string): void;
}

export function createSseParser(handlers: { onEvent(event: ServerSentEvent): void; onRetry?(milliseconds: number): void }): SseParser {
  let buffer = '';
  let pendingCr = false;
  let data: string[] = [];
  let type = '';
  let lastEventId = '';

  function line(text: string): void {
    if (text === '') {
      if (data.length > 0) handlers.onEvent({ event: type || 'message', data: data.join('\n'), lastEventId });
      data = [];
      type = '';
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event': type = value; break;
      case 'data': data.push(value); break;
      case 'id': if (!value.includes('\0')) lastEventId = value; break;
      case 'retry': if (/^\d+$/.test(value)) handlers.onRetry?.(Number(value)); break;
      default: break;
    }
  }

  return {
    push(chunk) {
      let text = chunk;
      // A CR that ended the previous chunk already ended its line; a LF right after it belongs to it.
      if (pendingCr && text.startsWith('\n')) text = text.slice(1);
      pendingCr = false;
      buffer += text;
      let start = 0;
      for (let i = 0; i < buffer.length; i += 1) {
        const c = buffer[i];
        if (c !== '\n' && c !== '\r') continue;
        line(buffer.slice(start, i));
        if (c === '\r') {
          if (i + 1 === buffer.length) pendingCr = true;
          else if (buffer[i + 1] === '\n') i += 1;
        }
        start = i + 1;
      }
      buffer = buffer.slice(start);
      if (buffer.length > MAX_LINE) throw new Error('the event stream sent a line longer than 1 MiB');
    },
  };
}
