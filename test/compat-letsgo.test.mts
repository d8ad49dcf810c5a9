// LetsGo from nothing on the bash-shaped manifests of test/fixtures/compat
// (see compat.test.mts), as `make sync` runs it on the simulated host: every
// guest created and started, `sync all` at the end, then checked from inside
// the containers. A second LetsGo changes nothing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createSimHost } from './simhost/index.mts';
import { tmpDir } from './helpers/tmp.mts';
import { problemsInside } from './helpers/inside.mts';
import { PROJECT_ROOT } from '../lib/bridge.mts';
import { startStandin, type Standin } from './portainer-standin/server.mts';

const cli = path.join(PROJECT_ROOT, 'scripts', 'phoenix-cli.mjs');
const corpus = path.join(PROJECT_ROOT, 'test', 'fixtures', 'compat');
const host = createSimHost();
const work = tmpDir('phoenix-compat-letsgo-');
const base = path.join(work, 'base');
const domain = 'internal.corp.test';
fs.cpSync(path.join(corpus, 'etc'), path.join(base, 'etc'), { recursive: true });
fs.mkdirSync(path.join(base, 'etc', 'traefik'), { recursive: true });
fs.copyFileSync(path.join(corpus, 'traefik.yml.template'), path.join(base, 'etc', 'traefik', 'traefik.yml.template'));
for (const dir of ['stacks', 'cloud-init']) fs.cpSync(path.join(PROJECT_ROOT, 'etc', dir), path.join(base, 'etc', dir), { recursive: true });
let standin: Standin;

const env: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: base,
  LXC_CONFIG_FILE: path.join(base, 'etc', 'phoenix_lxc_configs.json'),
  VM_CONFIG_FILE: path.join(base, 'etc', 'phoenix_vm_configs.json'),
  MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
  PHOENIX_SKIP_GUEST_VERIFY: 'true',
  PHOENIX_START_RETRY_DELAY_MS: '100',
  PHOENIX_POLL_INTERVAL_MS: '100',
  NO_SPINNER: '1',
};
for (const key of ['HYPERVISOR_CONFIG_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_USE_LEGACY', 'PHOENIX_LEGACY_DIR', 'PHOENIX_RECORD', 'PHOENIX_HOST_ROOT']) delete env[key];

function letsGo(record: string): Promise<{ code: number; stderr: string; mutating: string[] }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'LetsGo'], { env: { ...env, PHOENIX_PORTAINER_URL: standin.url, PHOENIX_RECORD: record }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = fs.existsSync(record) ? fs.readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
      const mutating = lines.filter((c) => c.mutating && !c.skipped).map((c) => `${c.script}: ${c.cmd} ${c.args.join(' ')}`);
      resolve({ code: code ?? -1, stderr, mutating });
    });
  });
}

test.before(async () => {
  standin = await startStandin({ port: 0, maxLifetimeSeconds: 600 });
});

test('LetsGo on the bash-shaped manifests builds and synchronises everything; inside, containers start and keys are readable; a second LetsGo changes nothing', async () => {
  const first = await letsGo(path.join(work, 'first.jsonl'));
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

  const second = await letsGo(path.join(work, 'second.jsonl'));
  assert.is(second.code, 0, second.stderr.split('\n').filter((l) => /ERROR/.test(l)).join('\n'));
  assert.equal(second.mutating, [], 'the second LetsGo issues no mutating command');
});

test.after(async () => {
  await standin?.close();
  host.dispose();
});
test.run();
