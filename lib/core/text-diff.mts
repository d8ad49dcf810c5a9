// A unified diff of two small texts, for dry-runs: the operator sees what a
// file would become, not only that it would be written. Line-based, from
// the longest common subsequence; files too large for that (above a few
// thousand lines each) are summarised by their line counts instead.

const MAX_CELLS = 4_000_000;

type Op = { kind: ' ' | '-' | '+'; line: string };

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function diffOps(a: readonly string[], b: readonly string[]): Op[] | undefined {
  const n = a.length;
  const m = b.length;
  if ((n + 1) * (m + 1) > MAX_CELLS) return undefined;
  // lcs[i][j]: length of the LCS of a[i..] and b[j..], one flat array.
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] = a[i] === b[j] ? lcs[(i + 1) * width + j + 1]! + 1 : Math.max(lcs[(i + 1) * width + j]!, lcs[i * width + j + 1]!);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i]! });
      i++;
      j++;
    } else if (lcs[(i + 1) * width + j]! >= lcs[i * width + j + 1]!) ops.push({ kind: '-', line: a[i++]! });
    else ops.push({ kind: '+', line: b[j++]! });
  }
  while (i < n) ops.push({ kind: '-', line: a[i++]! });
  while (j < m) ops.push({ kind: '+', line: b[j++]! });
  return ops;
}

/**
 * `--- a/<label>` / `+++ b/<label>` and the changed hunks with `context`
 * lines around them; at most `maxLines` lines of hunks (then a count of the
 * rest). Empty when the texts are equal.
 */
export function unifiedDiff(before: string, after: string, label: string, { context = 3, maxLines = 120 } = {}): string {
  if (before === after) return '';
  const a = splitLines(before);
  const b = splitLines(after);
  const ops = diffOps(a, b);
  const header = [`--- ${before === '' ? '/dev/null' : `a${label}`}`, `+++ b${label}`];
  if (ops === undefined) return [...header, `@@ ${a.length} lines -> ${b.length} lines (too large to show) @@`].join('\n') + '\n';

  const changed = ops.map((op, index) => (op.kind === ' ' ? -1 : index)).filter((index) => index >= 0);
  const hunks: Array<[number, number]> = [];
  for (const index of changed) {
    const start = Math.max(0, index - context);
    const end = Math.min(ops.length, index + context + 1);
    const last = hunks[hunks.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else hunks.push([start, end]);
  }
  const out: string[] = [];
  let shown = 0;
  let hidden = 0;
  for (const [start, end] of hunks) {
    // Line numbers of the hunk's first line in each text.
    let oldLine = 1;
    let newLine = 1;
    for (const op of ops.slice(0, start)) {
      if (op.kind !== '+') oldLine++;
      if (op.kind !== '-') newLine++;
    }
    const body = ops.slice(start, end);
    const oldCount = body.filter((op) => op.kind !== '+').length;
    const newCount = body.filter((op) => op.kind !== '-').length;
    const lines = [`@@ -${oldLine},${oldCount} +${newLine},${newCount} @@`, ...body.map((op) => `${op.kind}${op.line}`)];
    for (const line of lines) {
      if (shown < maxLines) {
        out.push(line);
        shown++;
      } else hidden++;
    }
  }
  if (hidden > 0) out.push(`… ${hidden} more diff line(s)`);
  return [...header, ...out].join('\n') + '\n';
}

/** Whether a buffer is text worth diffing (valid UTF-8 without NUL bytes). */
export function looksLikeText(data: Buffer): boolean {
  if (data.includes(0)) return false;
  return Buffer.from(data.toString('utf8'), 'utf8').equals(data);
}
