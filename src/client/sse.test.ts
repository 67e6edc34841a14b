import { describe, expect, it } from 'vitest';

import { createSseParser } from './sse.ts';
import type { ServerSentEvent } from './sse.ts';

function parse(chunks: string[]): { events: ServerSentEvent[]; retries: number[] } {
  const events: ServerSentEvent[] = [];
  const retries: number[] = [];
  const parser = createSseParser({ onEvent: (e) => events.push(e), onRetry: (ms) => retries.push(ms) });
  for (const chunk of chunks) parser.push(chunk);
  return { events, retries };
}

describe('SSE parser', () => {
  it('reads retry, comments, ids, named events and multi-line data', () => {
    const { events, retries } = parse(['retry: 2000\n\n: keep-alive\n\nid: 1-0\nevent: revocation\ndata: {"a":1}\n\n', 'data: x\ndata: y\n\n']);
    expect(retries).toEqual([2000]);
    expect(events).toEqual([
      { event: 'revocation', data: '{"a":1}', lastEventId: '1-0' },
      // The last event id persists; the type does not.
      { event: 'message', data: 'x\ny', lastEventId: '1-0' },
    ]);
  });

  it('handles CRLF and CR line ends split across chunks, and lines split anywhere', () => {
    const { events } = parse(['id: 7-1\r', '\nevent: revocation\rdata: {"b"', ':2}\r\n', '\r\n']);
    expect(events).toEqual([{ event: 'revocation', data: '{"b":2}', lastEventId: '7-1' }]);
  });

  it('ignores events without data, ids with NUL, and non-numeric retry', () => {
    const { events, retries } = parse(['event: revocation\n\nid: a\0b\nretry: 2s\ndata: z\n\n']);
    expect(retries).toEqual([]);
    expect(events).toEqual([{ event: 'message', data: 'z', lastEventId: '' }]);
  });

  it('refuses an endless line', () => {
    const parser = createSseParser({ onEvent: () => undefined });
    expect(() => parser.push('x'.repeat((1 << 20) + 1))).toThrow('longer than 1 MiB');
  });
});
