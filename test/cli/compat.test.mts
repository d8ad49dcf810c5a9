// The bash toolkit's users keep their manifests. test/fixtures/compat holds
// manifests in the shapes they have (written for these tests): a singular
// health_check naming a toolkit check by its host path, a partial id map,
// certificate owners as names for unprivileged containers with the bash
// toolkit's post-renewal commands, no gateway section, the bash template
// layout for Traefik, mount points with owner_uid/owner_gid under /mnt/pve,
// lxc_options as `key: value` and `key=value`, step_ca with names only and
// core_paths pointing at the bash install. Each guest is created on the
// simulated host as an operator would, then checked from inside.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { problemsInside } from '../helpers/inside.mts';
import { CLI, cliEnv, compatBase } from '../helpers/run-phoenix.mts';

const host = createSimHost();
const work = tmpDir('phoenix-compat-');
const base = path.join(work, 'base');
const hostfs = path.join(host.stateDir, 'hostfs');
const domain = 'internal.corp.test';
const env = cliEnv(host, work, base, compatBase(base));

function phoenix(args: string[]): { code: number; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status ?? -1, stderr: r.stderr };
}

const errors = (stderr: string) => stderr.split('\n').filter((l) => /\[(ERROR|WARN)\]/.test(l)).join('\n');

test('create 103, 101 and 102 from the bash-shaped manifests: each exits 0', () => {
  for (const id of ['103', '101', '102']) {
    const r = phoenix(['create', id]);
    assert.is(r.code, 0, `create ${id}:\n${errors(r.stderr) || r.stderr.slice(-3000)}`);
    if (id === '103') assert.match(r.stderr, /health check '\/usr\/local\/phoenix_hypervisor\/bin\/health_checks\/check_step_ca\.sh' passed for CT 103 \(Phoenix's check_step_ca\.sh\)/);
  }
});

test('the partial id map of CT 101 is written complete, and root is granted the passed-through gid', () => {
  const conf = host.readConfigText('lxc', '101') ?? '';
  const maps = [...conf.split('\n[')[0]!.matchAll(/^lxc\.idmap: (.*)$/gm)].map((m) => m[1]);
  assert.equal(maps, ['u 0 100000 65536', 'g 0 100000 33', 'g 33 33 1', 'g 34 100034 65502']);
  assert.match(fs.readFileSync(path.join(hostfs, 'etc', 'subgid'), 'utf8'), /^root:33:1$/m);
  assert.not.match(fs.readFileSync(path.join(hostfs, 'etc', 'subuid'), 'utf8'), /# BEGIN phoenix/, 'no uid needs a grant');
});

test('from inside: every container runs and restarts, keys are readable by the users that need them, nginx -t passes', () => {
  const problems = problemsInside(host, ['103', '101', '102'], [
    { ctid: '101', file: `/etc/nginx/ssl/nginx.${domain}.key`, user: 'root' },
    { ctid: '101', file: `/etc/nginx/ssl/nginx.${domain}.key`, user: 'www-data' },
    { ctid: '101', file: '/etc/nginx/ssl/nginx-client.key', user: 'root' },
    { ctid: '102', file: `/etc/traefik/certs/traefik.${domain}.key`, user: 'root' },
  ]);
  assert.equal(problems, []);
  const nginx = host.run('pct', ['exec', '101', '--', 'nginx', '-t']);
  assert.is(nginx.code, 0, nginx.stderr);
  // The host files carry the container's ids: root and www-data of CT 101.
  const key = fs.statSync(path.join(hostfs, 'mnt/pve/quickOS/lxc-persistent-data/101/ssl', `nginx.${domain}.key`));
  assert.equal([key.uid, key.gid], [100000, 33]);
});

test('a second create delivers the certificates that waited for their containers: the bash post-renewal commands (chown root:www-data inside CT 101) succeed', () => {
  for (const id of ['103', '101', '102']) {
    const r = phoenix(['create', id]);
    assert.is(r.code, 0, `create ${id} again:\n${errors(r.stderr)}`);
  }
  const log = fs.readFileSync(path.join(work, 'phoenix.log'), 'utf8');
  assert.match(log, new RegExp(`nginx\\.${domain.replace(/\./g, '\\.')}\\s+.*copied into CT 101, post-renewal command run, key readable by root in CT 101`));
  const chowned = host.calls('pct').filter((c) => c.argv[0] === 'exec' && c.argv[1] === '101' && c.argv.join(' ').includes('chown root:www-data'));
  assert.ok(chowned.length > 0 && chowned.every((c) => c.exit === 0), 'the post-renewal command ran and its chown was allowed');
  assert.equal(problemsInside(host, ['101'], [{ ctid: '101', file: `/etc/nginx/ssl/nginx.${domain}.key`, user: 'www-data' }]), []);
});

test('a third create of each changes nothing', () => {
  host.clearCalls();
  for (const id of ['103', '101', '102']) {
    const r = phoenix(['create', id]);
    assert.is(r.code, 0, `create ${id} again:\n${errors(r.stderr)}`);
  }
  const mutating = host.calls('pct').filter((c) => ['set', 'start', 'stop', 'clone', 'create', 'push'].includes(c.argv[0] ?? ''));
  assert.equal(mutating.map((c) => c.argv.join(' ')), []);
});

test.after(() => host.dispose());
test.run();
