// Stream entry ids (`<milliseconds>-<sequence>`, as Redis XADD makes them): parsing and order.
// The revocation feed uses them as cursors, so both stores and the feed agree on one syntax.

const STREAM_ID = /^(\d{1,16})-(\d{1,16})$/;

/** Whether `value` is a complete stream id such as `1700000000000-0`. */
export function isStreamId(value: string): boolean {
  const match = STREAM_ID.exec(value);
  return match !== null && Number.isSafeInteger(Number(match[1])) && Number.isSafeInteger(Number(match[2]));
}

/** Negative, zero or positive as `a` comes before, equals or follows `b` (both valid ids). */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}
