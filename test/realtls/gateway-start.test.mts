// Every gateway configuration Phoenix generates (hybrid, passthrough, mtls)
// is accepted by the real `nginx -t` in a temporary prefix and starts for
// real, on loopback addresses and high ports only; port 80 sends ACME
// http-01 to Traefik's web entrypoint and redirects the rest. A real start
// matters: `nginx -t` does not notice a listener that is already taken.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.mts';
import { configureLog } from '../../lib/core/log.mts';
import { setProcessContext } from '../../lib/core/context.mts';
import { PhoenixError } from '../../lib/core/errors.mts';
import { SITE_RELATIVE, gatewayModel, renderGatewayFiles, validateWithNginx } from '../../lib/gateway/nginx.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import type { GatewayMode } from '../../lib/config/types.mts';
import { bounded, childEnv, connects, requireTools, runBounded, startDaemon, type Tools } from './procs.mts';
import { gatewayPki, type GatewayPki } from './pki.mts';
import { DOMAIN, buildGateway, gatewayPlan, listeners, loopbackManifests, nginxTest, startNginx, traefikPorts, type GatewayPlan } from './gateway.mts';
import { request, seen, startWeb } from './standins.mts';

configureLog({ file: undefined, write: () => {} });
setProcessContext({ dryRun: false });

const TOOLS = ['nginx', 'openssl', 'timeout', 'unshare'];
const MODES: GatewayMode[] = ['hybrid', 'passthrough', 'mtls'];
let shared: { tools: Tools; dir: string; pki: GatewayPki } | undefined;

/** The tools (or a failure naming the Debian packages) and one PKI for the whole file. */
function setup() {
  if (!shared) {
    const tools = requireTools(TOOLS);
    const dir = tmpDir('phoenix-realtls-start-');
    shared = { tools, dir, pki: gatewayPki(path.join(dir, 'ssl'), DOMAIN, tools.openssl) };
  }
  return shared;
}

function planFor(mode: GatewayMode, index: number): Promise<GatewayPlan> {
  const { dir, pki } = setup();
  const gatewayAddress = `127.0.0.${31 + index}`;
  const traefikAddress = `127.0.0.${41 + index}`;
  return traefikPorts(traefikAddress).then((traefik) =>
    gatewayPlan({ mode, gatewayAddress, traefikAddress, traefik, pki, sslDir: path.join(dir, 'ssl') }),
  );
}

test('nginx, its stream module, openssl and unshare are installed (Debian packages nginx libnginx-mod-stream openssl util-linux)', () => {
  requireTools(TOOLS);
});

test('a missing tool is a failure naming its Debian package, never a skip', () => {
  try {
    requireTools(['lego', 'pebble-challtestsrv', 'nginx'], ['/nonexistent']);
    assert.unreachable('requireTools found tools in /nonexistent');
  } catch (error) {
    const message = (error as Error).message;
    assert.match(message, /lego \(Debian package lego\), pebble-challtestsrv \(Debian package pebble\), nginx \(Debian package nginx\)/);
    assert.match(message, /apt-get install -y --no-install-recommends lego pebble nginx/);
  }
});

for (const [index, mode] of MODES.entries()) {
  test(`${mode}: the generated configuration passes nginx -t, starts for real on loopback, and stops`, () =>
    bounded(`${mode} start`, 30_000, async (scope) => {
      const { tools } = setup();
      const plan = await planFor(mode, index);
      const gateway = buildGateway(tmpDir(`phoenix-realtls-${mode}-`), plan);

      const checked = await nginxTest(tools.nginx as string, gateway);
      assert.is(checked.code, 0, `nginx -t failed: ${checked.stderr}`);
      // The generator's own check accepts the same files.
      await validateWithNginx(gateway.model, gateway.files, tools.nginx as string);

      const web = await startWeb(scope, plan.traefikAddress, plan.ports.traefikWeb);
      const nginx = await startNginx(scope, tools.nginx as string, gateway);

      const challenge = await request({ address: plan.gatewayAddress, port: plan.ports.http, path: '/.well-known/acme-challenge/token-1', host: `app.${DOMAIN}` });
      assert.is(challenge.status, 200, challenge.body);
      const atWeb = seen(challenge);
      assert.is(atWeb.who, 'web');
      assert.is(atWeb.url, '/.well-known/acme-challenge/token-1');
      assert.is(atWeb.host, `app.${DOMAIN}`);
      assert.is(web.requests, 1);

      const page = await request({ address: plan.gatewayAddress, port: plan.ports.http, path: '/some/page?x=1', host: `app.${DOMAIN}` });
      assert.is(page.status, 301);
      assert.is(page.headers.location, `https://app.${DOMAIN}/some/page?x=1`);
      assert.is(web.requests, 1, 'the redirect must not reach Traefik');

      await nginx.stop();
      assert.not.ok(nginx.running());
      for (const { host, port } of listeners(gateway)) assert.not.ok(await connects(host, port), `${host}:${port} still accepts after stop`);
    }),
  );
}

test('nginx -t ignores a taken listener; the real start refuses it', () =>
  bounded('port clash', 30_000, async (scope) => {
    const { tools } = setup();
    const plan = await planFor('passthrough', 3);
    const gateway = buildGateway(tmpDir('phoenix-realtls-clash-'), plan);
    const squatter = net.createServer();
    await new Promise<void>((resolve, reject) => {
      squatter.once('error', reject);
      squatter.listen({ host: plan.gatewayAddress, port: plan.ports.https, exclusive: true }, () => resolve());
    });
    scope.defer(() => new Promise<void>((resolve) => squatter.close(() => resolve())));

    const checked = await nginxTest(tools.nginx as string, gateway);
    assert.is(checked.code, 0, checked.stderr);
    const nginx = startDaemon(scope, {
      name: 'nginx (clash)',
      cmd: tools.nginx as string,
      args: ['-p', `${gateway.prefix}/`, '-c', gateway.conf, '-e', gateway.errorLog, '-g', 'daemon off;'],
      logFile: path.join(gateway.prefix, 'stdout.log'),
    });
    const code = await nginx.exited(10_000);
    assert.ok(code !== undefined && code !== 0, `nginx kept running (exit ${code}) although ${plan.gatewayAddress}:${plan.ports.https} was taken`);
    assert.match(fs.readFileSync(gateway.errorLog, 'utf8'), /Address already in use/);
  }),
);

test('validateWithNginx rejects a configuration nginx refuses, naming the reason', () =>
  bounded('rejected', 30_000, async () => {
    const { tools } = setup();
    const plan = await planFor('hybrid', 4);
    const gateway = buildGateway(tmpDir('phoenix-realtls-broken-'), plan);
    const broken = gateway.files.map((file) =>
      file.relative === SITE_RELATIVE ? { ...file, text: file.text.replace('proxy_ssl_verify on;', 'proxy_ssl_verify maybe;') } : file,
    );
    assert.ok(broken.some((file, i) => file.text !== gateway.files[i]?.text), 'the site file has proxy_ssl_verify on');
    try {
      await validateWithNginx(gateway.model, broken, tools.nginx as string);
      assert.unreachable('nginx -t accepted an invalid proxy_ssl_verify value');
    } catch (error) {
      assert.instance(error, PhoenixError);
      assert.match((error as Error).message, /nginx rejected the generated gateway configuration: .*proxy_ssl_verify/);
    }
  }),
);

// The script's own `nginx -t` checks the files as they will be installed: listeners on :80 and :443 of
// every address. That runs in a private network namespace (unshare -n, root only), so nothing here
// ever listens outside this test; the script then writes exactly what the library renders.
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'generate_nginx_gateway_config.mjs');

async function runScript(base: string) {
  if (process.getuid?.() !== 0) {
    assert.unreachable('this test needs root (CI runs as root): the script checks the production listeners :80/:443 with nginx -t, isolated here by unshare -n');
  }
  const env = childEnv({
    PATH: `${process.env.PATH ?? ''}${path.delimiter}/usr/sbin${path.delimiter}/sbin`,
    PHOENIX_BASE_DIR: base,
    MAIN_LOG_FILE: path.join(base, 'phoenix.log'),
    PHOENIX_LOCK_FILE: path.join(base, 'phoenix.lock'),
    PHOENIX_DRY_RUN: undefined,
    HYPERVISOR_CONFIG_FILE: undefined,
    LXC_CONFIG_FILE: undefined,
    VM_CONFIG_FILE: undefined,
    STACKS_CONFIG_FILE: undefined,
    CERTIFICATE_MANIFEST_FILE: undefined,
  });
  return runBounded(setup().tools.unshare as string, ['-n', process.execPath, SCRIPT], { timeoutMs: 30_000, env });
}

test('generate_nginx_gateway_config: its nginx -t accepts every mode, and it writes what the library renders', () =>
  bounded('script', 60_000, async () => {
    setup();
    for (const [index, mode] of MODES.entries()) {
      const plan = await planFor(mode, 5 + index);
      const base = loopbackManifests(tmpDir(`phoenix-realtls-script-${mode}-`), plan);
      const result = await runScript(base);
      assert.is(result.code, 0, `${mode}: ${result.stdout}${result.stderr}`);
      assert.match(result.stdout + result.stderr, /nginx -t accepted the generated configuration/);
      const expected = renderGatewayFiles(gatewayModel(loadConfig(resolveConfigPaths({}, { PHOENIX_BASE_DIR: base }))));
      for (const file of expected) assert.fixture(fs.readFileSync(path.join(base, file.relative), 'utf8'), file.text, `${mode}: ${file.relative}`);
    }
  }),
);

test('generate_nginx_gateway_config: a configuration nginx rejects (a client certificate that is not one) is not written', () =>
  bounded('script rejected', 30_000, async () => {
    const { dir } = setup();
    const plan = await planFor('hybrid', 8);
    const notACertificate = path.join(dir, 'ssl', 'not-a-certificate.crt');
    fs.writeFileSync(notACertificate, 'this is not PEM\n');
    const base = loopbackManifests(tmpDir('phoenix-realtls-script-rejected-'), { ...plan, clientChain: notACertificate });
    const result = await runScript(base);
    assert.is.not(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout + result.stderr, /nginx rejected the generated gateway configuration: .*cannot load certificate/);
    assert.not.ok(fs.existsSync(path.join(base, 'etc', 'nginx')), 'nothing may be written after nginx -t refused');
  }),
);

test.run();
