// LetsGo from nothing on the bash-shaped manifests of test/fixtures/compat
// (see compat.test.mts), as `make sync` runs it on the simulated host: every
// guest created and started, `sync all` at the end, then checked from inside
// the containers. A second LetsGo changes nothing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { problemsInside } from '../helpers/inside.mts';
import { changesOf, cliEnv, compatBase, letsGo } from '../helpers/run-phoenix.mts';
import { startStandin, type Standin } from '../portainer-standin/server.mts';

const host = createSimHost();
const work = tmpDir('phoenix-compat-letsgo-');
const base = path.join(work, 'base');
const domain = 'internal.corp.test';
const paths = compatBase(base);
let standin: Standin;
const env = () => cliEnv(host, work, base, { ...paths, PHOENIX_PORTAINER_URL: standin.url });

test.before(async () => {
  standin = await startStandin({ port: 0, maxLifetimeSeconds: 600 });
});

test('LetsGo on the bash-shaped manifests builds and synchronises everything; inside, containers start and keys are readable; a second LetsGo changes nothing', async () => {
  const first = await letsGo(env(), path.join(work, 'first.jsonl'));
  assert.is(first.code, 0, first.stderr.split('\n').filter((l) => /ERROR/.test(l)).join('\n') || first.stderr.slice(-3000));
  assert.match(first.stderr, /sync complete/);
  for (const id of ['1001', '1002']) assert.is(host.run('qm', ['status', id]).stdout.trim(), 'status: running', `VM ${id}`);
  assert.equal(
    problemsInside(host, ['103', '101', '102'], [
      { ctid: '101', file: `/etc/nginx/ssl/nginx.${domain}.key`, user: 'root' },
      { ctid: '101', file: `/etc/nginx/ssl/nginx.${domain}.key`, user: 'www-data' },
      { ctid: '101', file: '/etc/nginx/ssl/nginx-client.key', user: 'root' },
      { ctid: '102', file: `/etc/traefik/certs/traefik.${domain}.key`, user: 'root' },
    ]),
    [],
  );
  const nginx = host.run('pct', ['exec', '101', '--', 'nginx', '-t']);
  assert.is(nginx.code, 0, nginx.stderr);

  const second = await letsGo(env(), path.join(work, 'second.jsonl'));
  assert.is(second.code, 0, second.stderr.split('\n').filter((l) => /ERROR/.test(l)).join('\n'));
  assert.equal(changesOf(second.commands), [], 'the second LetsGo issues no mutating command');
});

test.after(async () => {
  await standin?.close();
  host.dispose();
});
test.run();
