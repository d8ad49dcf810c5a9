import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copySync, outputFileSync, outputJsonSync, readJsonSync, removeSync } from 'fs-extra/esm';
import {
  clearConfigCache,
  configPathsEnv,
  loadConfig,
  ManifestError,
  MANIFEST_FILES,
  resolveConfigPaths,
  validateDocument,
  type ConfigPaths,
  type ManifestKind,
} from '../../lib/config/load.mts';
import { ConfigError, exitCodeFor } from '../../lib/core/errors.mts';
import { lintSchemas, readSchemas, staleValidators } from '../../lib/config/schema-build.mts';
import { expectConfigError } from '../helpers/errors.mts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLES = path.join(ROOT, 'etc');
const QUIRKS = path.join(ROOT, 'test', 'fixtures', 'config', 'upstream-quirks');
const KINDS: ManifestKind[] = ['hypervisor', 'lxc', 'vm', 'stacks', 'certificates'];

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-config-test-'));
let counter = 0;

type Json = any; // fixtures are edited freely below

function example(kind: ManifestKind): Json {
  return readJsonSync(path.join(EXAMPLES, MANIFEST_FILES[kind]));
}

function pathsIn(dir: string): ConfigPaths {
  return resolveConfigPaths({}, { PHOENIX_BASE_DIR: dir });
}

/**
 * A fresh <dir>/etc holding the example manifests, with some replaced:
 * a value is serialised as JSON, a string is written as is (broken JSON).
 */
function tree(overrides: Partial<Record<ManifestKind, Json>> = {}): { dir: string; paths: ConfigPaths } {
  const dir = path.join(scratch, `t${++counter}`);
  for (const kind of KINDS) {
    const file = path.join(dir, 'etc', MANIFEST_FILES[kind]);
    const override = overrides[kind];
    if (override === undefined) copySync(path.join(EXAMPLES, MANIFEST_FILES[kind]), file);
    else if (typeof override === 'string') outputFileSync(file, override);
    else outputJsonSync(file, override, { spaces: 2 });
  }
  // Named explicitly, so a broken hypervisor file is only read when a test asks for it.
  const paths = Object.fromEntries(KINDS.map((kind) => [kind, path.join(dir, 'etc', MANIFEST_FILES[kind])])) as unknown as ConfigPaths;
  return { dir, paths };
}

function loadError(kind: ManifestKind, doc: Json): ManifestError {
  const { paths } = tree({ [kind]: doc });
  try {
    void loadConfig(paths)[kind];
  } catch (err) {
    assert.instance(err, ManifestError);
    return err as ManifestError;
  }
  assert.unreachable(`${kind} should have been rejected`);
  throw new Error('unreachable');
}

function referenceError(overrides: Partial<Record<ManifestKind, Json>>): ManifestError {
  const { paths } = tree(overrides);
  try {
    loadConfig(paths).validateReferences();
  } catch (err) {
    assert.instance(err, ManifestError);
    return err as ManifestError;
  }
  assert.unreachable('references should have been rejected');
  throw new Error('unreachable');
}

function pointers(err: ManifestError): string[] {
  return err.issues.map((issue) => issue.pointer);
}

test.before.each(() => clearConfigCache());
test.after(() => removeSync(scratch));

// ---------------------------------------------------------------- examples

test('the example manifests load, validate and cross-check', () => {
  const config = loadConfig(pathsIn(ROOT));
  for (const kind of KINDS) assert.ok(config[kind], kind);
  config.validateReferences();
  assert.equal(config.warnings(), []);
  assert.equal(config.lxcIds(), ['101', '102', '103', '900']);
  assert.equal(config.vmIds(), ['9000', '1001', '1002']);
  assert.equal(config.hypervisor.gateway?.mode, 'hybrid');
  assert.is(config.hypervisor.portainer_api?.admin_password, undefined);
  const names = config.certificates.map((c) => c.common_name);
  assert.ok(names.includes('nginx-gateway-client'));
  assert.ok(Object.hasOwn(config.stacks.docker_stacks, 'portainer_service'));
});

test('guest() finds containers and VMs by string or number, containers first', () => {
  const config = loadConfig(pathsIn(ROOT));
  const ct = config.guest(102);
  assert.is(ct?.kind, 'lxc');
  assert.is(ct?.kind === 'lxc' ? ct.config.clone_from_ctid : undefined, '900');
  const vm = config.guest('1001');
  assert.is(vm?.kind, 'vm');
  assert.is(vm?.kind === 'vm' ? vm.config.swarm_role : undefined, 'manager');
  assert.is(config.guest('4242'), undefined);
  assert.is(config.guest('constructor'), undefined);
});

test('lxcIds sorts as strings, like jq keys', () => {
  const lxc = example('lxc');
  lxc.lxc_configs['1000'] = { ...lxc.lxc_configs['900'], name: 'late' };
  delete lxc.lxc_configs['1000'].network_config;
  lxc.lxc_configs['1000'].network_config = { name: 'eth0', bridge: 'vmbr100', ip: 'dhcp' };
  delete lxc.lxc_configs['1000'].mac_address;
  const { paths } = tree({ lxc });
  assert.equal(loadConfig(paths).lxcIds(), ['1000', '101', '102', '103', '900']);
});

// ---------------------------------------------------------------- paths

test('paths: default is <PHOENIX_BASE_DIR>/etc, else /usr/local/phoenix_hypervisor/etc', () => {
  const paths = resolveConfigPaths({}, { PHOENIX_BASE_DIR: '/srv/px' });
  assert.equal(paths, {
    hypervisor: '/srv/px/etc/phoenix_hypervisor_config.json',
    lxc: '/srv/px/etc/phoenix_lxc_configs.json',
    vm: '/srv/px/etc/phoenix_vm_configs.json',
    stacks: '/srv/px/etc/phoenix_stacks_config.json',
    certificates: '/srv/px/etc/certificate-manifest.json',
  });
  assert.is(resolveConfigPaths({}, {}).lxc, '/usr/local/phoenix_hypervisor/etc/phoenix_lxc_configs.json');
});

test('paths: flag > environment > core_paths > default', () => {
  const { dir } = tree();
  const hv = path.join(dir, 'etc', MANIFEST_FILES.hypervisor);
  const doc = example('hypervisor');
  doc.core_paths = { lxc_config_file: 'guests/lxc.json', vm_config_file: '/abs/vms.json' };
  fs.writeFileSync(hv, JSON.stringify(doc));
  const env = { PHOENIX_BASE_DIR: dir };

  const fromCore = resolveConfigPaths({}, env);
  assert.is(fromCore.lxc, path.join(dir, 'etc', 'guests', 'lxc.json'), 'core_paths, relative to the hypervisor file');
  assert.is(fromCore.vm, '/abs/vms.json');
  assert.is(fromCore.stacks, path.join(dir, 'etc', MANIFEST_FILES.stacks));

  const fromEnv = resolveConfigPaths({}, { ...env, LXC_CONFIG_FILE: '/env/lxc.json', STACKS_CONFIG_FILE: '/env/stacks.json', VM_CONFIG_FILE: '' });
  assert.is(fromEnv.lxc, '/env/lxc.json', 'environment beats core_paths');
  assert.is(fromEnv.vm, '/abs/vms.json', 'an empty variable counts as unset');
  assert.is(fromEnv.stacks, '/env/stacks.json');

  const fromFlags = resolveConfigPaths({ lxc: '/flag/lxc.json', certificates: '/flag/certs.json' }, { ...env, LXC_CONFIG_FILE: '/env/lxc.json' });
  assert.is(fromFlags.lxc, '/flag/lxc.json', 'flag beats environment');
  assert.is(fromFlags.certificates, '/flag/certs.json');
  assert.is(fromFlags.vm, '/abs/vms.json');
});

test('paths: the hypervisor file named by flag or environment supplies core_paths', () => {
  const { dir } = tree();
  const other = path.join(dir, 'elsewhere', 'hv.json');
  outputJsonSync(other, { ...example('hypervisor'), core_paths: { vm_config_file: 'vm.json' } });
  const byEnv = resolveConfigPaths({}, { PHOENIX_BASE_DIR: dir, HYPERVISOR_CONFIG_FILE: other });
  assert.is(byEnv.hypervisor, other);
  assert.is(byEnv.vm, path.join(dir, 'elsewhere', 'vm.json'));
  const byFlag = resolveConfigPaths({ hypervisor: other }, { PHOENIX_BASE_DIR: '/nowhere' });
  assert.is(byFlag.vm, path.join(dir, 'elsewhere', 'vm.json'));
  assert.is(byFlag.lxc, '/nowhere/etc/phoenix_lxc_configs.json');
});

test('paths: a missing hypervisor file leaves the defaults; a bad core_paths value is an error', () => {
  const missing = resolveConfigPaths({}, { PHOENIX_BASE_DIR: path.join(scratch, 'no-such-dir') });
  assert.is(missing.lxc, path.join(scratch, 'no-such-dir', 'etc', MANIFEST_FILES.lxc));
  const { dir } = tree({ hypervisor: { ...example('hypervisor'), core_paths: { lxc_config_file: 42 } } });
  assert.throws(
    () => resolveConfigPaths({}, { PHOENIX_BASE_DIR: dir }),
    (err: unknown) => err instanceof ConfigError && err.pointer === '/core_paths/lxc_config_file' && /expected a path, got number 42/.test(err.message),
  );
});

test('paths: configPathsEnv hands exactly these paths to a child', () => {
  const paths = resolveConfigPaths({ vm: '/x/vm.json' }, { PHOENIX_BASE_DIR: '/srv/px', CERTIFICATE_MANIFEST_FILE: '/y/c.json' });
  const env = configPathsEnv(paths);
  assert.equal(Object.keys(env).sort(), [
    'CERTIFICATE_MANIFEST_FILE',
    'HYPERVISOR_CONFIG_FILE',
    'LXC_CONFIG_FILE',
    'STACKS_CONFIG_FILE',
    'VM_CONFIG_FILE',
  ]);
  assert.equal(resolveConfigPaths({}, { PHOENIX_BASE_DIR: '/elsewhere', ...env }), paths);
});

// ---------------------------------------------------------------- reading once

test('each file is read once per process, however often and by whom it is asked for', () => {
  const { dir, paths } = tree();
  const reads = new Map<string, number>();
  // config.mts calls fs.readFileSync through the shared module object, so a
  // replacement here sees every read it makes.
  const mutableFs = fs as unknown as { readFileSync: typeof fs.readFileSync };
  const original = mutableFs.readFileSync;
  mutableFs.readFileSync = ((file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    if (typeof file === 'string' && file.startsWith(dir)) reads.set(file, (reads.get(file) ?? 0) + 1);
    return (original as (...args: unknown[]) => unknown)(file, ...rest);
  }) as typeof fs.readFileSync;
  try {
    const again = resolveConfigPaths({}, { PHOENIX_BASE_DIR: dir }); // reads the hypervisor file for core_paths
    const a = loadConfig(again);
    const b = loadConfig(paths);
    assert.is(a, b, 'one object per path set');
    for (let i = 0; i < 3; i++) for (const kind of KINDS) void a[kind];
    a.validateReferences();
    a.warnings();
    // A second path set that shares files with the first reads only the new one.
    const other = path.join(dir, 'etc', 'other-certs.json');
    fs.copyFileSync(paths.certificates, other);
    const c = loadConfig({ ...paths, certificates: other });
    assert.is.not(c, a);
    void c.lxc;
    void c.certificates;
  } finally {
    mutableFs.readFileSync = original;
  }
  for (const [file, count] of reads) assert.is(count, 1, file);
  assert.is(reads.size, 6);
});

test('a manifest is read only when first asked for', () => {
  const { paths } = tree({ vm: '{ this is not json' });
  const config = loadConfig(paths);
  assert.ok(config.lxc.lxc_configs['101']);
  assert.throws(() => config.vm, /invalid JSON/);
});

test('changes to a file after the first read are not seen until the cache is cleared', () => {
  const { paths } = tree();
  assert.is(loadConfig(paths).lxc.lxc_configs['101']?.memory_mb, 1024);
  const doc = example('lxc');
  doc.lxc_configs['101'].memory_mb = 4096;
  fs.writeFileSync(paths.lxc, JSON.stringify(doc));
  assert.is(loadConfig(paths).lxc.lxc_configs['101']?.memory_mb, 1024);
  clearConfigCache();
  assert.is(loadConfig(paths).lxc.lxc_configs['101']?.memory_mb, 4096);
});

// ---------------------------------------------------------------- files and JSON syntax

test('a missing file names the file, the variable to set and an example', () => {
  const { paths } = tree();
  fs.rmSync(paths.stacks);
  const err = expectConfigError(() => loadConfig(paths).stacks);
  assert.is(err.file, paths.stacks);
  assert.match(err.message, /file not found/);
  assert.match(err.hint ?? '', /STACKS_CONFIG_FILE/);
  assert.is(exitCodeFor(err), 1);
});

const brokenJson: Array<[string, string, number, number, RegExp]> = [
  ['missing comma', '{\n  "lxc_configs": {\n    "101": {"name": "a"}\n    "102": {"name": "b"}\n  }\n}\n', 4, 5, /expected "," or "}"/],
  ['trailing comma', '{\n  "lxc_configs": {\n    "101": {"name": "a"},\n  }\n}\n', 4, 3, /trailing comma/],
  ['comment', '{\n  // the gateway\n  "lxc_configs": {}\n}\n', 2, 3, /comments are not allowed/],
  ['unterminated string', '{\n  "lxc_configs": {\n    "101": {"name": "a\n  }\n}\n', 3, 21, /missing closing quote|line break inside a string/],
  ['single quotes', "{\n  'lxc_configs': {}\n}\n", 2, 3, /double quotes/],
  ['truncated', '{\n  "lxc_configs": {\n    "101": {', 3, 13, /unexpected end of file/],
  ['two documents', '{"lxc_configs": {}}\n{}\n', 2, 1, /after the end/],
];

for (const [name, text, line, column, what] of brokenJson) {
  test(`broken JSON (${name}) is reported with file, line and column`, () => {
    const err = loadError('lxc', text);
    assert.is(err.pointer, '');
    assert.ok(err.message.startsWith(`${err.file}: invalid JSON at line ${line}, column ${column}: `), err.message);
    assert.match(err.message, what);
    assert.is(err.line, line);
    assert.is(err.column, column);
  });
}

test('an empty file is called empty', () => {
  assert.match(loadError('vm', '  \n').message, /file is empty/);
});

test('duplicate keys are refused with both lines, since only the last would count', () => {
  const text = '{\n  "lxc_configs": {\n    "101": {"name": "a"},\n    "102": {"name": "b"},\n    "101": {"name": "c"}\n  }\n}\n';
  const err = loadError('lxc', text);
  assert.is(err.pointer, '/lxc_configs/101');
  assert.match(err.message, /duplicate key "101" at line 5 \(first at line 3/);
});

// ---------------------------------------------------------------- schema errors

test('a wrong type gives the pointer, the expected type and what was found', () => {
  const lxc = example('lxc');
  lxc.lxc_configs['101'].memory_mb = '2048';
  const err = loadError('lxc', lxc);
  assert.is(err.pointer, '/lxc_configs/101/memory_mb');
  assert.is(err.message, `${err.file} at /lxc_configs/101/memory_mb: expected integer, got string "2048"`);
  assert.is(exitCodeFor(err), 1);
});

test('all schema errors of a file come in one message, one line each, capped', () => {
  const lxc = example('lxc');
  for (const id of ['101', '102', '103', '900']) {
    lxc.lxc_configs[id].cores = 'many';
    lxc.lxc_configs[id].memory_mb = -1;
    lxc.lxc_configs[id].start_at_boot = 'yes';
  }
  const err = loadError('lxc', lxc);
  assert.is(err.issues.length, 12);
  const lines = err.message.split('\n');
  assert.is(lines.length, 11, err.message);
  assert.match(lines[1] ?? '', /^ {2}at \/lxc_configs\/\d+\/\w+: /);
  assert.is(lines[10], '  ... and 2 more problems');
});

test('errors describe the expectation in words, not only as a regex', () => {
  const lxc = example('lxc');
  lxc.lxc_configs['101'].network_config.ip = '10.0.0.300/24';
  lxc.lxc_configs['101'].network_config.gateway = '10.0.0.1';
  lxc.lxc_configs['102'].firewall.rules[0].action = 'ALLOW';
  delete lxc.lxc_configs['900'].template;
  lxc.lxc_configs.web = lxc.lxc_configs['900'];
  const messages = loadError('lxc', lxc).issues.map((issue) => `${issue.pointer}: ${issue.message}`);
  const expect = [
    '/lxc_configs/101/network_config/ip: expected dhcp, manual, or an IPv4 address with prefix length such as 172.16.100.11/24, got string "10.0.0.300/24"',
    '/lxc_configs/101/network_config/gateway: unknown key "gateway" (allowed: name, bridge, ip, gw, hwaddr, nameserver, nameservers, type, parent, tag, mtu, firewall)',
    '/lxc_configs/102/firewall/rules/0/action: expected one of "ACCEPT", "DROP", "REJECT", got string "ALLOW"',
    '/lxc_configs/900: expected a creation method: clone_from_ctid or template',
    '/lxc_configs/web: invalid key "web": expected a guest id as a string of digits, 100 to 999999999',
  ];
  for (const line of expect) assert.ok(messages.includes(line), `missing: ${line}\nin:\n${messages.join('\n')}`);
});

type Mutation = [string, ManifestKind, (doc: Json) => void, string, RegExp?];

const nonsense: Mutation[] = [
  ['bad CIDR in a rule', 'lxc', (d) => (d.lxc_configs['102'].firewall.rules[0].source = '172.16.100.10/33'), '/lxc_configs/102/firewall/rules/0/source'],
  ['bad IP as gateway', 'lxc', (d) => (d.lxc_configs['103'].network_config.gw = '172.16.100'), '/lxc_configs/103/network_config/gw', /IPv4 address/],
  ['bad MAC', 'lxc', (d) => (d.lxc_configs['103'].mac_address = 'BC:24:11:00:01'), '/lxc_configs/103/mac_address', /MAC address/],
  ['unknown LXC feature', 'lxc', (d) => d.lxc_configs['101'].features.push('kubernetes'), '/lxc_configs/101/features/3'],
  ['unknown VM feature', 'vm', (d) => d.vms[1].features.push('nvidia'), '/vms/1/features/4'],
  ['unknown rule action', 'vm', (d) => (d.vms[1].firewall.rules[0].action = 'PERMIT'), '/vms/1/firewall/rules/0/action'],
  ['unknown rule key (a typo that would widen the rule)', 'vm', (d) => (d.vms[1].firewall.rules[0].dport = '22'), '/vms/1/firewall/rules/0/dport', /unknown key/],
  ['port without proto', 'hypervisor', (d) => delete d.firewall.global_firewall_rules[0].proto, '/firewall/global_firewall_rules/0', /"port" needs "proto"/],
  ['port out of range', 'lxc', (d) => (d.lxc_configs['103'].firewall.rules[0].port = '70000'), '/lxc_configs/103/firewall/rules/0/port'],
  ['container id that is not numeric', 'lxc', (d) => (d.lxc_configs['10a'] = d.lxc_configs['103']), '/lxc_configs/10a', /invalid key/],
  ['dependency given as a number', 'lxc', (d) => (d.lxc_configs['101'].dependencies = [103]), '/lxc_configs/101/dependencies/0', /expected string, got number 103/],
  ['clone source given as a number', 'lxc', (d) => (d.lxc_configs['101'].clone_from_ctid = 900), '/lxc_configs/101/clone_from_ctid'],
  ['vmid as a string', 'vm', (d) => (d.vms[2].vmid = '1002'), '/vms/2/vmid'],
  ['negative disk size', 'lxc', (d) => (d.lxc_configs['900'].storage_size_gb = -8), '/lxc_configs/900/storage_size_gb', />= 1/],
  ['zero cores', 'vm', (d) => (d.vms[1].cores = 0), '/vms/1/cores'],
  ['fractional memory', 'vm', (d) => (d.vms[1].memory_mb = 1024.5), '/vms/1/memory_mb', /expected integer/],
  ['bad gpu assignment', 'lxc', (d) => (d.lxc_configs['101'].gpu_assignment = 'all'), '/lxc_configs/101/gpu_assignment'],
  ['VM static address without gateway', 'vm', (d) => delete d.vms[1].network_config.gw, '/vms/1/network_config', /missing required key "gw"/],
  ['VM template without image', 'vm', (d) => delete d.vms[0].template_image, '/vms/0', /template_image/],
  ['VM clone without source', 'vm', (d) => delete d.vms[2].clone_from_vmid, '/vms/2', /clone_from_vmid/],
  ['docker_stacks as objects (the upstream schema form the code cannot use)', 'vm', (d) => (d.vms[1].docker_stacks = [{ name: 'portainer_service', environment: 'production' }]), '/vms/1/docker_stacks/0'],
  ['duplicate stack', 'vm', (d) => d.vms[1].docker_stacks.push('portainer_service'), '/vms/1/docker_stacks', /same/],
  ['unknown gateway mode', 'hypervisor', (d) => (d.gateway.mode = 'tls'), '/gateway/mode'],
  ['bad passthrough SNI', 'hypervisor', (d) => d.gateway.passthrough_snis.push('bad name'), '/gateway/passthrough_snis/1'],
  ['Portainer without any password source', 'hypervisor', (d) => delete d.portainer_api.admin_password_file, '/portainer_api', /admin_password_file/],
  ['bad domain', 'hypervisor', (d) => (d.domain_name = 'internal example'), '/domain_name'],
  ['unknown key at the stacks root', 'stacks', (d) => (d.stack = {}), '/stack'],
  ['typo in a stack environment', 'stacks', (d) => (d.docker_stacks.whoami_service.environments.production.varaibles = []), '/docker_stacks/whoami_service/environments/production/varaibles'],
  ['label that is not a Traefik label', 'stacks', (d) => d.docker_stacks.whoami_service.environments.production.services.whoami.traefik_labels.push('enable'), '/docker_stacks/whoami_service/environments/production/services/whoami/traefik_labels/5'],
  ['certificate SAN that is no name or address', 'certificates', (d) => d[0].sans.push('10.0.0.256'), '/0/sans/3'],
  ['certificate guest without type', 'certificates', (d) => delete d[2].guest_type, '/2', /"guest_id" needs "guest_type"/],
  ['relative certificate path', 'certificates', (d) => (d[1].key_path = 'ssl/client.key'), '/1/key_path', /absolute path/],
];

for (const [name, kind, mutate, pointer, message] of nonsense) {
  test(`nonsense is rejected: ${name}`, () => {
    const doc = example(kind);
    mutate(doc);
    const err = loadError(kind, doc);
    assert.ok(pointers(err).includes(pointer), `expected ${pointer} among ${pointers(err).join(', ')}\n${err.message}`);
    if (message) assert.match(err.message, message);
  });
}

test('a manifest of the wrong shape altogether is rejected at the root', () => {
  const err = loadError('certificates', { certificates: example('certificates') });
  assert.is(err.pointer, '');
  assert.match(err.message, /: expected array, got object$/);
});

// ---------------------------------------------------------------- upstream quirks

test('upstream-format manifests with every known quirk are accepted', () => {
  const paths = resolveConfigPaths({}, {
    HYPERVISOR_CONFIG_FILE: path.join(QUIRKS, MANIFEST_FILES.hypervisor),
    LXC_CONFIG_FILE: path.join(QUIRKS, MANIFEST_FILES.lxc),
    VM_CONFIG_FILE: path.join(QUIRKS, MANIFEST_FILES.vm),
    STACKS_CONFIG_FILE: path.join(QUIRKS, MANIFEST_FILES.stacks),
    CERTIFICATE_MANIFEST_FILE: path.join(QUIRKS, MANIFEST_FILES.certificates),
  });
  const config = loadConfig(paths);
  for (const kind of KINDS) void config[kind];
  config.validateReferences();
  const lxc = config.lxc.lxc_configs;
  assert.ok(lxc['101']?.features?.includes('step_cli'));
  assert.is(lxc['101']?.network_config.ip, 'dhcp');
  assert.is(lxc['101']?.network_config.gw, undefined);
  assert.is(lxc['911']?.portainer_role, undefined);
  assert.is(lxc['911']?.unprivileged, undefined);
  assert.is(lxc['801']?.vllm_engine_config?.CacheConfig?.quantization, undefined);
  assert.is(lxc['900']?.firewall?.rules?.[0]?.proto, 'icmp');
  assert.is(config.vm.vms[1]?.volumes?.[0]?.name, undefined);
  assert.equal(config.vm.vms[1]?.docker_stacks, ['portainer_service']);
  assert.ok(config.stacks.docker_stacks.portainer_service?.nginx_proxy);
  assert.is(config.certificates[0]?.guest_id, undefined);
  const warned = config.warnings().map((w) => `${path.basename(w.file)} ${w.pointer}`);
  assert.equal(warned, [
    'phoenix_hypervisor_config.json /portainer_api/admin_password',
    'phoenix_stacks_config.json /docker_stacks/app_service/environments/production/variables/1/value',
  ]);
  for (const w of config.warnings()) {
    assert.not.match(w.message, /fixture-inline-password-123|fixture-db-pass/);
  }
});

// ---------------------------------------------------------------- cross-file checks

test('cross-file: unknown clone sources and dependencies, shared and repeated ids', () => {
  const lxc = example('lxc');
  lxc.lxc_configs['102'].clone_from_ctid = '905';
  lxc.lxc_configs['101'].dependencies = ['103', '555'];
  lxc.lxc_configs['1001'] = { ...lxc.lxc_configs['103'], name: 'clash' };
  lxc.lxc_configs['1001'].mac_address = 'BC:24:11:00:10:01';
  lxc.lxc_configs['1001'].network_config = { name: 'eth0', bridge: 'vmbr100', ip: 'dhcp' };
  const vm = example('vm');
  vm.vms[2].clone_from_vmid = 900;
  vm.vms.push({ ...vm.vms[1], network_config: { ip: 'dhcp' } });
  vm.vms[3].dependencies = ['1001'];
  const err = referenceError({ lxc, vm });
  const found = err.issues.map((issue) => `${path.basename(issue.file)} ${issue.pointer}: ${issue.message}`);
  const expect = [
    'phoenix_vm_configs.json /vms/0/vmid: 9000 is also',
    'phoenix_vm_configs.json /vms/1/vmid: 1001 is also a container (phoenix_lxc_configs.json /lxc_configs/1001); containers and VMs share one id space',
    'phoenix_vm_configs.json /vms/3/vmid: vmid 1001 is already used by /vms/1',
    'phoenix_lxc_configs.json /lxc_configs/101/dependencies/1: dependency 555 names no container or VM',
    'phoenix_lxc_configs.json /lxc_configs/102/clone_from_ctid: clone source 905 is not defined in lxc_configs',
    'phoenix_vm_configs.json /vms/2/clone_from_vmid: clone source 900 is a container; a VM clones a VM',
    'phoenix_vm_configs.json /vms/3/dependencies/0: guest 1001 depends on itself',
  ];
  assert.not.ok(found.some((line) => line.startsWith(expect[0] ?? '')), 'no false alarm for 9000');
  for (const line of expect.slice(1)) assert.ok(found.includes(line), `missing: ${line}\nin:\n${found.join('\n')}`);
  assert.match(err.message.split('\n')[0] ?? '', /^\S+phoenix_vm_configs\.json at \/vms\/1\/vmid: /);
});

test('cross-file: a container cloned from a VM, a VM cloned from nothing', () => {
  const lxc = example('lxc');
  lxc.lxc_configs['103'].clone_from_ctid = '9000';
  const vm = example('vm');
  vm.vms[1].clone_from_vmid = 9100;
  const err = referenceError({ lxc, vm });
  assert.ok(err.issues.some((i) => i.pointer === '/lxc_configs/103/clone_from_ctid' && /is a VM/.test(i.message)));
  assert.ok(err.issues.some((i) => i.pointer === '/vms/1/clone_from_vmid' && /9100 is not defined in vms/.test(i.message)));
});

test('cross-file: one address or MAC on two guests', () => {
  const lxc = example('lxc');
  lxc.lxc_configs['102'].network_config.ip = '172.16.100.11/24';
  lxc.lxc_configs['102'].mac_address = 'bc:24:11:00:01:03';
  const vm = example('vm');
  vm.vms[2].network_config.ip = '10.0.0.10/24';
  const err = referenceError({ lxc, vm });
  const byPointer = new Map(err.issues.map((i) => [i.pointer, i.message]));
  assert.match(byPointer.get('/lxc_configs/103/network_config/ip') ?? '', /172\.16\.100\.11 is also used by CT 102/);
  assert.match(byPointer.get('/lxc_configs/103/mac_address') ?? '', /MAC address BC:24:11:00:01:03 is also used by CT 102/);
  assert.match(byPointer.get('/vms/2/network_config/ip') ?? '', /10\.0\.0\.10 is also used by CT 101 \(phoenix_lxc_configs\.json/);
});

test('cross-file: certificates, stacks and the gateway client certificate must name what exists', () => {
  const certificates = example('certificates');
  certificates[0].guest_id = 1001; // guest_type is lxc
  certificates[3].guest_id = 1003;
  const vm = example('vm');
  vm.vms[2].docker_stacks = ['whoami_service', 'qdrant_service'];
  const hypervisor = example('hypervisor');
  hypervisor.gateway.client_certificate = 'gateway-client';
  const err = referenceError({ certificates, vm, hypervisor });
  const found = err.issues.map((i) => `${path.basename(i.file)} ${i.pointer}: ${i.message}`);
  for (const line of [
    'certificate-manifest.json /0/guest_id: guest 1001 is a VM, but guest_type is "lxc"',
    'certificate-manifest.json /3/guest_id: guest 1003 names no VM',
    'phoenix_vm_configs.json /vms/2/docker_stacks/1: stack "qdrant_service" is not defined in phoenix_stacks_config.json',
    'phoenix_hypervisor_config.json /gateway/client_certificate: no certificate with common_name "gateway-client" in certificate-manifest.json',
  ]) {
    assert.ok(found.includes(line), `missing: ${line}\nin:\n${found.join('\n')}`);
  }
});

// ---------------------------------------------------------------- secrets

test('password values never appear in schema errors', () => {
  const hypervisor = example('hypervisor');
  delete hypervisor.portainer_api.admin_password_file;
  hypervisor.portainer_api.admin_password = 987654321;
  hypervisor.users.password_hash = 123456789;
  hypervisor.portainer_api.api_key = 55555555;
  const err = loadError('hypervisor', hypervisor);
  assert.ok(pointers(err).includes('/portainer_api/admin_password'));
  assert.match(err.message, /admin_password: expected string, got number \(value hidden\)/);
  assert.not.match(err.message, /987654321|123456789|55555555/);

  const stacks = example('stacks');
  stacks.docker_stacks.whoami_service.environments.production.variables.push({ name: 'DB_PASSWORD', value: 31337 });
  stacks.docker_stacks.whoami_service.environments.production.variables.push({ name: 'DB_PASS', value: ['s3cr3t-list'] });
  const stackErr = loadError('stacks', stacks);
  assert.is(stackErr.issues.length, 2);
  assert.not.match(stackErr.message, /31337|s3cr3t/);
});

test('a JSON syntax error next to a password does not quote the password', () => {
  const text = '{\n  "portainer_api": {"admin_password": "hunter2-very-secret" "admin_user": "admin"}\n}\n';
  const err = loadError('hypervisor', text);
  assert.match(err.message, /line 2/);
  assert.not.match(err.message, /hunter2/);
});

// ---------------------------------------------------------------- API details

test('validateDocument checks an in-memory document and types the result', () => {
  const vm = validateDocument('vm', example('vm'), 'memory.json');
  assert.is(vm.vms[0]?.vmid, 9000);
  try {
    validateDocument('certificates', [{ common_name: 'x' }], 'memory.json');
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as Error).message, /^memory\.json at \/0: missing required key "cert_path"/);
  }
});

test('generated validators are up to date with the schemas, and the schemas pass their lint', () => {
  assert.equal(staleValidators(), []);
  assert.equal(lintSchemas(readSchemas()), []);
});


test('the bash toolkit\'s manifests, Phoenix\'s own and the compatibility fixtures all pass the tightened schemas', () => {
  // PHOENIX_UPSTREAM_ETC may name a bash toolkit's own etc/ to check as well.
  const upstream = process.env.PHOENIX_UPSTREAM_ETC;
  const sets = [path.join(ROOT, 'etc'), path.join(ROOT, 'test', 'fixtures', 'compat', 'etc'), QUIRKS, ...(upstream ? [upstream] : [])];
  const files = { hypervisor: 'phoenix_hypervisor_config.json', lxc: 'phoenix_lxc_configs.json', vm: 'phoenix_vm_configs.json', stacks: 'phoenix_stacks_config.json', certificates: 'certificate-manifest.json' } as const;
  for (const dir of sets) {
    for (const [kind, name] of Object.entries(files) as Array<[keyof typeof files, string]>) {
      const file = path.join(dir, name);
      if (fs.existsSync(file)) validateDocument(kind, readJsonSync(file), file);
    }
  }
});

// ---------------------------------------------------------------- paths every known manifest uses

test('the bash toolkit\'s, the compatibility fixtures\' and the example manifests pass every path check', () => {
  // The bash toolkit's own manifests where it is installed (or PHOENIX_UPSTREAM_ETC); checked when present.
  const upstream = process.env.PHOENIX_UPSTREAM_ETC ?? '/usr/local/phoenix_hypervisor/etc';
  const sets = [EXAMPLES, path.join(ROOT, 'test', 'fixtures', 'compat', 'etc'), ...(fs.existsSync(upstream) ? [upstream] : [])];
  for (const dir of sets) {
    clearConfigCache();
    const paths = Object.fromEntries(KINDS.map((kind) => [kind, path.join(dir, MANIFEST_FILES[kind])])) as unknown as ConfigPaths;
    loadConfig(paths).validateReferences();
  }
});

test('a dependency cycle is refused by validateReferences with its file and pointer', () => {
  const lxc = example('lxc');
  lxc.lxc_configs['900'].dependencies = ['101'];
  const err = referenceError({ lxc });
  assert.ok(err.issues.some((i) => i.file.endsWith(MANIFEST_FILES.lxc) && i.pointer === '/lxc_configs/900/dependencies/0' && /dependency cycle: .*900 -> 101/.test(i.message)), err.message);
});

test.run();
