import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { resolveScript, runScript, installDropIns, portedScripts, upstreamNameOf, PROJECT_ROOT } from '../lib/bridge.mts';
import { configureLog } from '../lib/log.mts';
import { configureRunner } from '../lib/runner.mts';
import { PhoenixError, exitCodeFor } from '../lib/errors.mts';
import { tmpDir } from './helpers/tmp.mts';

configureLog({ file: undefined, write: () => {} });
const fixture = path.join(PROJECT_ROOT, 'test', 'fixtures', 'legacy');

function legacyCopy(): string {
  const dir = tmpDir('phoenix-legacy-');
  fs.cpSync(fixture, dir, { recursive: true });
  return dir;
}

test.before.each(() => configureRunner({ dryRun: false }));

test('upstream names map to ports and back', () => {
  assert.is(upstreamNameOf('managers/lxc-manager.mts'), 'managers/lxc-manager.sh');
  assert.is(upstreamNameOf('phoenix-cli.mts'), 'phoenix-cli');
  assert.ok(portedScripts().includes('phoenix-cli'));
  assert.ok(portedScripts().includes('phoenix-global'));
  assert.not.ok(portedScripts().some((n) => n.startsWith('phoenix-dropins')), "Phoenix's own tool is no port");
});

test('a ported script resolves to its built port', () => {
  const r = resolveScript('phoenix-cli', { legacyDir: fixture });
  assert.is(r.kind, 'port');
  assert.ok(r.path.endsWith('scripts/phoenix-cli.mjs'));
  // `bin/` prefixes and ./ are accepted, as bash callers write them
  assert.is(resolveScript('bin/phoenix-cli', { legacyDir: fixture }).kind, 'port');
});

test('a script without a port resolves to the legacy copy, run through bash', () => {
  const r = resolveScript('tools/legacy_only.sh', { legacyDir: fixture });
  assert.is(r.kind, 'legacy');
  assert.is(r.command, 'bash');
});

test('PHOENIX_USE_LEGACY pins the bash copy even when a port exists', () => {
  assert.is(resolveScript('phoenix-cli', { legacyDir: fixture, useLegacy: ['phoenix-cli'] }).kind, 'legacy');
  assert.is(resolveScript('phoenix-cli', { legacyDir: fixture, useLegacy: ['all'] }).kind, 'legacy');
  assert.throws(() => resolveScript('phoenix-cli', { legacyDir: undefined, useLegacy: ['all'] }), /PHOENIX_USE_LEGACY/);
});

test('neither port nor legacy copy: a clear error, exit 127', () => {
  try {
    resolveScript('managers/nowhere.sh', { legacyDir: undefined });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PhoenixError);
    assert.match((err as PhoenixError).message, /managers\/nowhere\.sh has no port yet/);
    assert.match((err as PhoenixError).hint ?? '', /PHOENIX_LEGACY_DIR/);
    assert.is(exitCodeFor(err), 127);
  }
  assert.throws(() => resolveScript('../../etc/passwd', { legacyDir: fixture }), /not an upstream script name/);
});

test('a port calls a legacy script: output, environment and exit status come through', async () => {
  const env = { ...process.env, LXC_CONFIG_FILE: '/custom/lxc.json', EXIT_WITH: '4' } as Record<string, string>;
  const result = await runScript('tools/legacy_only.sh', ['a', 'b c'], { legacyDir: fixture, env, dryRun: false, capture: true });
  assert.is(result.code, 4);
  assert.is(result.stdout, 'legacy says: a b c\n');
  assert.match(result.stderr, /config seen: \/custom\/lxc\.json/);
});

test('in dry-run a legacy script is printed, not run', async () => {
  configureRunner({ dryRun: true });
  const result = await runScript('tools/legacy_only.sh', [], { legacyDir: fixture, env: process.env as Record<string, string>, dryRun: true, capture: true });
  assert.ok(result.skipped);
  assert.is(result.stdout, '');
});

test('drop-ins: bash calling the upstream name gets the port, with the bash exit codes', () => {
  const legacy = legacyCopy();
  const results = installDropIns(legacy, ['phoenix-cli']);
  assert.equal(results, [{ name: 'phoenix-cli', outcome: 'installed' }]);
  assert.ok(fs.existsSync(path.join(legacy, 'bin', 'phoenix-cli.legacy')), 'original kept');
  const caller = `set -u
"${legacy}/bin/phoenix-cli" --help >/tmp/phoenix-dropin-help.$$; echo "help=$?"
grep -c '^Usage: phoenix' /tmp/phoenix-dropin-help.$$; rm -f /tmp/phoenix-dropin-help.$$
"${legacy}/bin/phoenix-cli" 2>/dev/null >/dev/null; echo "none=$?"
"${legacy}/bin/phoenix-cli" frobnicate 2>&1 | grep -c "Invalid verb 'frobnicate'"
"${legacy}/bin/phoenix-cli" frobnicate >/dev/null 2>&1; echo "bad=$?"
`;
  const out = spawnSync('bash', ['-c', caller], { encoding: 'utf8', env: { ...process.env, MAIN_LOG_FILE: path.join(legacy, 'log') } });
  assert.is(out.stdout, 'help=0\n1\nnone=1\n1\nbad=1\n');
  // the same caller against the original shows the same codes
  const original = spawnSync('bash', ['-c', caller.replaceAll(`${legacy}/bin/phoenix-cli"`, `${legacy}/bin/phoenix-cli.legacy"`)], { encoding: 'utf8' });
  assert.is(original.stdout, out.stdout);
});

test('drop-ins install idempotently and uninstall restores the original', () => {
  const legacy = legacyCopy();
  const target = path.join(legacy, 'bin', 'phoenix-cli');
  const before = fs.readFileSync(target, 'utf8');
  installDropIns(legacy, ['phoenix-cli']);
  assert.equal(installDropIns(legacy, ['phoenix-cli']), [{ name: 'phoenix-cli', outcome: 'unchanged' }]);
  assert.equal(installDropIns(legacy, ['phoenix-cli'], true), [{ name: 'phoenix-cli', outcome: 'restored' }]);
  assert.is(fs.readFileSync(target, 'utf8'), before);
  assert.not.ok(fs.existsSync(`${target}.legacy`));
});

test('drop-ins refuse scripts that have no port, and dry-run changes nothing', () => {
  const legacy = legacyCopy();
  assert.throws(() => installDropIns(legacy, ['tools/legacy_only.sh']), /has no port/);
  configureRunner({ dryRun: true });
  const target = path.join(legacy, 'bin', 'phoenix-cli');
  const before = fs.readFileSync(target, 'utf8');
  installDropIns(legacy, ['phoenix-cli']);
  assert.is(fs.readFileSync(target, 'utf8'), before);
  assert.not.ok(fs.existsSync(`${target}.legacy`));
});

test.run();
