// lib/core/args.mts, the declared command line every script reads through
// minimist, and runMain's use of it: --help, usage errors with the declared
// exit status, `--`, ids that look like numbers, repeated flags, positionals
// and subcommands.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { defineArgs, parseArgs, type ArgSpec, type ParsedArgs } from '../../lib/core/args.mts';
import { UsageError } from '../../lib/core/errors.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { tmpDir } from '../helpers/tmp.mts';

const FEATURE = defineArgs({
  name: 'feature.sh',
  usage: 'Usage: feature.sh <CTID> [bootstrap_ca_url] [--dry-run]\n\nmore text\n',
  dryRun: true,
  usageExitCode: 2,
  flags: { env: { type: 'string' }, tag: { type: 'string', repeatable: true }, force: { type: 'boolean' } },
  positionals: [
    { name: 'ctid', missing: 'missing CTID', check: (id) => (/^\d+$/.test(id) ? undefined : `'${id}' is not a container id`) },
    { name: 'url', optional: true },
  ],
});

const MANAGER = defineArgs({
  name: 'manager.sh',
  usage: 'Usage: manager.sh <action> <id> [--dry-run]\n',
  dryRun: true,
  flags: { purge: { type: 'boolean', only: ['delete'] }, config: { type: 'string', needs: 'a file' } },
  commands: {
    create: { positionals: [{ name: 'id', missing: (action) => `'${action}' needs an id` }] },
    delete: { positionals: [{ name: 'id' }] },
    status: { positionals: [{ name: 'ids', variadic: true }] },
    init: { extra: 'ignore' },
    swarm: { forward: true, positionals: [{ name: 'words', variadic: true }] },
  },
  invalidCommand: (action) => `Invalid action '${action ?? ''}'`,
});

function parsed<S extends ArgSpec>(spec: S, argv: string[]): ParsedArgs<S> {
  const result = parseArgs(spec, argv);
  if (result.help) throw new Error(`unexpected --help for ${argv.join(' ')}`);
  return result;
}

function refusal(spec: ArgSpec, argv: string[]): UsageError {
  try {
    parseArgs(spec, argv);
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

test('--help and -h ask for the usage, wherever they stand, even beside an unknown flag', () => {
  for (const argv of [['--help'], ['-h'], ['101', '--help'], ['--bogus', '-h']]) assert.equal(parseArgs(FEATURE, argv), { help: true }, argv.join(' '));
  assert.equal(parseArgs(MANAGER, ['create', '--help']), { help: true });
  assert.is(parsed(FEATURE, ['101']).help, false);
});

test('an unknown flag is refused with the declared exit status and the usage line as the hint', () => {
  const err = refusal(FEATURE, ['101', '--bogus']);
  assert.is(err.message, "unknown option '--bogus'");
  assert.is(err.exitCode, 2);
  assert.is(err.hint, 'Usage: feature.sh <CTID> [bootstrap_ca_url] [--dry-run]');
  assert.is(refusal(FEATURE, ['-x', '101']).message, "unknown option '-x'");
  assert.is(refusal(FEATURE, ['--no-such', '101']).message, "unknown option '--no-such'");
  assert.is(refusal(MANAGER, ['create', '1', '--bogus=1']).exitCode, 1, 'the default usage status is 1');
  const lenient = parsed({ ...FEATURE, unknownFlags: 'ignore' } as const, ['101', '--bogus']);
  assert.equal(lenient.ignored, ['--bogus']);
});

test('--dry-run only where declared; --no-x sets a boolean false', () => {
  assert.is(parsed(FEATURE, ['101', '--dry-run']).dryRun, true);
  assert.is(parsed(FEATURE, ['101']).dryRun, false);
  assert.is(refusal({ name: 'x', usage: 'Usage: x\n' }, ['--dry-run']).message, "unknown option '--dry-run'");
  assert.is(parsed(FEATURE, ['101', '--force', '--no-force']).flags.force, false);
  assert.is(parsed(FEATURE, ['--force', '101']).flags.force, true);
});

test('`--` ends the flags: its words come back untouched with passthrough, else they are positionals', () => {
  const guest = defineArgs({ name: 'g', usage: 'Usage: g <id> -- <command...>\n', dryRun: true, passthrough: true, positionals: [{ name: 'id' }] });
  const run = parsed(guest, ['101', '--', 'ls', '-la', '--dry-run', '0101', '']);
  assert.equal(run.rest, ['ls', '-la', '--dry-run', '0101', '']);
  assert.is(run.dryRun, false, 'a flag after -- belongs to the guest command');
  assert.is(run.positional.id, '101');
  assert.is(refusal(FEATURE, ['--dry-run', '--', '-5']).message, "'-5' is not a container id", 'a word after -- is a positional, not a flag');
  assert.equal(parsed({ ...FEATURE, positionals: [{ name: 'ctid' }, { name: 'url', optional: true }] } as const, ['--', '-5', '--dry-run']).operands, ['-5', '--dry-run']);
  assert.is(parsed(MANAGER, ['--', 'create', '--purge']).positional.id, '--purge', 'the subcommand itself may follow --');
});

test('ids and values that look like numbers stay strings, exactly as given', () => {
  const run = parsed(FEATURE, ['0101', '1e3', '--env', '0102', '--tag', '0x10']);
  assert.is(run.positional.ctid, '0101');
  assert.is(run.positional.url, '1e3');
  assert.is(run.flags.env, '0102');
  assert.equal(run.flags.tag, ['0x10']);
  assert.equal(parsed(MANAGER, ['status', '0101', '9000']).operands, ['0101', '9000']);
  assert.type(parsed(MANAGER, ['status', '0101']).operands[0], 'string');
});

test('repeated flags: a repeatable one keeps every value in order, any other keeps the last', () => {
  const run = parsed(FEATURE, ['--tag', 'a', '101', '--tag=b', '--env', 'x', '--env', 'y']);
  assert.equal(run.flags.tag, ['a', 'b']);
  assert.is(run.flags.env, 'y');
  assert.equal(parsed(FEATURE, ['101']).flags.tag, []);
  assert.is(parsed(FEATURE, ['101']).flags.env, undefined);
});

test('a string flag without a value is refused', () => {
  assert.is(refusal(MANAGER, ['create', '1', '--config']).message, '--config needs a file');
  assert.is(refusal(MANAGER, ['create', '1', '--config=']).message, '--config needs a file');
  assert.is(refusal(MANAGER, ['--config', '--dry-run', 'create', '1']).message, '--config needs a file');
  assert.is(refusal(MANAGER, ['create', '1', '--no-config']).message, '--config needs a file');
  assert.is(parsed(MANAGER, ['--config', '/x.json', 'create', '1']).flags.config, '/x.json');
});

test('positionals: missing, empty, checked, optional, too many', () => {
  const missing = refusal(FEATURE, []);
  assert.is(missing.message, 'missing CTID');
  assert.is(missing.exitCode, 2);
  assert.is(refusal(FEATURE, ['']).message, 'missing CTID', 'an empty word is missing, as [ -z ] saw it');
  assert.is(refusal(FEATURE, ['abc']).message, "'abc' is not a container id");
  assert.is(parsed(FEATURE, ['101', '']).positional.url, undefined);
  assert.is(parsed(FEATURE, ['101', 'https://ca:9000']).positional.url, 'https://ca:9000');
  assert.is(refusal(FEATURE, ['101', 'u', 'extra']).message, 'too many arguments: 101 u extra');
  assert.is(refusal({ name: 'x', usage: 'Usage: x\n' }, ['word']).message, "unknown argument 'word'");
  const ignoring = parsed({ ...FEATURE, extra: 'ignore' } as const, ['101', 'u', 'extra', 'more']);
  assert.equal([ignoring.operands, ignoring.ignored], [['101', 'u'], ['extra', 'more']]);
});

test('subcommands: dispatch, their own positionals, flags that go with some only, forwarding', () => {
  const create = parsed(MANAGER, ['--dry-run', 'create', '103']);
  assert.equal([create.command, create.positional.id, create.dryRun], ['create', '103', true]);
  assert.is(parsed(MANAGER, ['delete', '103', '--purge']).flags.purge, true);
  assert.is(refusal(MANAGER, ['create', '103', '--purge']).message, '--purge only goes with delete');
  assert.is(refusal(MANAGER, ['create']).message, "'create' needs an id");
  assert.is(refusal(MANAGER, ['delete']).message, "'delete' needs id");
  assert.is(refusal(MANAGER, []).message, "Invalid action ''");
  assert.is(refusal(MANAGER, ['frobnicate', '1']).message, "Invalid action 'frobnicate'");
  assert.is(refusal(MANAGER, ['constructor']).message, "Invalid action 'constructor'");
  assert.is(refusal(MANAGER, ['create', '1', '2']).message, 'too many arguments: 1 2');
  assert.equal(parsed(MANAGER, ['status', '1', '2', '3']).positional.ids, ['1', '2', '3']);
  assert.equal(parsed(MANAGER, ['init', 'x']).ignored, ['x']);
  assert.is(parsed(MANAGER, ['--config', 'create', 'status', '5']).command, 'status', 'a string flag takes the word after it, even one that names a subcommand');
  const swarm = parsed(MANAGER, ['swarm', 'deploy', 's', '--env', '0101', '--dry-run', '--help', '--bogus']);
  assert.is(swarm.command, 'swarm');
  assert.equal(swarm.operands, ['deploy', 's', '--env', '0101', '--help', '--bogus'], 'forwarded untouched, less this script\'s own boolean flags');
  assert.is(swarm.dryRun, true);
  assert.is(refusal(MANAGER, ['swarm']).message, "'swarm' needs words");
});

// ---------------------------------------------------------------- runMain: the script's side

const work = tmpDir();
const DRIVER = path.join(work, 'driver.mjs');
const lib = (file: string) => pathToFileURL(path.join(PROJECT_ROOT, 'lib', file)).href;
fs.writeFileSync(
  DRIVER,
  `import { runMain } from '${lib('core/main.mjs')}';
import { defineArgs } from '${lib('core/args.mjs')}';
import { isDryRun } from '${lib('core/context.mjs')}';
const ARGS = defineArgs({
  name: 'driver.sh',
  usage: 'Usage: driver.sh <CTID> [--dry-run]\\n\\nSays what it was given.\\n',
  dryRun: true,
  usageExitCode: 2,
  positionals: [{ name: 'ctid', missing: 'missing CTID' }],
});
await runMain(ARGS, async (args) => {
  await Promise.resolve();
  process.stdout.write(JSON.stringify({ ctid: args.positional.ctid, dryRun: isDryRun() }) + '\\n');
  return Number(process.env.DRIVER_EXIT ?? 0);
});
`,
);

function driver(argv: string[], env: Record<string, string> = {}) {
  const clean: Record<string, string | undefined> = { ...process.env, PHOENIX_DRY_RUN: undefined, MAIN_LOG_FILE: path.join(work, 'driver.log'), ...env };
  const r = spawnSync(process.execPath, [DRIVER, ...argv], { env: clean, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('runMain: --help prints the usage on stdout and exits 0; nothing of the body runs', () => {
  const r = driver(['--help']);
  assert.equal([r.code, r.stdout, r.stderr], [0, 'Usage: driver.sh <CTID> [--dry-run]\n\nSays what it was given.\n', '']);
});

test('runMain: a usage error exits with the declared status, one error line and the usage line', () => {
  const r = driver(['--frob']);
  assert.is(r.code, 2);
  assert.is(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 2, r.stderr);
  assert.match(lines[0] ?? '', /\[ERROR\] driver\.sh: unknown option '--frob'$/);
  assert.match(lines[1] ?? '', /\[INFO\] driver\.sh: hint: Usage: driver\.sh <CTID> \[--dry-run\]$/);
  assert.is(driver([]).code, 2);
});

test('runMain: the body runs in the run context, dry-run from the flag or PHOENIX_DRY_RUN; its status is the exit status', () => {
  assert.equal(JSON.parse(driver(['0101']).stdout), { ctid: '0101', dryRun: false });
  assert.equal(JSON.parse(driver(['0101', '--dry-run']).stdout), { ctid: '0101', dryRun: true });
  assert.equal(JSON.parse(driver(['0101'], { PHOENIX_DRY_RUN: 'true' }).stdout), { ctid: '0101', dryRun: true });
  assert.is(driver(['101'], { DRIVER_EXIT: '7' }).code, 7);
});

test.run();
