// The dry-run diff: hunks with context and line numbers, a new file against
// /dev/null, the cap on shown lines, and no diff of secrets in a dry-run.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { unifiedDiff, looksLikeText } from '../../lib/core/text-diff.mts';
import { writeFileAtomic } from '../../lib/core/fs.mts';
import { withRunContext } from '../../lib/core/context.mts';
import { tmpDir } from '../helpers/tmp.mts';

test('one changed line in the middle: one hunk with three lines of context and both line numbers', () => {
  const before = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
  const after = before.replace('line 5\n', 'line five\n');
  assert.is(
    unifiedDiff(before, after, '/etc/x'),
    ['--- a/etc/x', '+++ b/etc/x', '@@ -2,7 +2,7 @@', ' line 2', ' line 3', ' line 4', '-line 5', '+line five', ' line 6', ' line 7', ' line 8', ''].join('\n'),
  );
});

test('a new file is diffed against /dev/null; equal texts give nothing', () => {
  assert.is(unifiedDiff('', 'a\nb\n', '/etc/new'), '--- /dev/null\n+++ b/etc/new\n@@ -1,0 +1,2 @@\n+a\n+b\n');
  assert.is(unifiedDiff('same\n', 'same\n', '/etc/x'), '');
});

test('two distant changes are two hunks; the shown lines are capped and the rest counted', () => {
  const before = Array.from({ length: 40 }, (_, i) => `l${i}`).join('\n') + '\n';
  const after = before.replace('l2\n', 'L2\n').replace('l30\n', 'L30\n');
  const diff = unifiedDiff(before, after, '/f');
  assert.is(diff.split('\n').filter((l) => l.startsWith('@@')).length, 2);
  const capped = unifiedDiff(before, after, '/f', { maxLines: 5 });
  assert.match(capped, /… 12 more diff line\(s\)/);
});

test('binary data is not text', () => {
  assert.ok(looksLikeText(Buffer.from('héllo\n')));
  assert.not.ok(looksLikeText(Buffer.from([0x66, 0x00, 0x67])));
  assert.not.ok(looksLikeText(Buffer.from([0xff, 0xfe, 0x41])));
});

function captureStdout(fn: () => void): string {
  const chunks: string[] = [];
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  (process.stdout as any).write = (c: any) => (chunks.push(String(c)), true);
  (process.stderr as any).write = (c: any) => (chunks.push(String(c)), true);
  try {
    fn();
  } finally {
    (process.stdout as any).write = out;
    (process.stderr as any).write = err;
  }
  return chunks.join('');
}

test('a dry-run write shows the diff of a text file, and never of a file only root may read', () => {
  const dir = tmpDir('phoenix-diff-');
  const file = path.join(dir, 'exports');
  const secret = path.join(dir, 'token');
  fs.writeFileSync(file, '/a host(ro)\n');
  fs.writeFileSync(secret, 'old-value\n', { mode: 0o600 });
  const shown = captureStdout(() =>
    withRunContext({ dryRun: true }, () => {
      writeFileAtomic(file, '/a host(ro)\n/b host(rw)\n');
      writeFileAtomic(secret, 'new-value\n', { mode: 0o600 });
    }),
  );
  assert.match(shown, /\+\/b host\(rw\)/);
  assert.not.match(shown, /new-value|old-value/);
  assert.is(fs.readFileSync(file, 'utf8'), '/a host(ro)\n');
});

test.run();
