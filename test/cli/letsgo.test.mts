// LetsGo end to end on the simulated host, as `make sync` runs it: every
// manager, feature and application script is the port, the base directory is
// a copy of etc/, Portainer's API is the stand-in on 127.0.0.1, and the VM
// features are not re-verified (PHOENIX_SKIP_GUEST_VERIFY: simulated guests
// run nothing). LetsGo ends with `sync all`; a second LetsGo changes nothing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { problemsInside } from '../helpers/inside.mts';
import { changesOf, cliEnv, letsGo } from '../helpers/run-phoenix.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { startStandin, type Standin } from '../portainer-standin/server.mts';

const host = createSimHost();
const work = tmpDir();
const base = path.join(work, 'base');
fs.cpSync(path.join(PROJECT_ROOT, 'etc'), path.join(base, 'etc'), { recursive: true });
let standin: Standin;
const env = () => cliEnv(host, work, base, { PHOENIX_PORTAINER_URL: standin.url });

test.before(async () => {
  standin = await startStandin({ port: 0, maxLifetimeSeconds: 600 });
});

test('LetsGo builds, starts and synchronises every guest from nothing; a second run changes nothing', async () => {
  const first = await letsGo(env(), path.join(work, 'first.jsonl'));
  assert.is(first.code, 0, first.stderr.split('\n').filter((l) => /ERROR/.test(l)).join('\n'));
  for (const id of ['103', '101', '102']) assert.is(host.run('pct', ['status', id]).stdout.trim(), 'status: running', `CT ${id}`);
  for (const id of ['1001', '1002']) assert.is(host.run('qm', ['status', id]).stdout.trim(), 'status: running', `VM ${id}`);
  assert.match(host.readConfigText('lxc', 900) ?? '', /^template: 1$/m);
  assert.match(host.readConfigText('qemu', 9000) ?? '', /^template: 1$/m);
  for (const id of ['101', '102', '103', '1001', '1002']) assert.ok(fs.existsSync(path.join(host.stateDir, 'pve', 'firewall', `${id}.fw`)), `${id}.fw written`);
  // Every command of every process of the run went through the runner and was recorded.
  assert.ok(first.commands.some((c) => c.cmd === 'pct' && c.args[0] === 'clone' && c.args[2] === '102'));
  // The closing sync all set Portainer up and deployed the application stack.
  assert.match(first.stderr, /sync complete/);
  assert.ok(standin.state.admin, 'Portainer admin initialised');
  assert.equal(standin.state.stacks.map((s) => s.Name), ['production_whoami_service']);
  // The CA, the certificates and the gateway files are in place with their modes.
  const hostfs = path.join(host.stateDir, 'hostfs');
  const mode = (file: string) => (fs.statSync(file).mode & 0o777).toString(8);
  assert.is(mode(path.join(hostfs, 'etc/phoenix/ca/root_ca.crt')), '644');
  assert.is(mode(path.join(hostfs, 'quickOS/lxc-persistent-data/101/ssl/nginx-gateway-client.key')), '600');
  assert.is(mode(path.join(hostfs, 'quickOS/lxc-persistent-data/102/certs/traefik.internal.example.org.key')), '600');
  assert.is(mode(path.join(hostfs, 'quickOS/lxc-persistent-data/103/step/ca_password.txt')), '600');
  assert.ok(fs.existsSync(host.guestPath('101', '/etc/nginx/stream.d/stream-gateway.conf')), 'gateway stream file in CT 101');
  assert.ok(fs.existsSync(host.guestPath('102', '/etc/traefik/dynamic/dynamic_conf.yml')), 'dynamic file in CT 102');
  // From inside: each container starts again with its id maps, its keys are readable where they are used.
  assert.equal(
    problemsInside(host, ['103', '101', '102'], [
      { ctid: '101', file: '/etc/nginx/ssl/nginx-gateway-client.key', user: 'root' },
      { ctid: '101', file: '/etc/nginx/ssl/nginx.internal.example.org.key', user: 'root' },
      { ctid: '102', file: '/etc/traefik/certs/traefik.internal.example.org.key', user: 'root' },
    ]),
    [],
  );
  const nginx = host.run('pct', ['exec', '101', '--', 'nginx', '-t']);
  assert.is(nginx.code, 0, nginx.stderr);

  const second = await letsGo(env(), path.join(work, 'second.jsonl'));
  assert.is(second.code, 0, second.stderr);
  assert.equal(changesOf(second.commands), [], 'the second LetsGo issues no mutating command');
  assert.match(second.stderr, /no change, everything already matched the manifests/);
});

test.after(async () => {
  await standin?.close();
  host.dispose();
});
test.run();
