// The mTLS chain through a real nginx running the generated gateway
// configuration: a client reaches Traefik's mesh entrypoint (a stand-in that
// requires and verifies client certificates against the root CA, with a
// certificate for the mesh name only) and gets 200, the mesh seeing the
// gateway's client certificate; the mesh refuses a client without a
// certificate, or with one from another CA with the same subject names; the
// gateway refuses a mesh whose certificate another CA issued. In hybrid mode
// the ClientHellos for passthrough SNIs and for ALPN acme-tls/1 reach
// Traefik's websecure entrypoint untouched.
//
// TLS session resumption would let a connection without a client certificate
// in on the strength of an earlier authenticated one. So every client request
// here uses a fresh connection without a session cache, and each negative
// gateway case runs its own nginx in front of its own mesh address.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.mts';
import type { GatewayMode } from '../../lib/config/types.mts';
import { bounded, requireTools, type Scope, type Tools } from './procs.mts';
import { gatewayPki, type GatewayPki, type Issued } from './pki.mts';
import { CLIENT_NAME, DOMAIN, MESH_NAME, SERVER_NAME, buildGateway, gatewayPlan, startNginx, traefikPorts, type LoopbackGateway } from './gateway.mts';
import { refusal, request, seen, startMesh, startWeb, startWebsecure, tlsPeer, type StandIn } from './standins.mts';

const TOOLS = ['nginx', 'openssl', 'timeout'];
const APP = `app.${DOMAIN}`;
/** In the example manifests' gateway.passthrough_snis. */
const PASSTHROUGH = `whoami.${DOMAIN}`;
let shared: { tools: Tools; dir: string; pki: GatewayPki } | undefined;

function setup() {
  if (!shared) {
    const tools = requireTools(TOOLS);
    const dir = tmpDir('phoenix-realtls-mtls-');
    shared = { tools, dir, pki: gatewayPki(path.join(dir, 'ssl'), DOMAIN, tools.openssl) };
  }
  return shared;
}

interface Traefik {
  address: string;
  mesh: StandIn;
  websecure: StandIn;
  web: StandIn;
  ports: Awaited<ReturnType<typeof traefikPorts>>;
}

/** Traefik's three entrypoints on `address`; the mesh presents `meshCert`. */
async function traefik(scope: Scope, address: string, meshCert: Issued): Promise<Traefik> {
  const { pki } = setup();
  const ports = await traefikPorts(address);
  return {
    address,
    ports,
    mesh: await startMesh(scope, address, ports.mesh, { cert: meshCert.chain, key: meshCert.key }, pki.ca.root.cert),
    websecure: await startWebsecure(scope, address, ports.traefikWebsecure, { cert: pki.websecure.chain, key: pki.websecure.key }),
    web: await startWeb(scope, address, ports.traefikWeb),
  };
}

/** The generated gateway in `mode` on `gatewayAddress`, in front of `upstream`, started. */
async function gateway(scope: Scope, mode: GatewayMode, gatewayAddress: string, upstream: Traefik, client?: Issued): Promise<LoopbackGateway> {
  const { tools, dir, pki } = setup();
  const plan = await gatewayPlan({
    mode,
    gatewayAddress,
    traefikAddress: upstream.address,
    traefik: upstream.ports,
    pki,
    sslDir: path.join(dir, 'ssl'),
    ...(client ? { client } : {}),
  });
  const built = buildGateway(tmpDir(`phoenix-realtls-${mode}-`), plan);
  await startNginx(scope, tools.nginx as string, built);
  return built;
}

const via = (gw: LoopbackGateway, host: string) => ({ address: gw.plan.gatewayAddress, port: gw.plan.ports.https, host, ca: setup().pki.ca.root.cert });

test('nginx, its stream module and openssl are installed (Debian packages nginx libnginx-mod-stream openssl)', () => {
  requireTools(TOOLS);
});

test('the test PKI: the client certificate chains to the root, the other CA shares its subject names', () => {
  const { pki } = setup();
  assert.ok(pki.ca.verifies(pki.client));
  assert.ok(pki.ca.verifies(pki.mesh));
  assert.not.ok(pki.ca.verifies(pki.rogueClient));
  const subject = (file: string) => new X509Certificate(fs.readFileSync(file)).subject;
  assert.is(subject(pki.rogueCa.root.cert), subject(pki.ca.root.cert));
  assert.is(subject(pki.rogueClient.cert), subject(pki.client.cert));
  assert.is(subject(pki.rogueMesh.cert), subject(pki.mesh.cert));
});

test('the mesh: 200 with the gateway client certificate; refused without one, with another CA\'s, or without the intermediate', () =>
  bounded('mesh direct', 20_000, async (scope) => {
    const { pki } = setup();
    const upstream = await traefik(scope, '127.0.0.61', pki.mesh);
    const direct = { address: upstream.address, port: upstream.ports.mesh, host: MESH_NAME, ca: pki.ca.root.cert };

    const none = await refusal(direct);
    assert.ok(none.error, `the mesh answered HTTP ${none.reply?.status} to a client without a certificate`);
    const rogue = await refusal({ ...direct, clientCert: { cert: pki.rogueClient.chain, key: pki.rogueClient.key } });
    assert.ok(rogue.error, `the mesh answered HTTP ${rogue.reply?.status} to a certificate from another CA`);
    const bare = await refusal({ ...direct, clientCert: { cert: pki.client.cert, key: pki.client.key } });
    assert.ok(bare.error, `the mesh answered HTTP ${bare.reply?.status} to a client certificate without its intermediate`);
    assert.is(upstream.mesh.requests, 0);
    assert.is(upstream.mesh.refusals.length, 3, `mesh refusals: ${upstream.mesh.refusals.join('; ')}`);

    const ok = await request({ ...direct, clientCert: { cert: pki.client.chain, key: pki.client.key } });
    assert.is(ok.status, 200);
    assert.is(seen(ok).clientSubject, CLIENT_NAME);
    assert.ok(seen(ok).authorized);
  }),
);

test('hybrid: client -> gateway (TLS) -> mesh (mTLS with the client certificate) = 200; passthrough SNI and ALPN acme-tls/1 reach websecure', () =>
  bounded('hybrid chain', 20_000, async (scope) => {
    const upstream = await traefik(scope, '127.0.0.62', setup().pki.mesh);
    const gw = await gateway(scope, 'hybrid', '127.0.0.52', upstream);

    const reply = await request({ ...via(gw, APP), path: '/dashboard?x=1' });
    assert.is(reply.status, 200, reply.body);
    assert.is(reply.peerSubject, SERVER_NAME, 'the gateway terminates with its own certificate');
    const atMesh = seen(reply);
    assert.equal(
      { who: atMesh.who, client: atMesh.clientSubject, authorized: atMesh.authorized, sni: atMesh.servername, host: atMesh.host, proto: atMesh.forwardedProto, url: atMesh.url },
      { who: 'mesh', client: CLIENT_NAME, authorized: true, sni: MESH_NAME, host: APP, proto: 'https', url: '/dashboard?x=1' },
    );
    const browser = await tlsPeer({ address: gw.plan.gatewayAddress, port: gw.plan.ports.https, servername: APP, alpn: ['h2', 'http/1.1'] });
    assert.equal(browser, { subject: SERVER_NAME, alpn: 'h2' }, 'a browser\'s ClientHello (ALPN h2) is terminated by nginx');

    const passthrough = await request(via(gw, PASSTHROUGH));
    assert.is(passthrough.peerSubject, PASSTHROUGH, 'a passthrough SNI sees Traefik\'s certificate, not the gateway\'s');
    assert.is(seen(passthrough).who, 'websecure');

    const acme = await tlsPeer({ address: gw.plan.gatewayAddress, port: gw.plan.ports.https, servername: APP, alpn: ['acme-tls/1'] });
    assert.equal(acme, { subject: PASSTHROUGH, alpn: 'acme-tls/1' }, 'ALPN acme-tls/1 must reach websecure untouched');
    assert.is(upstream.mesh.refusals.length, 0, upstream.mesh.refusals.join('; '));
  }),
);

test('mtls: client -> gateway terminating :443 -> mesh = 200 with the client certificate; nothing passed through', () =>
  bounded('mtls chain', 20_000, async (scope) => {
    const upstream = await traefik(scope, '127.0.0.63', setup().pki.mesh);
    const gw = await gateway(scope, 'mtls', '127.0.0.53', upstream);

    const reply = await request(via(gw, APP));
    assert.is(reply.status, 200, reply.body);
    assert.is(reply.peerSubject, SERVER_NAME);
    assert.is(seen(reply).clientSubject, CLIENT_NAME);
    const named = await request(via(gw, PASSTHROUGH));
    assert.is(named.peerSubject, SERVER_NAME, 'mtls mode terminates every SNI');
    assert.is(seen(named).who, 'mesh');
    assert.is(upstream.websecure.requests, 0);
  }),
);

test('hybrid with a client certificate from another CA (same subject): the mesh refuses, the gateway answers 502', () =>
  bounded('rogue client', 20_000, async (scope) => {
    const { pki } = setup();
    const upstream = await traefik(scope, '127.0.0.64', pki.mesh);
    const gw = await gateway(scope, 'hybrid', '127.0.0.54', upstream, pki.rogueClient);

    const reply = await request(via(gw, APP));
    assert.is(reply.status, 502, reply.body);
    assert.is(upstream.mesh.requests, 0);
    assert.ok(upstream.mesh.refusals.length > 0, 'the mesh saw no refused handshake');
  }),
);

test('hybrid in front of a mesh whose certificate another CA issued: nginx refuses it (502)', () =>
  bounded('impostor mesh', 20_000, async (scope) => {
    const { pki } = setup();
    const upstream = await traefik(scope, '127.0.0.65', pki.rogueMesh);
    const gw = await gateway(scope, 'hybrid', '127.0.0.55', upstream);

    const reply = await request(via(gw, APP));
    assert.is(reply.status, 502, reply.body);
    assert.is(upstream.mesh.requests, 0, 'the request reached an unverified mesh');
    assert.match(fs.readFileSync(gw.errorLog, 'utf8'), /upstream SSL certificate verify error/);
  }),
);

test.run();
