// The Portainer API client and the idempotent operations sync builds on,
// against the stand-in of test/portainer-standin (in this process, on
// 127.0.0.1, closed after each test): admin set-up once, login, environments
// and stacks created, updated only when they differ, retries with back-off on
// 5xx and refused connections, and errors that name method, endpoint and status.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startStandin, type Standin } from '../portainer-standin/server.mts';
import { PortainerClient, PortainerApiError } from '../../lib/portainer/client.mts';
import { ensureAdmin, ensureEndpoint, ensureStack, login, systemStatus, ENDPOINT_AGENT, ENDPOINT_LOCAL_DOCKER } from '../../lib/portainer/api.mts';
import { configureLog } from '../../lib/core/log.mts';
import { setProcessContext, withRunContext } from '../../lib/core/context.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

const PASSWORD = 'correct-horse-battery-staple';
const logged: string[] = [];
configureLog({ write: (line) => void logged.push(line), file: undefined, color: false });

let standin: Standin | undefined;
const fast = { attempts: 4, backoffMs: 10 };

async function fresh(options: Parameters<typeof startStandin>[0] = {}): Promise<{ s: Standin; client: PortainerClient }> {
  standin = await startStandin({ maxLifetimeSeconds: 30, ...options });
  return { s: standin, client: new PortainerClient({ baseUrl: standin.url, ...fast }) };
}

test.after.each(async () => {
  await standin?.close();
  standin = undefined;
  setProcessContext({ dryRun: false });
});

test('the admin is initialised once; a second call changes nothing', async () => {
  const { s, client } = await fresh();
  assert.ok((await systemStatus(client)).Version);
  assert.is(await ensureAdmin(client, 'admin', PASSWORD), 'created');
  assert.is(await ensureAdmin(client, 'admin', PASSWORD), 'unchanged');
  assert.is(s.requests.filter((r) => r.path === '/api/users/admin/init').length, 1);
  assert.ok(s.state.admin);
  assert.not.ok(JSON.stringify(s.state).includes(PASSWORD), 'the stand-in keeps a digest only');
});

test('login returns a JWT; a wrong password is refused with a hint naming the password file', async () => {
  const { client } = await fresh();
  await ensureAdmin(client, 'admin', PASSWORD);
  const jwt = await login(client, 'admin', PASSWORD, '/etc/phoenix/secrets/portainer_admin_password');
  assert.match(jwt, /^standin\./);
  try {
    await login(client, 'admin', 'wrong-password-123', '/etc/phoenix/secrets/portainer_admin_password');
    assert.unreachable('a wrong password must fail');
  } catch (err) {
    assert.instance(err, PortainerApiError);
    const e = err as PortainerApiError;
    assert.is(e.method, 'POST');
    assert.is(e.endpoint, '/api/auth');
    assert.is(e.status, 422);
    assert.match(e.message, /POST \/api\/auth answered 422/);
    assert.match(e.hint ?? '', /portainer_admin_password/);
  }
});

test('environments: created once, the URL corrected when it changed, otherwise left alone', async () => {
  const { s, client } = await fresh();
  await ensureAdmin(client, 'admin', PASSWORD);
  const token = await login(client, 'admin', PASSWORD, 'file');
  const local = await ensureEndpoint(client, token, { name: 'portainer', creationType: ENDPOINT_LOCAL_DOCKER, url: 'unix:///var/run/docker.sock' });
  assert.is(local.outcome, 'created');
  const agent = await ensureEndpoint(client, token, { name: 'worker-1', creationType: ENDPOINT_AGENT, url: 'tcp://worker-1-agent.internal.example.org:9001' });
  assert.is(agent.outcome, 'created');
  assert.is((await ensureEndpoint(client, token, { name: 'portainer', creationType: ENDPOINT_LOCAL_DOCKER, url: 'unix:///var/run/docker.sock' })).outcome, 'unchanged');
  const moved = await ensureEndpoint(client, token, { name: 'worker-1', creationType: ENDPOINT_AGENT, url: 'tcp://10.0.0.22:9001' });
  assert.equal(moved, { id: agent.id, outcome: 'changed' });
  assert.equal(s.state.endpoints.map((e) => [e.Name, e.Type, e.URL]), [
    ['portainer', 1, 'unix:///var/run/docker.sock'],
    ['worker-1', 2, 'tcp://10.0.0.22:9001'],
  ]);
});

test('stacks: created on the swarm, updated only when the compose text or variables differ', async () => {
  const { s, client } = await fresh();
  await ensureAdmin(client, 'admin', PASSWORD);
  const token = await login(client, 'admin', PASSWORD, 'file');
  const { id } = await ensureEndpoint(client, token, { name: 'portainer', creationType: ENDPOINT_LOCAL_DOCKER, url: 'unix:///var/run/docker.sock' });
  const spec = { name: 'production_whoami_service', compose: 'services:\n  whoami:\n    image: traefik/whoami\n', env: [{ name: 'WHOAMI_NAME', value: 'worker-1' }] };
  assert.is(await ensureStack(client, token, id, spec), 'created');
  assert.is(await ensureStack(client, token, id, spec), 'unchanged');
  assert.is(await ensureStack(client, token, id, { ...spec, env: [{ name: 'WHOAMI_NAME', value: 'worker-2' }] }), 'changed');
  assert.is(await ensureStack(client, token, id, { ...spec, env: [{ name: 'WHOAMI_NAME', value: 'worker-2' }], compose: `${spec.compose}# v2\n` }), 'changed');
  assert.is(s.state.stacks.length, 1);
  assert.is(s.state.stacks[0]?.StackFileContent.endsWith('# v2\n'), true);
  assert.is(s.requests.filter((r) => r.method === 'PUT').length, 2);
});

test('5xx answers are retried with back-off; the last one is reported with method, endpoint and status', async () => {
  const { s, client } = await fresh({ failFirst: 2 });
  assert.is(await ensureAdmin(client, 'admin', PASSWORD), 'created');
  assert.equal(s.requests.slice(0, 2).map((r) => r.status), [503, 503]);
  await standin?.close();
  const { client: always } = await fresh({ failFirst: 100 });
  try {
    await systemStatus(always);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PortainerApiError);
    assert.match((err as Error).message, /Portainer API GET \/api\/system\/status answered 503: Service unavailable/);
  }
  assert.ok(logged.some((l) => /answered 503; retrying in \d+ ms \(attempt 1\/4\)/.test(l)));
});

test('a refused connection is retried, then reported with the address and a hint', async () => {
  const port = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(p));
    });
  });
  const client = new PortainerClient({ baseUrl: `http://127.0.0.1:${port}`, attempts: 3, backoffMs: 5 });
  try {
    await systemStatus(client);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PortainerApiError);
    assert.match((err as Error).message, /GET \/api\/system\/status got no answer: ECONNREFUSED \(http:\/\/127\.0\.0\.1:\d+, 3 attempts\)/);
    assert.match((err as PortainerApiError).hint ?? '', /PHOENIX_PORTAINER_URL/);
  }
});

test('dry-run: no request that changes Portainer is sent', async () => {
  const { s, client } = await fresh();
  assert.is(await withRunContext({ dryRun: true }, () => ensureAdmin(client, 'admin', PASSWORD)), 'created');
  assert.equal(s.requests.map((r) => `${r.method} ${r.path}`), ['GET /api/users/admin/check']);
  assert.is(s.state.admin, null);
});

test('https: Portainer verified against the CA given (a real TLS handshake on 127.0.0.1)', async () => {
  if (spawnSync('openssl', ['version']).status !== 0) return;
  const dir = tmpDir();
  const ossl = (args: string[]) => assert.is(spawnSync('openssl', args, { cwd: dir }).status, 0, `openssl ${args.join(' ')}`);
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=Test Root', '-days', '1']);
  ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=portainer']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  ossl(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.crt', '-days', '1', '-extfile', 'ext.cnf']);
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  standin = await startStandin({ maxLifetimeSeconds: 30, tls: { cert: read('srv.crt'), key: read('srv.key') } });
  const trusted = new PortainerClient({ baseUrl: standin.url, ca: read('ca.crt'), ...fast });
  assert.ok((await systemStatus(trusted)).InstanceID);
  const untrusted = new PortainerClient({ baseUrl: standin.url, ...fast });
  try {
    await systemStatus(untrusted);
    assert.unreachable('a certificate from an unknown CA must be refused');
  } catch (err) {
    assert.instance(err, PortainerApiError);
  }
});

test('the stand-in as a process: prints its URL, ends by itself after --max-lifetime', async () => {
  const server = path.join(PROJECT_ROOT, 'test', 'portainer-standin', 'server.mjs');
  const child = spawn(process.execPath, [server, '--port', '0', '--max-lifetime', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = Date.now();
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.match(out, /^listening http:\/\/127\.0\.0\.1:\d+\n/);
  assert.is(code, 0);
  assert.ok(Date.now() - started < 5000, 'bounded lifetime');
});

test.run();
