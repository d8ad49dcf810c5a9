// tls-alpn-01 through the generated gateway, with real validation: pebble
// (the ACME CA, standing in for Step-CA) dials the gateway's :443 stand-in,
// the generated nginx configuration routes the ClientHello, and lego's
// tls-alpn-01 solver (standing in for Traefik's websecure entrypoint) answers.
//
//   pebble --tls-alpn-01--> nginx <gateway>:<https>  --> lego <traefik>:<websecure>
//     -dnsserver --> pebble-challtestsrv (each test name -> its gateway's address, no AAAA)
//
// hybrid and passthrough must get a certificate that chains to pebble's root;
// mtls must not (nginx terminates TLS, and ALPN acme-tls/1 cannot reach
// Traefik). pebble validates for real: PEBBLE_VA_ALWAYS_VALID is removed from
// its environment, its random sleeps and nonce rejections are off, and it
// never reuses an authorization. The three cases run at the same time, each
// with its own gateway address, Traefik address, domain and lego account,
// so the file takes one lego run (about 6 s, most of it lego's fixed 5 s
// poll) rather than three.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { tmpDir } from '../helpers/tmp.mts';
import type { GatewayMode } from '../../lib/config/types.mts';
import { Scope, childEnv, runBounded, requireTools, startDaemon, waitForTcp, within, type CommandOutcome, type Tools } from './procs.mts';
import { freePort, freePorts } from './ports.mts';
import { gatewayPki, selfSigned } from './pki.mts';
import { DOMAIN, buildGateway, gatewayPlan, startNginx, traefikPorts } from './gateway.mts';
import { request, tlsPeer } from './standins.mts';

const TOOLS = ['nginx', 'openssl', 'timeout', 'pebble', 'pebble-challtestsrv', 'lego'];
const MODES: GatewayMode[] = ['hybrid', 'passthrough', 'mtls'];
const LEGO_TIMEOUT_MS = 45_000;
/** Nothing in this file may take longer than this, whatever hangs. */
const FILE_DEADLINE_MS = 150_000;

const scope = new Scope();
const watchdog = setTimeout(() => {
  console.error(`gateway-acme: not finished after ${FILE_DEADLINE_MS / 1000} s; stopping`);
  process.exit(1);
}, FILE_DEADLINE_MS);
watchdog.unref();

interface Case {
  mode: GatewayMode;
  domain: string;
  legoPath: string;
  /** Where pebble dials for this domain: the gateway's https listener. */
  gateway: string;
  result: Promise<{ outcome?: CommandOutcome; error?: Error }>;
}

let setupError: Error | undefined;
let pebbleRoot = '';
const cases = new Map<GatewayMode, Case>();

function post(port: number, route: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: route, method: 'POST', agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`challtestsrv ${route}: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`challtestsrv ${route}: no answer`)));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

async function start(tools: Tools): Promise<void> {
  const dir = tmpDir('phoenix-realtls-acme-');
  const sslDir = path.join(dir, 'ssl');
  const pki = gatewayPki(sslDir, DOMAIN, tools.openssl);
  const gatewayAddresses: Record<GatewayMode, string> = { hybrid: '127.0.0.71', passthrough: '127.0.0.72', mtls: '127.0.0.73' };
  const traefikAddresses: Record<GatewayMode, string> = { hybrid: '127.0.0.81', passthrough: '127.0.0.82', mtls: '127.0.0.83' };

  // pebble's tlsPort is the one port it dials for tls-alpn-01 (production: 443); every gateway listens on it.
  const httpsPort = await freePort({ addresses: Object.values(gatewayAddresses) });
  const [acmePort, managementPort, unusedHttpPort, challtestPort] = (await freePorts(4)) as [number, number, number, number];
  const dnsPort = await freePort({ udp: true });

  const pebbleDir = path.join(dir, 'pebble');
  const pebbleTls = selfSigned(pebbleDir, 'pebble', ['localhost', '127.0.0.1'], tools.openssl);
  const pebbleConfig = path.join(pebbleDir, 'config.json');
  fs.writeFileSync(
    pebbleConfig,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: pebbleTls.cert,
        privateKey: pebbleTls.key,
        httpPort: unusedHttpPort,
        tlsPort: httpsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );

  // Mock DNS on loopback only: names the test does not register resolve to an address nothing listens on,
  // and AAAA is off (pebble asks for AAAA first and would dial [::1]).
  const dns = startDaemon(scope, {
    name: 'pebble-challtestsrv',
    cmd: tools['pebble-challtestsrv'] as string,
    args: ['-defaultIPv4', '127.0.0.70', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challtestPort}`],
    logFile: path.join(dir, 'challtestsrv.log'),
  });
  await waitForTcp('127.0.0.1', challtestPort, 10_000, dns);
  await waitForTcp('127.0.0.1', dnsPort, 10_000, dns);

  // Without -dnsserver pebble would ask the system resolver, off this machine.
  const pebble = startDaemon(scope, {
    name: 'pebble',
    cmd: tools.pebble as string,
    args: ['-config', pebbleConfig, '-dnsserver', `127.0.0.1:${dnsPort}`],
    logFile: path.join(dir, 'pebble.log'),
    env: childEnv({ PEBBLE_VA_ALWAYS_VALID: undefined, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' }),
  });
  await waitForTcp('127.0.0.1', acmePort, 15_000, pebble);
  await waitForTcp('127.0.0.1', managementPort, 5_000, pebble);
  if (/Disabling VA challenge requests/i.test(pebble.log())) throw new Error('pebble runs with PEBBLE_VA_ALWAYS_VALID: it would validate nothing');

  const root = await request({ address: '127.0.0.1', port: managementPort, path: '/roots/0', host: 'localhost', ca: pebbleTls.cert });
  assert.is(root.status, 200, `pebble's root: ${root.body}`);
  pebbleRoot = root.body;

  for (const mode of MODES) {
    const traefikAddress = traefikAddresses[mode];
    const plan = await gatewayPlan({
      mode,
      gatewayAddress: gatewayAddresses[mode],
      traefikAddress,
      traefik: await traefikPorts(traefikAddress),
      pki,
      sslDir,
      httpsPort,
    });
    const gateway = buildGateway(path.join(dir, mode), plan);
    await startNginx(scope, tools.nginx as string, gateway);
    const domain = `acme-${mode}.${DOMAIN}`;
    await post(challtestPort, '/add-a', { host: domain, addresses: [plan.gatewayAddress] });
    const legoPath = path.join(dir, mode, 'lego');
    const result = runBounded(
      tools.lego as string,
      [
        '--server', `https://127.0.0.1:${acmePort}/dir`, '--accept-tos', '--email', `ci-${mode}@example.org`,
        '--domains', domain, '--tls', '--tls.port', `${traefikAddress}:${plan.ports.traefikWebsecure}`, '--path', legoPath, 'run',
      ],
      { timeoutMs: LEGO_TIMEOUT_MS, env: childEnv({ LEGO_CA_CERTIFICATES: pebbleTls.cert }) },
    ).then(
      (outcome) => ({ outcome }),
      (error: Error) => ({ error }),
    );
    cases.set(mode, { mode, domain, legoPath, gateway: `${plan.gatewayAddress}:${httpsPort}`, result });
  }
}

async function outcomeOf(mode: GatewayMode): Promise<{ run: CommandOutcome; domain: string; certificates: string; gateway: string }> {
  if (setupError) throw new Error(`setup failed: ${setupError.message}`);
  const entry = cases.get(mode);
  if (!entry) throw new Error(`no lego run for ${mode}: setup did not complete`);
  const { outcome, error } = await entry.result;
  if (error || !outcome) throw error ?? new Error('lego did not run');
  assert.not.ok(outcome.timedOut, `lego (${mode}) timed out after ${outcome.ms} ms:\n${outcome.stderr}`);
  return { run: outcome, domain: entry.domain, certificates: path.join(entry.legoPath, 'certificates'), gateway: entry.gateway };
}

test('nginx, pebble, lego and openssl are installed (Debian packages nginx libnginx-mod-stream pebble lego openssl)', () => {
  requireTools(TOOLS);
});

test('pebble (real validation), its mock DNS and the three generated gateways start; lego runs against each', async () => {
  try {
    const done = await within(start(requireTools(TOOLS)).then(() => true), 40_000);
    if (!done) throw new Error('setup took longer than 40 s');
  } catch (error) {
    setupError = error as Error;
    throw error;
  }
  assert.is(cases.size, MODES.length);
});

for (const mode of ['hybrid', 'passthrough'] as const) {
  test(`${mode}: pebble validates tls-alpn-01 through the gateway and issues a certificate chaining to its root`, async () => {
    const { run, domain, certificates } = await outcomeOf(mode);
    assert.is(run.code, 0, `lego (${mode}) failed in ${run.ms} ms:\n${run.stderr}`);
    const bundle = pemBlocks(fs.readFileSync(path.join(certificates, `${domain}.crt`), 'utf8'));
    const leaf = new X509Certificate(bundle[0] ?? '');
    const issuer = new X509Certificate(fs.readFileSync(path.join(certificates, `${domain}.issuer.crt`)));
    const root = new X509Certificate(pemBlocks(pebbleRoot)[0] ?? '');
    assert.is(leaf.checkHost(domain), domain);
    assert.ok(leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey), 'the leaf is signed by the issuer lego saved');
    assert.ok(issuer.verify(root.publicKey), 'the issuer chains to the root of this pebble run');
  });
}

test('mtls: the tls-alpn-01 challenge fails (nginx terminates TLS; acme-tls/1 never reaches Traefik), no certificate', async () => {
  const { run, domain, certificates, gateway } = await outcomeOf('mtls');
  assert.is.not(run.code, 0, 'lego got a certificate through a TLS-terminating gateway');
  assert.not.ok(fs.existsSync(path.join(certificates, `${domain}.crt`)));
  // pebble reached the gateway (it resolved the name and dialled it) but nginx refused ALPN acme-tls/1.
  assert.ok(
    run.stderr.includes(`urn:ietf:params:acme:error:unauthorized :: Failed to connect to ${gateway} for the tls-alpn-01 challenge`),
    `unexpected lego failure:\n${run.stderr}`,
  );
  const [address, port] = gateway.split(':') as [string, string];
  const probe = await tlsPeer({ address, port: Number(port), servername: domain, alpn: ['acme-tls/1'] }).then(
    (peer) => `handshake completed with ${peer.subject} (ALPN ${peer.alpn})`,
    (error: Error) => error.message,
  );
  assert.match(probe, /no application protocol/, 'nginx must refuse ALPN acme-tls/1 in mtls mode');
});

test.after(async () => {
  try {
    await scope.close();
  } finally {
    clearTimeout(watchdog);
  }
});

test.run();
