// The Traefik dynamic configuration generator: golden file from the example
// manifests, both Traefik files valid against Traefik's published v3 schemas,
// backends from the guests' addresses and schemes, and the script's
// idempotence and dry-run.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { tmpDir } from './helpers/tmp.mts';
import { assertGolden } from './helpers/golden.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config.mts';
import { resolveOptions } from '../lib/env.mts';
import { configureLog } from '../lib/log.mts';
import { DYNAMIC_RELATIVE, renderTraefikDynamic } from '../lib/gateway/traefik.mts';
import { staticConfigObject } from '../lib/features/traefik.mts';
import { caUrl } from '../lib/features/pki.mts';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const SCRIPT = path.join(ROOT, 'scripts', 'generate_traefik_config.mjs');
const SCHEMAS = path.join(ROOT, 'test', 'fixtures', 'traefik');
configureLog({ file: undefined, write: () => {} });

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function baseWith(edit: (m: { hv: Json; lxc: Json; vm: Json }) => void = () => {}): string {
  const base = tmpDir('phoenix-traefik-');
  fs.mkdirSync(path.join(base, 'etc'));
  for (const file of fs.readdirSync(path.join(ROOT, 'etc'))) {
    if (file.endsWith('.json')) fs.copyFileSync(path.join(ROOT, 'etc', file), path.join(base, 'etc', file));
  }
  const read = (f: string) => JSON.parse(fs.readFileSync(path.join(base, 'etc', f), 'utf8'));
  const m = { hv: read('phoenix_hypervisor_config.json'), lxc: read('phoenix_lxc_configs.json'), vm: read('phoenix_vm_configs.json') };
  edit(m);
  fs.writeFileSync(path.join(base, 'etc', 'phoenix_hypervisor_config.json'), JSON.stringify(m.hv));
  fs.writeFileSync(path.join(base, 'etc', 'phoenix_lxc_configs.json'), JSON.stringify(m.lxc));
  fs.writeFileSync(path.join(base, 'etc', 'phoenix_vm_configs.json'), JSON.stringify(m.vm));
  return base;
}

const configOf = (base: string) => loadConfig(resolveConfigPaths({}, { PHOENIX_BASE_DIR: base }));

function validator(file: string) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  return ajv.compile(JSON.parse(fs.readFileSync(path.join(SCHEMAS, file), 'utf8')));
}

function runScript(base: string, args: string[] = []) {
  const env: Record<string, string | undefined> = {
    ...process.env,
    PHOENIX_BASE_DIR: base,
    MAIN_LOG_FILE: path.join(base, 'phoenix.log'),
    PHOENIX_LOCK_FILE: path.join(base, 'phoenix.lock'),
  };
  for (const key of ['PHOENIX_DRY_RUN', 'HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'STACKS_CONFIG_FILE']) delete env[key];
  return spawnSync(process.execPath, [SCRIPT, ...args], { env, encoding: 'utf8', timeout: 60_000 });
}

test('dynamic file from the example manifests (golden)', async () => {
  const { text } = await renderTraefikDynamic(configOf(baseWith()));
  assertGolden('gateway/traefik-dynamic_conf.yml', text);
});

test('dynamic file validates against Traefik v3 file-provider schema', async () => {
  const validate = validator('traefik-v3-file-provider.json');
  const { text } = await renderTraefikDynamic(configOf(baseWith()));
  const ok = validate(parse(text));
  assert.ok(ok, JSON.stringify(validate.errors, null, 1));
  // The schema must be able to say no: a v1-style entrypoint key is not dynamic config.
  assert.not.ok(validate({ ...parse(text), entryPoints: { mesh: { http: { tls: { clientCA: { files: ['x'] } } } } } }));
});

test('static file (the traefik feature\'s) validates against the Traefik v3 static schema', () => {
  const validate = validator('traefik-v3.json');
  const config = configOf(baseWith());
  const context = { config, options: resolveOptions({ PHOENIX_BASE_DIR: '/nonexistent' }) };
  const object = staticConfigObject(context, '102', caUrl(context, '102'));
  assert.ok(validate(JSON.parse(JSON.stringify(object))), JSON.stringify(validate.errors, null, 1));
  assert.equal((object as Json).entryPoints.mesh.http.tls, { options: 'mesh-mtls@file' });
  assert.not.ok(validate({ ...object, entryPoints: { mesh: { address: ':8443', http: { tls: { clientCA: { files: ['x'] } } } } } }), 'v1 clientCA is rejected');
});

test('mTLS options, Traefik\'s own certificate, routers on mesh with tls', async () => {
  const { text, model } = await renderTraefikDynamic(configOf(baseWith()));
  const doc = parse(text);
  assert.equal(doc.tls.options['mesh-mtls'].clientAuth, { caFiles: ['/etc/traefik/certs/ca.pem'], clientAuthType: 'RequireAndVerifyClientCert' });
  assert.is(doc.tls.options['mesh-mtls'].minVersion, 'VersionTLS12');
  assert.equal(doc.tls.certificates, [{ certFile: '/etc/traefik/certs/traefik.internal.example.org.crt', keyFile: '/etc/traefik/certs/traefik.internal.example.org.key' }]);
  for (const router of Object.values(doc.http.routers) as Json[]) {
    assert.equal(router.entryPoints, ['mesh']);
    assert.equal(router.tls, {});
  }
  assert.not.match(text, /clientCA\b/);
  assert.ok(model.skipped.some((s) => /CT 101.*gateway itself/.test(s)));
});

test('backends follow the manifests: scheme, address, domain; dhcp is skipped, never http://dhcp', async () => {
  const base = baseWith(({ hv, lxc, vm }) => {
    hv.domain_name = 'lab.example.net';
    lxc.lxc_configs['103'].network_config.ip = '172.16.100.77/24';
    lxc.lxc_configs['103'].traefik_service.scheme = 'https';
    vm.vms.find((v: Json) => v.vmid === 1002).network_config.ip = 'dhcp';
  });
  const { text, model } = await renderTraefikDynamic(configOf(base));
  const doc = parse(text);
  assert.is(doc.http.services['ca-service'].loadBalancer.servers[0].url, 'https://172.16.100.77:9000');
  assert.is(doc.http.services['ca-service'].loadBalancer.serversTransport, 'internal-ca');
  assert.is(doc.http.routers['ca-router'].rule, 'Host(`ca.lab.example.net`)');
  assert.not.match(text, /dhcp/);
  assert.not.match(text, /internal\.example\.org`/);
  assert.ok(model.skipped.some((s) => /VM 1002/.test(s)));
  const plain = baseWith(({ lxc }) => delete lxc.lxc_configs['103'].traefik_service.scheme);
  const plainDoc = parse((await renderTraefikDynamic(configOf(plain))).text);
  assert.is(plainDoc.http.services['ca-service'].loadBalancer.servers[0].url, 'http://172.16.100.11:9000');
  assert.is(plainDoc.http.services['ca-service'].loadBalancer.serversTransport, undefined);
  const dhcp = baseWith(({ lxc }) => (lxc.lxc_configs['103'].network_config.ip = 'dhcp'));
  const dhcpOut = await renderTraefikDynamic(configOf(dhcp));
  assert.not.match(dhcpOut.text, /dhcp|ca-service/);
  assert.ok(dhcpOut.model.skipped.some((s) => /CT 103.*no static address/.test(s)));
});

test('script: writes the file, a second run is unchanged, dry-run writes nothing', () => {
  const base = baseWith();
  const dry = runScript(base, ['--dry-run']);
  assert.is(dry.status, 0, dry.stderr);
  assert.not.ok(fs.existsSync(path.join(base, DYNAMIC_RELATIVE)));
  assert.match(dry.stderr, /DRY-RUN: would write/);
  const first = runScript(base);
  assert.is(first.status, 0, first.stderr);
  const written = fs.readFileSync(path.join(base, DYNAMIC_RELATIVE), 'utf8');
  assert.ok(parse(written).tls.options['mesh-mtls']);
  const mtime = fs.statSync(path.join(base, DYNAMIC_RELATIVE)).mtimeMs;
  const second = runScript(base);
  assert.is(second.status, 0, second.stderr);
  assert.match(second.stderr, /unchanged/);
  assert.is(fs.statSync(path.join(base, DYNAMIC_RELATIVE)).mtimeMs, mtime);
  assert.is(runScript(base, ['extra']).status, 1);
});

test.run();
