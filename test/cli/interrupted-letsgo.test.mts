// Hard stops in the long runs: `phoenix LetsGo` killed with SIGKILL in its VM
// phase and in its closing `sync all`, and `phoenix sync all` killed in its
// Portainer stage, each followed by the run an operator makes next. That run
// must exit 0 and leave the simulated host, and Portainer's state, exactly as
// one uninterrupted LetsGo leaves them.
//
// Every case starts from the containers already built (`phoenix create` of
// 900, 103, 101 and 102), so the reference LetsGo and each killed one do the
// same work: the VMs, then sync all. Portainer is the stand-in on 127.0.0.1,
// one fresh instance per case (its state goes with the VMs it runs in).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { CLI, cliEnv } from '../helpers/run-phoenix.mts';
import { assertSameHost, errorsOf, holdGuest, holdTask, hostPrint, killAt, runAsync, stateShelf, type HostPrint } from '../helpers/hard-stop.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { startStandin, type Standin } from '../portainer-standin/server.mts';
import type { Injection } from '../simhost/inject.mts';

const host = createSimHost();
const work = tmpDir('phoenix-interrupted-letsgo-');
const base = path.join(work, 'base');
fs.cpSync(path.join(PROJECT_ROOT, 'etc'), path.join(base, 'etc'), { recursive: true });
const { save, restore } = stateShelf(host, path.join(work, 'saved'), work);

let standin: Standin | undefined;
async function freshPortainer(): Promise<Record<string, string>> {
  await standin?.close();
  standin = await startStandin({ port: 0, maxLifetimeSeconds: 900 });
  return cliEnv(host, work, base, { PHOENIX_PORTAINER_URL: standin.url });
}

/** Portainer as the tests compare it: the admin, the environments and each stack with its settings. */
function portainerPrint(): string[] {
  const state = standin!.state;
  return [
    `admin ${state.admin?.username ?? '-'}`,
    ...state.endpoints.map((e) => `endpoint ${e.Name} ${e.URL} type ${e.Type}`).sort(),
    ...state.stacks.map((s) => `stack ${s.Name} on ${state.endpoints.find((e) => e.Id === s.EndpointId)?.Name ?? '?'} env ${s.Env.map((v) => v.name).sort().join(',')} ${s.StackFileContent.length} bytes`).sort(),
  ];
}

const phoenix = (...args: string[]) => [CLI, ...args];
let reference: { host: HostPrint; portainer: string[] };

test('reference: the containers, then one uninterrupted LetsGo', async () => {
  const env = await freshPortainer();
  for (const id of ['900', '103', '101', '102']) {
    const r = await runAsync(phoenix('create', id), env);
    assert.is(r.code, 0, errorsOf(r.stderr));
  }
  save('containers');
  const r = await runAsync(phoenix('LetsGo'), env);
  assert.is(r.code, 0, errorsOf(r.stderr));
  assert.match(r.stderr, /sync complete/);
  reference = { host: hostPrint(host), portainer: portainerPrint() };
  assert.ok(reference.portainer.some((l) => l.startsWith('stack ')), 'the reference deployed a stack');
});

interface Case {
  name: string;
  /** The killed run, and where it is held. */
  first: { argv: string[]; injection: Injection };
  /** Further killed runs, each from where the previous one stopped. */
  then?: Array<{ argv: string[]; injection: Injection }>;
  /** The run the operator makes next. */
  rerun: string[];
  says?: RegExp;
}

const cases: Case[] = [
  {
    name: 'LetsGo killed while Proxmox takes VM 1001\'s cloud-base snapshot, then LetsGo again',
    first: { argv: phoenix('LetsGo'), injection: holdTask('qm', ['snapshot', '1001', 'cloud-base']) },
    rerun: phoenix('LetsGo'),
    says: /VM 1001 is marked 'lock: snapshot'/,
  },
  {
    name: 'LetsGo killed in sync all while VM 1002 joins the swarm, then sync all; that sync all killed in the Portainer stage, then sync all again',
    first: { argv: phoenix('LetsGo'), injection: holdGuest({ tool: 'qm', guest: '1002', contains: 'docker swarm join' }) },
    then: [{ argv: phoenix('sync', 'all'), injection: holdGuest({ tool: 'qm', guest: '1001', contains: 'docker secret create' }) }],
    rerun: phoenix('sync', 'all'),
    says: /taking over the stale lock/,
  },
];

for (const c of cases) {
  test(c.name, async () => {
    restore('containers');
    const env = await freshPortainer();
    for (const killed of [c.first, ...(c.then ?? [])]) await killAt(host, killed.argv, env, killed.injection);
    const second = await runAsync(c.rerun, env);
    assert.is(second.code, 0, `the run after the interruption:\n${errorsOf(second.stderr)}`);
    if (c.says) assert.match(second.stderr, c.says);
    assertSameHost(hostPrint(host), reference.host, c.name);
    assert.equal(portainerPrint(), reference.portainer, `${c.name}: Portainer`);
  });
}

test.after(async () => {
  await standin?.close();
  host.dispose();
});
test.run();
