// The Traefik configuration generator: golden files from the example
// manifests, both Traefik files valid against Traefik's published v3 schemas,
// backends from the guests' addresses and schemes (the CA always over https),
// the script's idempotence and dry-run, and a template laid out like the bash
// toolkit's (test/fixtures/compat/traefik.yml.template) with no gateway
// section: accepted, given the step-ca resolver, made safe.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { tmpDir } from '../helpers/tmp.mts';
import { assertGolden } from '../helpers/golden.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { resolveOptions } from '../../lib/core/env.mts';
import { configureLog } from '../../lib/core/log.mts';
import { DYNAMIC_RELATIVE, renderTraefikDynamic } from '../../lib/gateway/traefik.mts';
import { STATIC_RELATIVE, renderTraefikStatic } from '../../lib/features/lxc/traefik-static.mts';
import { ConfigError } from '../../lib/core/errors.mts';
import { caUrl } from '../../lib/guest/root-ca.mts';
import { CA_PEM } from '../../lib/features/lxc/traefik.mts';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'generate_traefik_config.mjs');
const SCHEMAS = path.join(ROOT, 'test', 'fixtures', 'traefik');
const COMPAT_TEMPLATE = path.join(ROOT, 'test', 'fixtures', 'compat', 'traefik.yml.template');
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

/** The static file as the generator renders it for the Traefik CT of `base`'s manifests. */
async function staticOf(base: string) {
  const config = configOf(base);
  const context = { config, options: resolveOptions({ PHOENIX_BASE_DIR: base }) };
  return renderTraefikStatic(context, '102', caUrl(context, '102'));
}

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
  // A container without a scheme is plain http; the CA container is not (below).
  const plain = baseWith(({ lxc }) => (lxc.lxc_configs['104'] = appCt()));
  const plainDoc = parse((await renderTraefikDynamic(configOf(plain))).text);
  assert.is(plainDoc.http.services['app-service'].loadBalancer.servers[0].url, 'http://172.16.100.14:8080');
  assert.is(plainDoc.http.services['app-service'].loadBalancer.serversTransport, undefined);
  const dhcp = baseWith(({ lxc }) => (lxc.lxc_configs['103'].network_config.ip = 'dhcp'));
  const dhcpOut = await renderTraefikDynamic(configOf(dhcp));
  assert.not.match(dhcpOut.text, /dhcp|ca-service/);
  assert.ok(dhcpOut.model.skipped.some((s) => /CT 103.*no static address/.test(s)));
});

/** A plain application container, not part of the PKI, publishing an http service. */
function appCt(): Json {
  const base = JSON.parse(fs.readFileSync(path.join(ROOT, 'etc', 'phoenix_lxc_configs.json'), 'utf8')).lxc_configs['900'];
  return {
    ...base,
    name: 'app',
    is_template: false,
    clone_from_ctid: '900',
    network_config: { ...base.network_config, ip: '172.16.100.14/24' },
    mac_address: 'BC:24:11:00:01:04',
    traefik_service: { name: 'app', port: 8080 },
  };
}

test('the CA container is reached over https with the root CA trusted, whatever its traefik_service says', async () => {
  const validate = validator('traefik-v3-file-provider.json');
  // The bash toolkit's manifests give CT 103 no scheme; step-ca answers only TLS.
  for (const scheme of [undefined, 'http']) {
    const base = baseWith(({ lxc }) => {
      if (scheme === undefined) delete lxc.lxc_configs['103'].traefik_service.scheme;
      else lxc.lxc_configs['103'].traefik_service.scheme = scheme;
    });
    const { text, model } = await renderTraefikDynamic(configOf(base));
    const doc: Json = parse(text);
    assert.ok(validate(structuredClone(doc)), JSON.stringify(validate.errors, null, 1));
    const service = doc.http.services['ca-service'].loadBalancer;
    assert.equal(service.servers, [{ url: 'https://172.16.100.11:9000' }], `scheme ${scheme}`);
    assert.is(service.serversTransport, 'internal-ca');
    // The root the traefik feature and the CT 102 script install (CA_PEM), never skipped verification.
    assert.equal(doc.http.serversTransports['internal-ca'], { insecureSkipVerify: false, rootCAs: [CA_PEM] });
    assert.is(model.notes.some((n) => /CT 103 .*step-ca serves only https; traefik_service\.scheme 'http' ignored/.test(n)), scheme === 'http');
  }
});

test('script: writes both files, a second run is unchanged, dry-run writes nothing', async () => {
  const base = baseWith();
  const dry = runScript(base, ['--dry-run']);
  assert.is(dry.status, 0, dry.stderr);
  assert.not.ok(fs.existsSync(path.join(base, DYNAMIC_RELATIVE)));
  assert.match(dry.stderr, /DRY-RUN: would write/);
  assert.not.ok(fs.existsSync(path.join(base, STATIC_RELATIVE)));
  const first = runScript(base);
  assert.is(first.status, 0, first.stderr);
  const written = fs.readFileSync(path.join(base, DYNAMIC_RELATIVE), 'utf8');
  assert.ok(parse(written).tls.options['mesh-mtls']);
  assert.is(fs.readFileSync(path.join(base, STATIC_RELATIVE), 'utf8'), (await staticOf(base)).text);
  for (const rel of [DYNAMIC_RELATIVE, STATIC_RELATIVE]) assert.is(fs.statSync(path.join(base, rel)).mode & 0o777, 0o644, rel);
  const mtimes = [DYNAMIC_RELATIVE, STATIC_RELATIVE].map((rel) => fs.statSync(path.join(base, rel)).mtimeMs);
  const second = runScript(base);
  assert.is(second.status, 0, second.stderr);
  assert.match(second.stderr, /dynamic configuration \([^)]*\) unchanged/);
  assert.match(second.stderr, /static configuration \([^)]*\) unchanged/);
  assert.equal([DYNAMIC_RELATIVE, STATIC_RELATIVE].map((rel) => fs.statSync(path.join(base, rel)).mtimeMs), mtimes);
  assert.is(runScript(base, ['extra']).status, 1);
});

// ---------------------------------------------------------------- static file from the template

test('static file from the template and the example manifests (golden), valid for Traefik v3', async () => {
  const { text, document } = await staticOf(baseWith());
  assertGolden('gateway/traefik-traefik.yml', text);
  const validate = validator('traefik-v3.json');
  assert.ok(validate(parse(text)), JSON.stringify(validate.errors, null, 1));
  assert.equal(parse(text), JSON.parse(JSON.stringify(document)));
  const doc = parse(text);
  assert.equal(Object.keys(doc.entryPoints), ['web', 'websecure', 'mesh', 'traefik']);
  assert.equal([doc.entryPoints.web.address, doc.entryPoints.websecure.address, doc.entryPoints.mesh.address], [':80', ':443', ':8443']);
  assert.equal(doc.entryPoints.mesh.http.tls, { options: 'mesh-mtls@file' });
  assert.equal(doc.providers.file, { directory: '/etc/traefik/dynamic', watch: true });
  assert.equal(doc.certificatesResolvers['step-ca'].acme, {
    caServer: 'https://172.16.100.11:9000/acme/acme/directory',
    caCertificates: ['/etc/traefik/certs/ca.pem'],
    storage: '/etc/traefik/acme.json',
    tlsChallenge: {},
    caServerName: 'ca.internal.example.org',
  });
  assert.is(doc.entryPoints.websecure.http.tls.certResolver, 'step-ca');
  assert.is(doc.providers.swarm.endpoint, 'tcp://10.0.0.21:2376');
  assert.not.match(text, /clientCA|\$\{|insecure: true/);
});

test('static file: values follow the manifests; ACME off in mtls mode or when disabled; no Swarm manager, no swarm provider', async () => {
  const validate = validator('traefik-v3.json');
  const custom = parse((await staticOf(baseWith(({ hv, lxc }) => {
    hv.gateway.mesh_port = 9443;
    lxc.lxc_configs['102'].traefik_service.port = 8181;
    lxc.lxc_configs['102'].bootstrap_ca_url = 'https://ca.lab.example.net:9000/';
  }))).text);
  assert.is(custom.entryPoints.mesh.address, ':9443');
  assert.is(custom.entryPoints.traefik.address, ':8181');
  assert.is(custom.certificatesResolvers['step-ca'].acme.caServer, 'https://ca.lab.example.net:9000/acme/acme/directory');
  assert.is(custom.certificatesResolvers['step-ca'].acme.caServerName, undefined, 'a CA reached by name is verified by that name');
  for (const edit of [(hv: Json) => (hv.gateway.mode = 'mtls'), (hv: Json) => (hv.gateway.acme_tls_alpn = false)]) {
    const { text } = await staticOf(baseWith(({ hv }) => edit(hv)));
    const doc = parse(text);
    assert.ok(validate(parse(text)), JSON.stringify(validate.errors, null, 1));
    assert.is(doc.certificatesResolvers, undefined);
    assert.is(doc.entryPoints.websecure.http, undefined);
    assert.not.match(text, /acme|step-ca/);
  }
  const noSwarm = parse((await staticOf(baseWith(({ vm }) => vm.vms.forEach((v: Json) => delete v.swarm_role)))).text);
  assert.is(noSwarm.providers.swarm, undefined);
  assert.equal(noSwarm.providers.file, { directory: '/etc/traefik/dynamic', watch: true });
});

test('static file: a template with an unknown placeholder, a v1 clientCA or no mesh entrypoint is refused, naming the file and the place', async () => {
  const cases: Array<[string, (t: string) => string, RegExp]> = [
    ['unknown placeholder', (t) => t.replace('level: INFO', 'level: "${LOG_LEVEL}"'), /\/log\/level: \$\{LOG_LEVEL\} is not a placeholder Phoenix knows/],
    ['v1 clientCA', (t) => t.replace('        options: mesh-mtls@file', '        options: mesh-mtls@file\n        clientCA:\n          files: [/x.pem]'), /\/entryPoints\/mesh\/http\/tls\/clientCA: clientCA is Traefik v1 syntax/],
    ['no mesh', (t) => t.replace(/  mesh:\n    address: "[^"]*"\n    http:\n      tls:\n        options: mesh-mtls@file\n/, ''), /\/entryPoints\/mesh: the template has no 'mesh' entrypoint/],
    ['not YAML', (t) => `${t}\n  : [\n`, /not valid YAML/],
  ];
  const shipped = fs.readFileSync(path.join(ROOT, 'etc', 'traefik', 'traefik.yml.template'), 'utf8');
  for (const [name, change, expected] of cases) {
    const base = baseWith();
    fs.mkdirSync(path.join(base, 'etc', 'traefik'), { recursive: true });
    const template = path.join(base, 'etc', 'traefik', 'traefik.yml.template');
    const changed = change(shipped);
    assert.is.not(changed, shipped, `${name}: the case changes the template`);
    fs.writeFileSync(template, changed);
    try {
      await staticOf(base);
      assert.unreachable(name);
    } catch (err) {
      assert.instance(err, ConfigError, name);
      assert.ok((err as Error).message.includes(template), `${name}: ${(err as Error).message}`);
      assert.match((err as Error).message, expected, name);
    }
  }
  // An operator's own template, taken from the base directory, keeps its additions (DEBUG only when the hypervisor config asks).
  const base = baseWith(({ hv }) => (hv.gateway.traefik_log_level = 'DEBUG'));
  fs.mkdirSync(path.join(base, 'etc', 'traefik'), { recursive: true });
  fs.writeFileSync(path.join(base, 'etc', 'traefik', 'traefik.yml.template'), shipped.replace('level: INFO', 'level: DEBUG').replace('api:', 'accessLog: {}\napi:'));
  const own = await staticOf(base);
  assert.is(parse(own.text).log.level, 'DEBUG');
  assert.equal(parse(own.text).accessLog, {});
  assert.ok(validator('traefik-v3.json')(parse(own.text)));
});

// ---------------------------------------------------------------- the bash toolkit's template layout

/** `base` with the bash-shaped template as its own etc/traefik/traefik.yml.template. */
function withCompatTemplate(base: string, change: (text: string) => string = (t) => t): string {
  fs.mkdirSync(path.join(base, 'etc', 'traefik'), { recursive: true });
  fs.writeFileSync(path.join(base, 'etc', 'traefik', 'traefik.yml.template'), change(fs.readFileSync(COMPAT_TEMPLATE, 'utf8')));
  return base;
}

const noGateway = ({ hv }: { hv: Json }) => delete hv.gateway;

test('bash-shaped template and no gateway section: the script succeeds; step-ca resolver added, API not insecure, log not DEBUG, both files valid for Traefik v3', async () => {
  const base = withCompatTemplate(baseWith(noGateway));
  const r = runScript(base);
  assert.is(r.status, 0, r.stderr);
  const text = fs.readFileSync(path.join(base, STATIC_RELATIVE), 'utf8');
  const doc: Json = parse(text);
  const validateStatic = validator('traefik-v3.json');
  assert.ok(validateStatic(structuredClone(doc)), JSON.stringify(validateStatic.errors, null, 1));
  const dynamic: Json = parse(fs.readFileSync(path.join(base, DYNAMIC_RELATIVE), 'utf8'));
  const validateDynamic = validator('traefik-v3-file-provider.json');
  assert.ok(validateDynamic(structuredClone(dynamic)), JSON.stringify(validateDynamic.errors, null, 1));

  // No gateway section: hybrid, ACME on, mesh on 8443 (the documented defaults).
  assert.equal(doc.certificatesResolvers['step-ca'].acme, {
    caServer: 'https://172.16.100.11:9000/acme/acme/directory',
    caCertificates: [CA_PEM],
    storage: '/etc/traefik/acme.json',
    tlsChallenge: {},
    caServerName: 'ca.internal.example.org',
  });
  assert.equal(doc.entryPoints.mesh, { address: ':8443', http: { tls: { options: 'mesh-mtls@file' } } });
  assert.equal(doc.api, { dashboard: true, insecure: false });
  assert.is(doc.log.level, 'INFO');
  assert.not.match(text, /insecure: true|DEBUG/);
  // The rest of the template is kept as written.
  assert.is(doc.providers.swarm.endpoint, 'tcp://10.0.0.21:2376');
  assert.equal(doc.ping, { entryPoint: 'traefik' });
  // The dashboard stays reachable, through its mTLS router on the mesh.
  assert.equal(dynamic.http.routers['traefik-dashboard-router'], { rule: 'Host(`traefik.internal.example.org`)', service: 'api@internal', entryPoints: ['mesh'], tls: {} });

  assert.match(r.stderr, /\[WARN\] [^\n]*api\.insecure true -> false: an insecure API answers anyone/);
  assert.match(r.stderr, /\[WARN\] [^\n]*log\.level DEBUG -> INFO: [^\n]*set gateway\.traefik_log_level to DEBUG/);
  assert.match(r.stderr, /\[INFO\] [^\n]*has no ACME resolver 'step-ca': added one/);
  const again = runScript(base);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, /static configuration \([^)]*\) unchanged/);
});

test('bash-shaped template: a resolver of its own is kept; gateway.traefik_log_level decides the level; mtls mode adds no resolver', async () => {
  const own = await staticOf(withCompatTemplate(baseWith(noGateway), (t) => `${t}\ncertificatesResolvers:\n  step-ca:\n    acme:\n      caServer: https://ca.lab.example.net/acme/acme/directory\n      storage: /etc/traefik/own-acme.json\n      httpChallenge:\n        entryPoint: web\n`));
  const ownDoc: Json = parse(own.text);
  assert.equal(ownDoc.certificatesResolvers['step-ca'].acme, { caServer: 'https://ca.lab.example.net/acme/acme/directory', storage: '/etc/traefik/own-acme.json', httpChallenge: { entryPoint: 'web' } });
  assert.ok(validator('traefik-v3.json')(structuredClone(ownDoc)));

  const debug = await staticOf(withCompatTemplate(baseWith(({ hv }) => (hv.gateway.traefik_log_level = 'DEBUG'))));
  assert.is(parse(debug.text).log.level, 'DEBUG', 'asked for explicitly');
  assert.equal(debug.overridden.filter((o) => o.startsWith('log.level')), []);
  const quiet = await staticOf(withCompatTemplate(baseWith(({ hv }) => (hv.gateway.traefik_log_level = 'ERROR'))));
  assert.is(parse(quiet.text).log.level, 'ERROR');
  const trace = await staticOf(withCompatTemplate(baseWith(noGateway), (t) => t.replace('level: DEBUG', 'level: trace')));
  assert.is(parse(trace.text).log.level, 'INFO');
  assert.ok(trace.overridden.some((o) => o.startsWith('log.level trace -> INFO')));
  const warnLevel = await staticOf(withCompatTemplate(baseWith(noGateway), (t) => t.replace('level: DEBUG', 'level: WARN')));
  assert.is(parse(warnLevel.text).log.level, 'WARN', 'a quieter level is the template\'s choice');

  const mtls = await staticOf(withCompatTemplate(baseWith(({ hv }) => (hv.gateway.mode = 'mtls'))));
  assert.is(parse(mtls.text).certificatesResolvers, undefined);
  assert.ok(validator('traefik-v3.json')(parse(mtls.text)));
  assert.equal(parse(mtls.text).api, { dashboard: true, insecure: false });

  // A literal mesh port is kept, but one the gateway does not connect to is said.
  const otherPort = runScript(withCompatTemplate(baseWith(({ hv }) => (hv.gateway.mesh_port = 9443))));
  assert.is(otherPort.status, 0, otherPort.stderr);
  assert.match(otherPort.stderr, /\[WARN\] [^\n]*the mesh entrypoint listens on 8443, but the gateway connects to 9443 \(gateway\.mesh_port\)/);

  const notAcme = withCompatTemplate(baseWith(noGateway), (t) => `${t}\ncertificatesResolvers:\n  step-ca:\n    tailscale: {}\n`);
  try {
    await staticOf(notAcme);
    assert.unreachable('a step-ca resolver that is not ACME');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as Error).message, /\/certificatesResolvers\/step-ca: 'step-ca' is not an ACME resolver/);
  }
});

// ---------------------------------------------------------------- websecure routers

test('websecure routers: hybrid routes the passthrough SNIs with the ACME resolver; passthrough routes everything; mtls none', async () => {
  const validate = validator('traefik-v3-file-provider.json');
  const hybrid = await renderTraefikDynamic(configOf(baseWith(({ hv }) => (hv.gateway.passthrough_snis = ['ca.internal.example.org', 'whoami.internal.example.org', 'nothing.internal.example.org']))));
  let doc = parse(hybrid.text);
  assert.ok(validate(JSON.parse(JSON.stringify(doc))), JSON.stringify(validate.errors, null, 1));
  assert.equal(doc.http.routers['ca-websecure-router'], { rule: 'Host(`ca.internal.example.org`)', service: 'ca-service', entryPoints: ['websecure'], tls: { certResolver: 'step-ca' } });
  assert.equal(Object.keys(doc.http.routers).filter((name) => name.includes('websecure')), ['ca-websecure-router']);
  assert.ok(hybrid.model.notes.some((n) => /whoami\.internal\.example\.org: routed by the Swarm provider from the labels of stack whoami_service/.test(n)));
  assert.ok(hybrid.model.skipped.some((n) => /nothing\.internal\.example\.org: no guest or stack/.test(n)));

  const wildcard = parse((await renderTraefikDynamic(configOf(baseWith(({ hv }) => (hv.gateway.passthrough_snis = ['*.internal.example.org']))))).text);
  assert.equal(Object.keys(wildcard.http.routers).filter((name) => name.includes('websecure')).sort(), ['ca-websecure-router', 'traefik-dashboard-websecure-router', 'worker-1-websecure-router']);

  const passthrough = await renderTraefikDynamic(configOf(baseWith(({ hv }) => (hv.gateway.mode = 'passthrough'))));
  doc = parse(passthrough.text);
  assert.ok(validate(JSON.parse(JSON.stringify(doc))), JSON.stringify(validate.errors, null, 1));
  for (const route of passthrough.model.routes) {
    const router = doc.http.routers[`${route.name}-websecure-router`];
    assert.ok(router, route.name);
    assert.equal(router.entryPoints, ['websecure']);
    assert.equal(router.tls, { certResolver: 'step-ca' });
  }
  const noAcme = parse((await renderTraefikDynamic(configOf(baseWith(({ hv }) => Object.assign(hv.gateway, { mode: 'passthrough', acme_tls_alpn: false }))))).text);
  assert.equal(noAcme.http.routers['ca-websecure-router'].tls, {}, 'without ACME the default certificate answers');
  const mtls = parse((await renderTraefikDynamic(configOf(baseWith(({ hv }) => (hv.gateway.mode = 'mtls'))))).text);
  assert.equal(Object.keys(mtls.http.routers).filter((name) => name.includes('websecure')), []);
  // Swarm stacks name the transport in their labels, so it exists even without an https backend in the file.
  const plain = parse((await renderTraefikDynamic(configOf(baseWith(({ lxc, vm }) => {
    delete lxc.lxc_configs['103'].traefik_service.scheme;
    vm.vms.forEach((v: Json) => delete v.portainer_agent_hostname);
  })))).text);
  assert.equal(plain.http.serversTransports['internal-ca'], { insecureSkipVerify: false, rootCAs: ['/etc/traefik/certs/ca.pem'] });
});

test.run();
