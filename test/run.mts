// Runs every compiled test file (test/**/*.test.mjs) in its own Node
// process, two at a time, and ends with the one line CI reads:
//   N passed, N failed
// A file per process keeps environment changes (dry-run, paths) from
// leaking between suites. A file that dies before uvu's summary counts as
// one failure, so a crash can never look like a pass.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const testDir = path.dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const perFileTimeoutMs = 5 * 60_000;

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'fixtures' && entry.name !== 'node_modules') out.push(...findTests(full));
    else if (entry.name.endsWith('.test.mjs')) out.push(full);
  }
  return out.sort();
}

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  output: string;
  ms: number;
}

function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n[test runner] ${path.basename(file)} exceeded ${perFileTimeoutMs / 1000} s; killed\n`;
      child.kill('SIGKILL');
    }, perFileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const clean = output.replace(/\x1b\[[0-9;]*m/g, '');
      const total = Number(/Total:\s+(\d+)/.exec(clean)?.[1] ?? NaN);
      const passed = Number(/Passed:\s+(\d+)/.exec(clean)?.[1] ?? NaN);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(clean)?.[1] ?? 0);
      let result: FileResult;
      if (Number.isNaN(total) || Number.isNaN(passed)) {
        result = { file, passed: 0, failed: 1, skipped: 0, output: `${output}\n[test runner] no uvu summary (exit ${code})\n`, ms: Date.now() - started };
      } else {
        // uvu's Total counts the tests that ran; skipped ones are apart from it.
        const failed = total - passed + (code !== 0 && total === passed ? 1 : 0);
        result = { file, passed, failed, skipped, output, ms: Date.now() - started };
      }
      resolve(result);
    });
  });
}

const files = findTests(testDir).filter((f) => filters.length === 0 || filters.some((flt) => f.includes(flt)));
if (files.length === 0) {
  console.log('no test files found (did `make build` run?)');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const concurrency = Math.min(Math.max(2, os.availableParallelism?.() ?? 2), 4);
const results: FileResult[] = [];
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(concurrency, files.length) }, async () => {
    while (next < files.length) {
      const file = files[next++] as string;
      const result = await runFile(file);
      results.push(result);
      const name = path.relative(testDir, file);
      const mark = result.failed ? 'FAIL' : 'ok  ';
      process.stdout.write(`${mark} ${name}  (${result.passed} passed, ${result.failed} failed, ${(result.ms / 1000).toFixed(1)} s)\n`);
      if (result.failed || process.env.TEST_VERBOSE) process.stdout.write(`${result.output.trimEnd()}\n`);
    }
  }),
);

const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const skipped = results.reduce((n, r) => n + r.skipped, 0);
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(failed > 0 ? 1 : 0);
