// Duration strings in config ("500ms", "90s", "5m", "8h", "7d") → seconds.
// A bare number is refused on purpose: "ttl: 3600" reads as seconds to some and ms to others.

const UNIT_SECONDS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 } as const;
const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/** Parses a duration string; returns seconds, or undefined when it is not one. */
export function parseDuration(value: string): number | undefined {
  const match = DURATION.exec(value.trim());
  if (!match) return undefined;
  const [, amount, unit] = match as unknown as [string, string, keyof typeof UNIT_SECONDS];
  // Divide for ms: 1001 * 0.001 is 1.0010000000000001, 1001 / 1000 is exactly the nearest double.
  return unit === 'ms' ? Number(amount) / 1000 : Number(amount) * UNIT_SECONDS[unit];
}

/** Formats seconds back into the shortest exact duration string (for messages). */
export function formatDuration(seconds: number): string {
  if (!Number.isInteger(seconds)) return `${Math.round(seconds * 1000)}ms`;
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
