import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { configureLog, formatLine, guardProcessOutput, info, debug, warn, timestamp } from '../lib/log.mts';
import { addSecret, redact, clearSecrets } from '../lib/redact.mts';
import { tmpDir } from './helpers/tmp.mts';

const captured: string[] = [];
const dir = tmpDir();
const logFile = path.join(dir, 'nested', 'phoenix.log');

test.before.each(() => {
  captured.length = 0;
  clearSecrets();
  configureLog({ script: 'lxc-manager.sh', file: logFile, debug: false, color: false, write: (l) => captured.push(l) });
});

test('lines follow the upstream format: timestamp, level, script, message', () => {
  const line = formatLine('INFO', 'hello', 'phoenix-cli', new Date(2025, 0, 2, 3, 4, 5));
  assert.is(line, '2025-01-02 03:04:05 [INFO] phoenix-cli: hello');
  assert.match(timestamp(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
});

test('each line goes to the terminal writer and is appended to the log file', () => {
  info('first');
  warn('second');
  assert.is(captured.length, 2);
  assert.match(captured[0]!, /\[INFO\] lxc-manager\.sh: first\n$/);
  const file = fs.readFileSync(logFile, 'utf8').trim().split('\n');
  assert.match(file.at(-2)!, /\[INFO\] lxc-manager\.sh: first$/);
  assert.match(file.at(-1)!, /\[WARN\] lxc-manager\.sh: second$/);
});

test('DEBUG is silent unless enabled', () => {
  debug('hidden');
  assert.is(captured.length, 0);
  configureLog({ debug: true });
  debug('shown');
  assert.is(captured.length, 1);
});

test('colour goes to a terminal only, never into the file', () => {
  configureLog({ color: true });
  info('coloured');
  assert.match(captured[0]!, /\x1b\[0;32m/);
  const last = fs.readFileSync(logFile, 'utf8').trim().split('\n').at(-1)!;
  assert.not.match(last, /\x1b/);
});

test('secrets are masked on the terminal and in the file', () => {
  addSecret('S3cret!Pass');
  info('login with S3cret!Pass then {"admin_password": "hunter22"} and Authorization: Bearer abc.def');
  const out = captured.join('');
  assert.not.match(out, /S3cret!Pass|hunter22|abc\.def/);
  assert.not.match(fs.readFileSync(logFile, 'utf8'), /S3cret!Pass|hunter22/);
});

test('redaction covers private keys, key=value secrets and swarm tokens', () => {
  const pem = '-----BEGIN PRIVATE KEY-----\nMIIEv\nabc\n-----END PRIVATE KEY-----';
  assert.not.match(redact(`key: ${pem}`), /MIIEv/);
  assert.not.match(redact('docker swarm join --token SWMTKN-1-abc123-def456 10.0.0.1'), /abc123/);
  assert.is(redact('password=hunter22 user=root'), 'password=*** user=root');
  assert.is(redact('nothing to hide here'), 'nothing to hide here');
});

test('an unwritable log file warns once and logging goes on', () => {
  const blocker = path.join(dir, 'blocker');
  fs.writeFileSync(blocker, '');
  configureLog({ file: path.join(blocker, 'cannot', 'be.log') });
  info('one');
  info('two');
  const warnings = captured.filter((l) => l.includes('cannot append to log file'));
  assert.is(warnings.length, 1);
  assert.ok(captured.some((l) => l.includes('two')));
});

test('a guarded stream masks whatever is written to it, strings and buffers', () => {
  const written: string[] = [];
  const stream = { write: (chunk: unknown) => written.push(String(chunk)) > 0 } as unknown as NodeJS.WriteStream;
  guardProcessOutput([stream]);
  guardProcessOutput([stream]);
  addSecret('table-Secret-0042');
  stream.write('NAME  ENV\nweb  KEY=table-Secret-0042\n');
  stream.write(Buffer.from('again table-Secret-0042\n'));
  assert.equal(written, ['NAME  ENV\nweb  KEY=***\n', 'again ***\n']);
});

test.run();
