import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { resolveScript, runScript, installDropIns, portedScripts, upstreamNameOf, PROJECT_ROOT, SHARED_PASSWORD_SCRIPTS } from '../../lib/core/bridge.mts';
import { configureLog } from '../../lib/core/log.mts';
import { withRunContext } from '../../lib/core/context.mts';
import { PhoenixError, exitCodeFor } from '../../lib/core/errors.mts';
import { tmpDir, writeExecutable } from '../helpers/tmp.mts';
import { createSimHost } from '../simhost/index.mts';
import { isMutating } from '../helpers/calls.mts';

configureLog({ file: undefined, write: () => {} });
const fixture = path.join(PROJECT_ROOT, 'test', 'fixtures', 'legacy');

function legacyCopy(): string {
  const dir = tmpDir('phoenix-legacy-');
  fs.cpSync(fixture, dir, { recursive: true });
  return dir;
}


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
  const result = await runScript('tools/legacy_only.sh', ['a', 'b c'], { legacyDir: fixture, env, capture: true });
  assert.is(result.code, 4);
  assert.is(result.stdout, 'legacy says: a b c\n');
  assert.match(result.stderr, /config seen: \/custom\/lxc\.json/);
});

test('in dry-run a legacy script is printed, not run', async () => {
  const result = await withRunContext({ dryRun: true }, () => runScript('tools/legacy_only.sh', [], { legacyDir: fixture, env: process.env as Record<string, string>, capture: true }));
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
  const target = path.join(legacy, 'bin', 'phoenix-cli');
  const before = fs.readFileSync(target, 'utf8');
  withRunContext({ dryRun: true }, () => installDropIns(legacy, ['phoenix-cli']));
  assert.is(fs.readFileSync(target, 'utf8'), before);
  assert.not.ok(fs.existsSync(`${target}.legacy`));
});

// ---------------------------------------------------------------- the provisioner password the bash CA shared

/** A legacy tree holding stand-ins that read the shared password file as the bash ones do, and mark that they ran. */
function sharedPasswordTree(): { dir: string; ran: string } {
  const dir = tmpDir('phoenix-legacy-shared-');
  const ran = path.join(dir, 'ran');
  const body = (file: string) => `#!/usr/bin/env bash\n# stand-in: asks for a certificate with the CA's shared password\necho "$0" >> "${ran}"\nstep ca certificate x x.crt x.key --provisioner-password-file "${file}"\n`;
  writeExecutable(path.join(dir, 'bin'), 'phoenix_hypervisor_lxc_vllm.sh', body('/etc/step-ca/ssl/provisioner_password.txt'));
  writeExecutable(path.join(dir, 'bin'), 'managers/certificate-renewal-manager.sh', body('/srv/lxc-data/103/ssl/provisioner_password.txt'));
  writeExecutable(path.join(dir, 'bin'), 'phoenix_hypervisor_lxc_103.sh', '#!/usr/bin/env bash\n# stand-in for the bash CA\n');
  writeExecutable(path.join(dir, 'bin'), 'phoenix_hypervisor_lxc_102.sh', '#!/usr/bin/env bash\n# stand-in: waits for the ready marker only\ntest -f /etc/step-ca/ssl/ca.ready\n');
  return { dir, ran };
}

test('bash scripts that need the shared provisioner password are refused while the CA is the port, saying what to do', () => {
  const { dir } = sharedPasswordTree();
  for (const [name, options] of [
    ['phoenix_hypervisor_lxc_vllm.sh', { legacyDir: dir }],
    ['managers/certificate-renewal-manager.sh', { legacyDir: dir, useLegacy: ['managers/certificate-renewal-manager.sh'] }],
  ] as const) {
    try {
      resolveScript(name, options);
      assert.unreachable(`${name} resolved`);
    } catch (err) {
      assert.instance(err, PhoenixError);
      assert.match((err as PhoenixError).message, `refusing to run the bash ${name}: it reads the CA's shared provisioner_password.txt ${SHARED_PASSWORD_SCRIPTS[name]!.use}`);
      assert.match((err as PhoenixError).hint ?? '', SHARED_PASSWORD_SCRIPTS[name]!.instead);
      assert.match((err as PhoenixError).hint ?? '', /adding phoenix_hypervisor_lxc_103\.sh to PHOENIX_USE_LEGACY/);
      assert.is(exitCodeFor(err), 1);
    }
  }
  assert.match(SHARED_PASSWORD_SCRIPTS['phoenix_hypervisor_lxc_vllm.sh']!.instead, /certificate-manifest\.json/);
  // The bash CA pinned: the password is where these scripts look, so they run.
  assert.is(resolveScript('phoenix_hypervisor_lxc_vllm.sh', { legacyDir: dir, useLegacy: ['phoenix_hypervisor_lxc_103.sh'] }).kind, 'legacy');
  assert.is(resolveScript('managers/certificate-renewal-manager.sh', { legacyDir: dir, useLegacy: ['all'] }).kind, 'legacy');
  // Only the ready marker: not refused. A copy that no longer reads the password (or only mentions it in a comment): not refused.
  assert.is(resolveScript('phoenix_hypervisor_lxc_102.sh', { legacyDir: dir, useLegacy: ['phoenix_hypervisor_lxc_102.sh'] }).kind, 'legacy');
  fs.writeFileSync(path.join(dir, 'bin', 'phoenix_hypervisor_lxc_vllm.sh'), '#!/usr/bin/env bash\n# the certificate now comes from the host; provisioner_password.txt is no longer read\ntrue\n');
  assert.is(resolveScript('phoenix_hypervisor_lxc_vllm.sh', { legacyDir: dir }).kind, 'legacy');
});

test('a refused bash script runs nothing: runScript fails before spawning it', async () => {
  const { dir, ran } = sharedPasswordTree();
  try {
    await runScript('phoenix_hypervisor_lxc_vllm.sh', ['801'], { legacyDir: dir, env: process.env as Record<string, string>, capture: true });
    assert.unreachable('it ran');
  } catch (err) {
    assert.match((err as Error).message, /refusing to run the bash phoenix_hypervisor_lxc_vllm\.sh/);
  }
  assert.not.ok(fs.existsSync(ran), 'the stand-in never ran');
});

test('lxc-manager create of a container whose application script is refused exits non-zero with the reason, and changes nothing', () => {
  const host = createSimHost();
  try {
    const { dir, ran } = sharedPasswordTree();
    const work = tmpDir('phoenix-bridge-refusal-');
    const lxc = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_lxc_configs.json'), 'utf8'));
    lxc.lxc_configs['801'] = {
      name: 'llm-embed',
      clone_from_ctid: '900',
      memory_mb: 2048,
      cores: 2,
      storage_pool: 'quickOS-lxc-disks',
      storage_size_gb: 16,
      network_config: { name: 'eth0', bridge: 'vmbr100', ip: '172.16.100.81/24', gw: '172.16.100.1' },
      mac_address: 'BC:24:11:00:08:01',
      unprivileged: true,
      features: ['base_setup'],
      application_script: 'phoenix_hypervisor_lxc_vllm.sh',
      mount_points: [{ host_path: '/quickOS/lxc-persistent-data/103/ssl', container_path: '/etc/step-ca/ssl' }],
    };
    const lxcFile = path.join(work, 'phoenix_lxc_configs.json');
    fs.writeFileSync(lxcFile, JSON.stringify(lxc, null, 2));
    const env: Record<string, string> = { ...host.env, PHOENIX_BASE_DIR: PROJECT_ROOT, LXC_CONFIG_FILE: lxcFile, PHOENIX_LEGACY_DIR: dir, MAIN_LOG_FILE: path.join(work, 'log'), PHOENIX_LOCK_FILE: path.join(work, 'lock') };
    for (const key of ['PHOENIX_USE_LEGACY', 'PHOENIX_DRY_RUN', 'PHOENIX_HOST_ROOT', 'PHOENIX_LOCK_TOKEN', 'HYPERVISOR_CONFIG_FILE', 'VM_CONFIG_FILE']) delete env[key];
    const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'scripts', 'managers', 'lxc-manager.mjs'), 'create', '801'], { env, encoding: 'utf8' });
    assert.is.not(r.status, 0);
    assert.match(r.stderr, /refusing to run the bash phoenix_hypervisor_lxc_vllm\.sh/);
    assert.match(r.stderr, /certificate-manifest\.json/);
    assert.equal(host.calls().filter(isMutating), [], 'no command that changes anything');
    assert.not.ok(fs.existsSync(path.join(host.stateDir, 'hostfs', 'quickOS', 'lxc-persistent-data', '103', 'ssl')), 'not even a host directory');
    assert.not.ok(fs.existsSync(ran));
  } finally {
    host.dispose();
  }
});

test.run();
