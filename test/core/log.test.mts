import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chalkFor, chalkWith, colourWanted, configureLog, formatLine, guardProcessOutput, info, debug, warn, error, timestamp } from '../../lib/core/log.mts';
import { addSecret, redact, clearSecrets } from '../../lib/core/redact.mts';
import { clearConfigCache, loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { guestGraph } from '../../lib/config/guests.mts';
import { formatStatusTable } from '../../lib/pve/guest-status.mts';
import { formatSummary, type StageReport } from '../../lib/sync/engine.mts';
import { tmpDir } from '../helpers/tmp.mts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ESC = /\x1b/;
const stripAnsi = (text: string): string => text.replace(/\x1b\[[0-9;]*m/g, '');

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
  warn('careful');
  assert.match(captured[0]!, /^\x1b\[32m\d{4}-.* \[INFO\] lxc-manager\.sh: coloured\x1b\[39m\n$/);
  assert.match(captured[1]!, /^\x1b\[1m\x1b\[33m.*\[WARN\] lxc-manager\.sh: careful\x1b\[39m\x1b\[22m\n$/);
  const file = fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-2);
  assert.not.match(file.join('\n'), ESC);
  assert.equal(captured.map(stripAnsi), file.map((line) => `${line}\n`), 'the same text under the colour');
});

test('without colour a terminal line is the log file line, byte for byte, in the bash format', () => {
  for (const level of ['INFO', 'WARN', 'ERROR', 'DEBUG'] as const) {
    captured.length = 0;
    configureLog({ debug: true });
    ({ INFO: info, WARN: warn, ERROR: error, DEBUG: debug })[level](`plain ${level}`);
    const line = fs.readFileSync(logFile, 'utf8').trim().split('\n').at(-1)!;
    assert.is(captured.join(''), `${line}\n`);
    assert.match(line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[(INFO|WARN|ERROR|DEBUG)\] lxc-manager\.sh: plain \w+$/);
  }
});

test('the colour rule: a terminal, and NO_COLOR unset or empty', () => {
  assert.ok(colourWanted({ isTTY: true }, {}));
  assert.ok(colourWanted({ isTTY: true }, { NO_COLOR: '' }), 'an empty NO_COLOR counts as unset (no-color.org)');
  assert.not.ok(colourWanted({ isTTY: true }, { NO_COLOR: '1' }));
  assert.not.ok(colourWanted({ isTTY: false }, {}));
  assert.not.ok(colourWanted({}, { FORCE_COLOR: '3' }), 'chalk\'s own FORCE_COLOR does not override the rule');
  assert.is(chalkWith(false).red('x'), 'x');
  assert.is(chalkWith(true).red('x'), '\x1b[31mx\x1b[39m');
  assert.is(chalkFor({ isTTY: false }).bold.red('x'), 'x');
});

/** Run a script that logs one WARN line with the default settings; under a pseudo-terminal when `terminal`. */
function logFromProcess(terminal: boolean, env: Record<string, string>): { output: string; file: string } {
  const work = tmpDir('phoenix-log-colour-');
  const file = path.join(work, 'main.log');
  const script = path.join(work, 'child.mjs');
  fs.writeFileSync(script, `import { configureLog, warn } from ${JSON.stringify(path.join(ROOT, 'lib', 'core', 'log.mjs'))};\nconfigureLog({ script: 'colour-check', file: ${JSON.stringify(file)} });\nwarn('watch this');\n`);
  const childEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env };
  // script(1) gives the child a real terminal on stdin, stdout and stderr.
  const result = terminal
    ? spawnSync('script', ['-qec', `${process.execPath} ${script}`, '/dev/null'], { env: childEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
    : spawnSync(process.execPath, [script], { env: childEnv, encoding: 'utf8', timeout: 30_000 });
  assert.is(result.status, 0, `${result.error ?? ''}${result.stderr}`);
  return { output: terminal ? result.stdout.replace(/\r\n/g, '\n') : result.stderr, file: fs.readFileSync(file, 'utf8') };
}

test('a real process: coloured on a terminal, plain through a pipe and with NO_COLOR, never in the file', () => {
  const onTerminal = logFromProcess(true, {});
  assert.match(onTerminal.output, /\x1b\[1m\x1b\[33m.*\[WARN\] colour-check: watch this\x1b\[39m\x1b\[22m\n$/);
  assert.is(stripAnsi(onTerminal.output), onTerminal.file);
  for (const { terminal, env } of [{ terminal: false, env: {} }, { terminal: true, env: { NO_COLOR: '1' } }, { terminal: false, env: { FORCE_COLOR: '3' } }]) {
    const { output, file } = logFromProcess(terminal, env);
    assert.not.match(output, ESC, JSON.stringify({ terminal, env }));
    assert.is(output, file, 'stderr holds the log file line, byte for byte');
    assert.match(file, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[WARN\] colour-check: watch this\n$/);
  }
});

test('the status table: plain unless its chalk colours, and the same text either way', () => {
  clearConfigCache();
  const config = loadConfig(resolveConfigPaths({}, { PHOENIX_BASE_DIR: ROOT }));
  const states = new Map([['900', 'stopped'], ['101', 'running'], ['1002', 'absent']] as const);
  const plain = [
    'ID    KIND  NAME           STATE',
    '900   lxc   base-template  template',
    '101   lxc   nginx-gateway  running',
    '1002  vm    worker-1       absent',
    '',
  ].join('\n');
  const ids = ['900', '101', '1002'];
  assert.is(formatStatusTable(guestGraph(config), config, ids, states), plain, 'stdout is no terminal here');
  assert.is(formatStatusTable(guestGraph(config), config, ids, states, chalkWith(false)), plain);
  const coloured = formatStatusTable(guestGraph(config), config, ids, states, chalkWith(true));
  assert.is(stripAnsi(coloured), plain);
  assert.ok(coloured.includes('\x1b[32mrunning\x1b[39m') && coloured.includes('\x1b[31mabsent\x1b[39m') && coloured.startsWith('\x1b[1mID'));
});

test('the sync summary: plain unless its chalk colours, and the same text either way', () => {
  const reports: StageReport[] = [
    { id: 'dns', title: 'DNS', status: 'unchanged', detail: '', ms: 1200 },
    { id: 'firewall', title: 'firewall', status: 'changed', detail: 'cluster.fw', ms: 300 },
    { id: 'swarm', title: 'swarm', status: 'failed', detail: 'exit 3', command: 'swarm-manager.sh init', ms: 50 },
    { id: 'stacks', title: 'application stacks', status: 'skipped', detail: "'swarm' failed", ms: 0 },
  ];
  const plain = [
    '',
    'stage               result     time   details',
    '------------------  ---------  -----  -------',
    'DNS                 unchanged  1.2 s',
    'firewall            changed    0.3 s  cluster.fw',
    'swarm               failed     0.1 s  exit 3 [swarm-manager.sh init]',
    "application stacks  skipped    0.0 s  'swarm' failed",
    '',
    '',
  ].join('\n');
  assert.is(formatSummary(reports), plain, 'stdout is no terminal here');
  assert.is(formatSummary(reports, false, chalkWith(false)), plain);
  const coloured = formatSummary(reports, false, chalkWith(true));
  assert.is(stripAnsi(coloured), plain);
  assert.ok(coloured.includes('\x1b[32munchanged\x1b[39m  1.2 s\n') && coloured.includes('\x1b[31mfailed\x1b[39m   '), coloured);
  assert.is(stripAnsi(formatSummary(reports, true, chalkWith(true))), formatSummary(reports, true, chalkWith(false)));
  assert.match(formatSummary(reports, true), /firewall {12}would change  0\.3 s/);
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
