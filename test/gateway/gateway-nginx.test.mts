// The Nginx gateway generator: the three TLS topologies from the example
// manifests (goldens), every one accepted by the real `nginx -t`, addresses
// taken from the manifests, and the script's install rules (a rejected
// configuration is never installed, a second run changes nothing, dry-run
// writes nothing).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.mts';
import { assertGolden } from '../helpers/golden.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { configureLog } from '../../lib/core/log.mts';
import { setProcessContext } from '../../lib/core/context.mts';
import { PhoenixError, ConfigError } from '../../lib/core/errors.mts';
import {
  SITE_RELATIVE,
  STREAM_RELATIVE,
  NGINX_CONF_RELATIVE,
  findNginx,
  gatewayModel,
  renderGatewayFiles,
  validateWithNginx,
} from '../../lib/gateway/nginx.mts';
import type { GatewayMode } from '../../lib/config/types.mts';
import { traefikDynamic } from '../../lib/gateway/traefik.mts';
import { planGatewayFiles, writeGatewayFiles } from '../../lib/gateway/nginx.mts';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'generate_nginx_gateway_config.mjs');
const NGINX = findNginx(`${process.env.PATH ?? ''}${path.delimiter}/usr/sbin${path.delimiter}/sbin`);
configureLog({ file: undefined, write: () => {} });
setProcessContext({ dryRun: false });

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** A base dir holding a copy of the example manifests, after `edit` changed them. */
function baseWith(edit: (m: { hv: Json; lxc: Json; certs: Json[] }) => void = () => {}): string {
  const base = tmpDir('phoenix-gw-');
  fs.mkdirSync(path.join(base, 'etc'));
  for (const file of fs.readdirSync(path.join(ROOT, 'etc'))) {
    if (file.endsWith('.json')) fs.copyFileSync(path.join(ROOT, 'etc', file), path.join(base, 'etc', file));
  }
  const read = (f: string) => JSON.parse(fs.readFileSync(path.join(base, 'etc', f), 'utf8'));
  const m = { hv: read('phoenix_hypervisor_config.json'), lxc: read('phoenix_lxc_configs.json'), certs: read('certificate-manifest.json') };
  edit(m);
  fs.writeFileSync(path.join(base, 'etc', 'phoenix_hypervisor_config.json'), JSON.stringify(m.hv));
  fs.writeFileSync(path.join(base, 'etc', 'phoenix_lxc_configs.json'), JSON.stringify(m.lxc));
  fs.writeFileSync(path.join(base, 'etc', 'certificate-manifest.json'), JSON.stringify(m.certs));
  return base;
}

function configOf(base: string) {
  return loadConfig(resolveConfigPaths({}, { PHOENIX_BASE_DIR: base }));
}

function filesFor(mode: GatewayMode) {
  const config = configOf(baseWith(({ hv }) => (hv.gateway.mode = mode)));
  const model = gatewayModel(config);
  return { model, files: renderGatewayFiles(model) };
}

function text(files: { relative: string; text: string }[], relative: string): string {
  return files.find((f) => f.relative === relative)?.text ?? '';
}

function runScript(base: string, args: string[] = [], extraEnv: Record<string, string> = {}) {
  const env: Record<string, string | undefined> = {
    ...process.env,
    PATH: `${process.env.PATH ?? ''}${path.delimiter}/usr/sbin`,
    PHOENIX_BASE_DIR: base,
    MAIN_LOG_FILE: path.join(base, 'phoenix.log'),
    PHOENIX_LOCK_FILE: path.join(base, 'phoenix.lock'),
    PHOENIX_RECORD: path.join(base, 'record.jsonl'),
    ...extraEnv,
  };
  for (const key of ['PHOENIX_DRY_RUN', 'HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'STACKS_CONFIG_FILE']) {
    if (!(key in extraEnv)) delete env[key];
  }
  return spawnSync(process.execPath, [SCRIPT, ...args], { env, encoding: 'utf8', timeout: 60_000 });
}

function recorded(base: string): { cmd: string; args: string[]; mutating: boolean }[] {
  const file = path.join(base, 'record.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

function requireNginx(): string | undefined {
  if (NGINX) return NGINX;
  if (process.env.CI) assert.unreachable('nginx is not installed but CI is set: install it (Makefile DEB_PACKAGES)');
  console.log('  (nginx not installed: nginx -t checks skipped outside CI)');
  return undefined;
}

// ---------------------------------------------------------------- rendering

for (const mode of ['hybrid', 'passthrough', 'mtls'] as const) {
  test(`${mode}: golden files from the example manifests`, () => {
    const { files } = filesFor(mode);
    assertGolden(`gateway/nginx-${mode}-gateway`, text(files, SITE_RELATIVE));
    assertGolden(`gateway/nginx-${mode}-stream-gateway.conf`, text(files, STREAM_RELATIVE));
  });

  test(`${mode}: accepted by nginx -t in a temporary prefix`, async () => {
    const nginx = requireNginx();
    if (!nginx) return;
    const { model, files } = filesFor(mode);
    await validateWithNginx(model, files, nginx);
  });
}

test('nginx.conf is the same in every mode and has a top-level stream block', () => {
  const confs = (['hybrid', 'passthrough', 'mtls'] as const).map((mode) => text(filesFor(mode).files, NGINX_CONF_RELATIVE).replace(/mode \w+/, ''));
  assert.is(confs[0], confs[1]);
  assert.is(confs[0], confs[2]);
  assertGolden('gateway/nginx.conf', text(filesFor('hybrid').files, NGINX_CONF_RELATIVE));
  assert.match(confs[0] as string, /\nstream \{\n    include \/etc\/nginx\/stream\.d\/\*\.conf;\n\}/);
});

test('hybrid: only acme-tls/1 and the listed SNIs pass through; the rest is terminated and re-encrypted with the client certificate', () => {
  const { files } = filesFor('hybrid');
  const stream = text(files, STREAM_RELATIVE);
  const site = text(files, SITE_RELATIVE);
  assert.match(stream, /ssl_preread on;/);
  assert.match(stream, /~\\bacme-tls\/1\\b phoenix_traefik_websecure;/);
  assert.match(stream, /whoami\.internal\.example\.org phoenix_traefik_websecure;/);
  assert.match(stream, /default phoenix_gateway_tls;/);
  assert.match(site, /listen 127\.0\.0\.1:10443 ssl/);
  for (const directive of [
    'proxy_pass https://172.16.100.12:8443;',
    'proxy_ssl_certificate /etc/nginx/ssl/nginx-gateway-client.crt;',
    'proxy_ssl_certificate_key /etc/nginx/ssl/nginx-gateway-client.key;',
    'proxy_ssl_trusted_certificate /usr/local/share/ca-certificates/phoenix_root_ca.crt;',
    'proxy_ssl_verify on;',
    'proxy_ssl_verify_depth 2;',
    'proxy_ssl_server_name on;',
    'proxy_ssl_name traefik.internal.example.org;',
  ]) assert.ok(site.includes(directive), directive);
  assert.not.match(site, /proxy_ssl_verify off/);
});

test('passthrough has no terminating server; mtls has no stream server and no passthrough', () => {
  const pass = filesFor('passthrough').files;
  assert.not.match(text(pass, SITE_RELATIVE), /ssl_certificate/);
  assert.match(text(pass, STREAM_RELATIVE), /listen 443;[\s\S]*proxy_pass phoenix_traefik_websecure;/);
  const mtls = filesFor('mtls').files;
  assert.is(text(mtls, STREAM_RELATIVE).split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).length, 0, 'comments only');
  assert.match(text(mtls, SITE_RELATIVE), /listen 443 ssl http2 default_server;/);
  assert.match(text(mtls, SITE_RELATIVE), /proxy_ssl_certificate \/etc\/nginx\/ssl\/nginx-gateway-client\.crt;/);
});

test('addresses, names and certificate paths follow the manifests', () => {
  const base = baseWith(({ hv, lxc, certs }) => {
    lxc.lxc_configs['102'].network_config.ip = '172.16.100.42/24';
    hv.gateway.mesh_port = 9443;
    hv.gateway.mesh_server_name = 'mesh.example.net';
    hv.gateway.passthrough_snis = ['app.example.net'];
    const client = certs.find((c: Json) => c.common_name === 'nginx-gateway-client');
    client.cert_path = '/quickOS/lxc-persistent-data/101/ssl/client/gw.crt';
  });
  const files = renderGatewayFiles(gatewayModel(configOf(base)));
  const all = files.map((f) => f.text).join('\n');
  assert.not.ok(all.includes('172.16.100.12'), 'the old Traefik address is gone');
  assert.ok(all.includes('proxy_pass https://172.16.100.42:9443;'));
  assert.ok(all.includes('proxy_pass http://172.16.100.42:80;'));
  assert.ok(all.includes('server 172.16.100.42:443;'));
  assert.ok(all.includes('proxy_ssl_name mesh.example.net;'));
  assert.ok(all.includes('app.example.net phoenix_traefik_websecure;'));
  assert.ok(all.includes('proxy_ssl_certificate /etc/nginx/ssl/client/gw.crt;'), 'host path mapped through the 101 ssl mount');
});

test('Traefik without a static address, or no gateway client certificate, is a configuration error', () => {
  const dhcp = baseWith(({ lxc }) => (lxc.lxc_configs['102'].network_config.ip = 'dhcp'));
  assert.throws(() => gatewayModel(configOf(dhcp)), (err: unknown) => err instanceof ConfigError && /no static address/.test((err as Error).message));
  const noClient = baseWith(({ certs }) => certs.splice(certs.findIndex((c: Json) => c.common_name === 'nginx-gateway-client'), 1));
  assert.throws(() => gatewayModel(configOf(noClient)), (err: unknown) => err instanceof ConfigError);
  const bad = baseWith(({ hv }) => (hv.gateway.passthrough_snis = ['x; include /etc/passwd']));
  assert.throws(() => gatewayModel(configOf(bad)), (err: unknown) => err instanceof PhoenixError);
});

test('what nginx passes through raw, Traefik routes on websecure (or a Swarm stack does)', () => {
  for (const mode of ['hybrid', 'passthrough'] as const) {
    const config = configOf(baseWith(({ hv }) => Object.assign(hv.gateway, { mode, passthrough_snis: ['ca.internal.example.org', 'whoami.internal.example.org'] })));
    const stream = text(renderGatewayFiles(gatewayModel(config)), STREAM_RELATIVE);
    const dynamic = traefikDynamic(config);
    const websecureHosts = dynamic.websecure.map((route) => route.host);
    if (mode === 'hybrid') {
      const passed = [...stream.matchAll(/^ {4}(\S+) phoenix_traefik_websecure;$/gm)].map((m) => m[1] as string).filter((name) => !name.startsWith('~'));
      assert.equal(passed, ['ca.internal.example.org', 'whoami.internal.example.org']);
      assert.equal(websecureHosts, ['ca.internal.example.org']);
      assert.ok(dynamic.notes.some((note) => note.includes('whoami.internal.example.org')), 'the other one is a Swarm stack\'s');
    } else {
      assert.match(stream, /listen 443;[\s\S]*proxy_pass phoenix_traefik_websecure;/);
      assert.equal(websecureHosts, dynamic.routes.map((route) => route.host), 'every route');
    }
  }
});

test('planGatewayFiles/writeGatewayFiles: pending files by content and mode; a second plan has nothing pending', async () => {
  const base = baseWith();
  const plan = planGatewayFiles(configOf(base), base);
  assert.equal(plan.pending.map((file) => file.relative), [NGINX_CONF_RELATIVE, SITE_RELATIVE, STREAM_RELATIVE]);
  await writeGatewayFiles(plan, NGINX);
  assert.equal(planGatewayFiles(configOf(base), base).pending, []);
  fs.chmodSync(path.join(base, SITE_RELATIVE), 0o600);
  assert.equal(planGatewayFiles(configOf(base), base).pending.map((file) => file.relative), [SITE_RELATIVE]);
});

// ---------------------------------------------------------------- the script

test('script: writes the three files, then a second run changes nothing and runs nothing', () => {
  const base = baseWith();
  const first = runScript(base);
  assert.is(first.status, 0, first.stderr);
  for (const rel of [NGINX_CONF_RELATIVE, SITE_RELATIVE, STREAM_RELATIVE]) {
    const file = path.join(base, rel);
    assert.ok(fs.existsSync(file), rel);
    assert.is(fs.statSync(file).mode & 0o777, 0o644);
  }
  assert.is(fs.readFileSync(path.join(base, SITE_RELATIVE), 'utf8'), text(filesFor('hybrid').files, SITE_RELATIVE));
  const firstCalls = recorded(base).length;
  // As root the check runs in its own network namespace (unshare --net -- nginx -t …).
  const isNginx = (c: { cmd: string; args: string[] }) => path.basename(c.cmd) === 'nginx' || (path.basename(c.cmd) === 'unshare' && c.args.some((a) => path.basename(a) === 'nginx'));
  if (NGINX) assert.ok(recorded(base).some((c) => isNginx(c) && c.args.includes('-t') && !c.mutating), 'nginx -t ran, read-only');
  const second = runScript(base);
  assert.is(second.status, 0, second.stderr);
  assert.match(second.stderr, /unchanged/);
  assert.is(recorded(base).length, firstCalls, 'no command on the second run');
});

test('script: a configuration nginx rejects is not installed, the old file stays', () => {
  if (!requireNginx()) return;
  const base = baseWith(({ certs }) => {
    const client = certs.find((c: Json) => c.common_name === 'nginx-gateway-client');
    client.cert_path = path.join(base0, 'broken.crt');
    client.key_path = path.join(base0, 'broken.key');
  });
  const site = path.join(base, SITE_RELATIVE);
  fs.mkdirSync(path.dirname(site), { recursive: true });
  fs.writeFileSync(site, '# the previous gateway\n');
  const result = runScript(base);
  assert.is(result.status, 1, result.stderr);
  assert.match(result.stderr, /nginx rejected the generated gateway configuration/);
  assert.is(fs.readFileSync(site, 'utf8'), '# the previous gateway\n');
  assert.not.ok(fs.existsSync(path.join(base, STREAM_RELATIVE)));
  assert.not.ok(fs.existsSync(path.join(base, NGINX_CONF_RELATIVE)));
});
// Host copies of the client certificate that exist but are not PEM: nginx -t must refuse to load them.
const base0 = tmpDir('phoenix-gw-certs-');
fs.writeFileSync(path.join(base0, 'broken.crt'), 'not a certificate\n');
fs.writeFileSync(path.join(base0, 'broken.key'), 'not a key\n', { mode: 0o600 });

test('script: --dry-run writes nothing and says what it would write', () => {
  const base = baseWith();
  const result = runScript(base, ['--dry-run']);
  assert.is(result.status, 0, result.stderr);
  assert.not.ok(fs.existsSync(path.join(base, 'etc', 'nginx')));
  assert.match(result.stderr, /DRY-RUN: would write .*sites-available\/gateway/);
  assert.ok(recorded(base).every((c) => !c.mutating), 'only read-only commands');
});

test('script: --help and unknown arguments', () => {
  const base = baseWith();
  const help = runScript(base, ['--help']);
  assert.is(help.status, 0);
  assert.match(help.stdout, /^Usage: generate_nginx_gateway_config\.sh/);
  const bad = runScript(base, ['101']);
  assert.is(bad.status, 1);
  assert.not.ok(fs.existsSync(path.join(base, 'etc', 'nginx')));
});

test.run();
