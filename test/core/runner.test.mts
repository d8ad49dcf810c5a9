import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { run, query, recordedCommands, spawnCount, formatCommand, proxmoxLockRetry } from '../../lib/core/runner.mts';
import { isDryRun, setProcessContext, withRunContext } from '../../lib/core/context.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { configureLog } from '../../lib/core/log.mts';
import { CommandError } from '../../lib/core/errors.mts';
import { tmpDir, writeExecutable } from '../helpers/tmp.mts';

const dir = tmpDir();
const logLines: string[] = [];
configureLog({ script: 'runner-test', file: undefined, color: false, write: (l) => logLines.push(l) });

test.before.each(() => {
  setProcessContext({ dryRun: false, recordFile: undefined, timeoutMs: 10_000 });
  logLines.length = 0;
});

test('runs an argument vector without a shell and captures output', async () => {
  const result = await run({ cmd: 'printf', args: ['%s|', 'a b', '$HOME', "it's"], mutating: false });
  assert.is(result.code, 0);
  assert.is(result.stdout, "a b|$HOME|it's|");
});

test('a failing command throws CommandError carrying its exit status and stderr', async () => {
  try {
    await run({ cmd: 'bash', args: ['-c', 'echo boom >&2; exit 7'] });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, CommandError);
    assert.is((err as CommandError).exitCode, 7);
    assert.match((err as Error).message, /boom/);
  }
});

test('allowFailure returns the result instead of throwing', async () => {
  const result = await run({ cmd: 'bash', args: ['-c', 'exit 3'], allowFailure: true });
  assert.is(result.code, 3);
});

test('a missing executable is exit 127, like the shell', async () => {
  const result = await run({ cmd: 'phoenix-no-such-command', allowFailure: true });
  assert.is(result.code, 127);
});

test('stdin input reaches the child and is recorded only by size', async () => {
  const before = recordedCommands().length;
  const result = await run({ cmd: 'cat', input: 'secret-script-body', mutating: false });
  assert.is(result.stdout, 'secret-script-body');
  const entry = recordedCommands()[before]!;
  assert.is(entry.stdinBytes, 18);
  assert.not.match(JSON.stringify(entry), /secret-script-body/);
});

test('dry-run skips mutating commands, prints them, and still runs queries', async () => {
  setProcessContext({ dryRun: true });
  const marker = path.join(dir, 'dry-marker');
  const skipped = await run({ cmd: 'touch', args: [marker] });
  assert.ok(skipped.skipped);
  assert.not.ok(fs.existsSync(marker));
  assert.ok(logLines.some((l) => l.includes(`DRY-RUN: would run: touch ${marker}`)));
  const read = await query({ cmd: 'echo', args: ['still runs'] });
  assert.is(read.stdout.trim(), 'still runs');
});

test('every command is recorded to the record file with secrets masked', async () => {
  const recordFile = path.join(dir, 'record.jsonl');
  setProcessContext({ recordFile });
  await run({ cmd: 'echo', args: ['--password=hunter22', 'visible'], mutating: false });
  await run({ cmd: 'true', secrets: ['visible'] });
  const lines = fs.readFileSync(recordFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.is(lines.length, 2);
  assert.equal(lines[0].args, ['--password=***', 'visible']);
  assert.is(lines[0].mutating, false);
  assert.is(lines[1].cmd, 'true');
  assert.not.match(fs.readFileSync(recordFile, 'utf8'), /hunter22/);
});

test('a command over its time limit is killed and reported as timed out (124)', async () => {
  const started = Date.now();
  try {
    await run({ cmd: 'sleep', args: ['5'], timeoutMs: 200 });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, CommandError);
    assert.ok((err as CommandError).timedOut);
    assert.is((err as CommandError).exitCode, 124);
  }
  assert.ok(Date.now() - started < 3000);
});

test('Proxmox lock time-outs are retried, other failures are not', async () => {
  const counter = path.join(dir, 'attempts');
  fs.writeFileSync(counter, '0');
  const fake = writeExecutable(dir, 'bin/pct', `#!/usr/bin/env bash
n=$(( $(cat "${counter}") + 1 )); echo $n > "${counter}"
if [ "$n" -lt 3 ]; then echo "trying to acquire lock..." >&2; echo "can't lock file '/run/lock/lxc/pve-config-101.lock' - got timeout" >&2; exit 255; fi
echo ok
`);
  const retry = { ...proxmoxLockRetry({ PHOENIX_PVE_LOCK_RETRIES: '3', PHOENIX_PVE_LOCK_DELAY_MS: '10' }) };
  const result = await run({ cmd: fake, args: ['set', '101'], retry });
  assert.is(result.stdout.trim(), 'ok');
  assert.is(fs.readFileSync(counter, 'utf8').trim(), '3');

  fs.writeFileSync(counter, '0');
  const other = writeExecutable(dir, 'bin/other', `#!/usr/bin/env bash
n=$(( $(cat "${counter}") + 1 )); echo $n > "${counter}"; echo "unable to parse" >&2; exit 255
`);
  await run({ cmd: other, retry, allowFailure: true });
  assert.is(fs.readFileSync(counter, 'utf8').trim(), '1');
});

test('lock retries give up after the configured attempts', async () => {
  const always = writeExecutable(dir, 'bin/locked', `#!/usr/bin/env bash
echo "can't lock file '/var/lock/qemu-server/lock-1001.conf' - got timeout" >&2; exit 255
`);
  const retry = proxmoxLockRetry({ PHOENIX_PVE_LOCK_RETRIES: '2', PHOENIX_PVE_LOCK_DELAY_MS: '1' });
  const before = recordedCommands().length;
  const result = await run({ cmd: always, retry, allowFailure: true });
  assert.is(result.code, 255);
  assert.is(recordedCommands().length - before, 2);
});

test('spawn count grows by one per command: no shell in between', async () => {
  const before = spawnCount();
  await run({ cmd: 'true' });
  await run({ cmd: 'true' });
  assert.is(spawnCount() - before, 2);
  // zx starts commands through bash, which execs a single command in place: its parent is this process.
  const parent = await query({ cmd: 'sh', args: ['-c', 'echo $PPID'] });
  assert.is(Number(parent.stdout.trim()), process.pid);
});

test('hostile arguments reach a real program byte for byte', async () => {
  const hostile = ["it's", '"double"', '$(touch /tmp/phoenix-pwned)', '`id`', 'a;b', 'a && b', 'line1\nline2', '', ' lead and trail ', 'tab\there', 'back\\slash', '$HOME', '!event', '*', '~', '-n', 'ümlaut ☃', '\u00e9\u0301', "'", "\\'"];
  const result = await query({ cmd: process.execPath, args: ['-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', ...hostile] });
  assert.equal(JSON.parse(result.stdout), hostile);
  assert.not.ok(fs.existsSync('/tmp/phoenix-pwned'));
});

test('a command without input gets no stdin: cat ends at once instead of waiting for its time limit', async () => {
  const started = Date.now();
  const result = await query({ cmd: 'cat', timeoutMs: 5000 });
  assert.is(result.code, 0);
  assert.is(result.stdout, '');
  assert.ok(Date.now() - started < 2000, `cat took ${Date.now() - started} ms`);
});

test('a time limit ends the whole process tree: TERM, then KILL for what ignores it', async () => {
  const pids = path.join(dir, 'tree-pids');
  const script = `trap '' TERM; sleep 30 & echo $! > ${pids}; wait`;
  const started = Date.now();
  // Long enough for bash to have started its child on a loaded machine; bash ignores TERM, so KILL follows 2 s later.
  const result = await run({ cmd: 'bash', args: ['-c', script], timeoutMs: 1500, allowFailure: true });
  assert.is(result.code, 124);
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  const grandchild = Number(fs.readFileSync(pids, 'utf8').trim());
  await new Promise((r) => setTimeout(r, 100));
  // Killed but not yet reaped (its parent died too, and whoever adopts it reaps when it gets to it) counts as gone.
  let state = 'gone';
  try {
    const stat = fs.readFileSync(`/proc/${grandchild}/stat`, 'utf8');
    state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    state = 'gone';
  }
  assert.ok(state === 'gone' || state === 'Z', `the grandchild ${grandchild} outlived the time limit (state ${state})`);
});

test('run contexts do not leak between work done at the same time', async () => {
  const made = path.join(dir, 'made-for-real');
  const planned = path.join(dir, 'only-planned');
  const tick = () => new Promise((r) => setTimeout(r, 5));
  await Promise.all([
    withRunContext({ dryRun: true, guest: '101' }, async () => {
      await tick();
      assert.ok(isDryRun());
      await run({ cmd: 'touch', args: [planned] });
    }),
    withRunContext({ dryRun: false, guest: '102' }, async () => {
      await tick();
      assert.not.ok(isDryRun());
      await run({ cmd: 'touch', args: [made] });
    }),
  ]);
  assert.ok(fs.existsSync(made));
  assert.not.ok(fs.existsSync(planned));
  assert.not.ok(isDryRun(), 'outside both scopes the process context holds');
});

test('only the runner holds zx, and no module starts processes by itself', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.mts')) {
        const text = fs.readFileSync(file, 'utf8');
        const rel = path.relative(PROJECT_ROOT, file);
        if (rel !== path.join('lib', 'core', 'runner.mts') && /(from|import\(|require\()\s*['"]zx(\/[a-z]+)?['"]|'zx\/core'/.test(text)) offenders.push(`${rel}: imports zx`);
        if (/['"](node:)?child_process['"]/.test(text)) offenders.push(`${rel}: imports child_process`);
      }
    }
  };
  walk(path.join(PROJECT_ROOT, 'lib'));
  walk(path.join(PROJECT_ROOT, 'scripts'));
  assert.equal(offenders, []);
});

test('formatCommand quotes only what needs quoting', () => {
  assert.is(formatCommand('pct', ['set', '101', '--memory', '2048']), 'pct set 101 --memory 2048');
  assert.is(formatCommand('pct', ['exec', '101', '--', 'echo', "it's here"]), `pct exec 101 -- echo 'it'\\''s here'`);
  assert.is(formatCommand('x', ['']), "x ''");
});

test.run();
