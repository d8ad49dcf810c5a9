import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommandError, ConfigError, CycleError, LockBusyError, PhoenixError, UsageError, exitCodeFor } from '../../lib/core/errors.mts';

test('fatal errors exit 1 like log_fatal', () => {
  assert.is(exitCodeFor(new PhoenixError('x')), 1);
  assert.is(exitCodeFor(new UsageError('x')), 1);
  assert.is(exitCodeFor(new ConfigError('/f.json', '/a/b', 'expected integer')), 1);
  assert.is(exitCodeFor(new CycleError(['1', '2', '1'])), 1);
  assert.is(exitCodeFor(new Error('plain')), 1);
});

test('a failed command passes its own status through, as set -e did', () => {
  const err = new CommandError({ command: 'pct start 101', status: 255, stdout: '', stderr: 'CT 101 already running' });
  assert.is(exitCodeFor(err), 255);
  assert.match(err.message, /pct start 101' failed with exit code 255: CT 101 already running/);
});

test('time-outs and signals get the conventional codes', () => {
  assert.is(exitCodeFor(new CommandError({ command: 'sleep 9', status: null, stdout: '', stderr: '', timedOut: true })), 124);
  assert.is(exitCodeFor(new CommandError({ command: 'x', status: null, stdout: '', stderr: '', signal: 'SIGTERM' })), 143);
});

test('config errors name the file and the JSON pointer', () => {
  const err = new ConfigError('/etc/lxc.json', '/lxc_configs/101/memory_mb', 'expected integer');
  assert.is(err.message, '/etc/lxc.json at /lxc_configs/101/memory_mb: expected integer');
});

test('a busy lock exits 75 and says who holds it', () => {
  const err = new LockBusyError('/run/phoenix.lock', 'pid 42');
  assert.is(exitCodeFor(err), 75);
  assert.match(err.message, /pid 42/);
});

test.run();
