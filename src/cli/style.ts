// Readable CLI output: colours and progress lines only for a person at a terminal (`color`: stdout
// is a TTY and NO_COLOR is unset, https://no-color.org); pipes and CI logs get plain text, so
// scripts can grep it. Progress goes to stderr, results to stdout.
export interface Style {
  ok(text: string): string;
  fail(text: string): string;
  warn(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const paint = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;

export function createStyle(color: boolean): Style {
  if (!color) {
    const plain = (text: string) => text;
    return { ok: plain, fail: plain, warn: plain, dim: plain, bold: plain };
  }
  return { ok: paint(32, 39), fail: paint(31, 39), warn: paint(33, 39), dim: paint(2, 22), bold: paint(1, 22) };
}

/** Whether a CLI run talks to a person at a terminal. */
export const colorFor = (stream: { isTTY?: boolean }, env: Readonly<Record<string, string | undefined>>) =>
  Boolean(stream.isTTY) && !env.NO_COLOR;

/**
 * Runs slow work with a progress line on stderr (`label …` then `label … done in 1.2 s`) when a
 * person watches; silent otherwise.
 */
export async function withProgress<T>(label: string, io: { stderr: (line: string) => void; color?: boolean }, work: () => Promise<T>): Promise<T> {
  if (!io.color) return work();
  const style = createStyle(true);
  const started = Date.now();
  io.stderr(style.dim(`${label} …`));
  try {
    const result = await work();
    io.stderr(style.dim(`${label} … done in ${((Date.now() - started) / 1000).toFixed(1)} s`));
    return result;
  } catch (error) {
    io.stderr(style.fail(`${label} … failed`));
    throw error;
  }
}
