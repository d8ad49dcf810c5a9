// Hard stops: a run killed with SIGKILL at a chosen point (its whole process
// group: the CLI, its managers and the Proxmox tools they were running),
// then the same command again. The second run must exit 0 and leave the
// simulated host exactly as one uninterrupted run leaves it: guest configs
// and snapshots (minus what differs between any two runs: MACs, UUIDs,
// times, generated keys), run states, lifecycle records and the host's files.
//
// Killing is deterministic: an inject.json rule with `times: 1` holds the
// chosen call (a long delay, or a slowed tool while a half-made guest
// exists); once the rule has been consumed the run is known to be there and
// its group is killed. Each case starts from a copy of a prepared state.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { createSimHost } from '../simhost/index.mts';
import type { Injection } from '../simhost/inject.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { CLI, cliEnv } from '../helpers/run-phoenix.mts';
import { assertSameHost, errorsOf, holdCall, holdGuest, holdTask, hostPrint, killAt, runTo as runWith, stateShelf } from '../helpers/hard-stop.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

const VM_MANAGER = path.join(PROJECT_ROOT, 'scripts', 'managers', 'vm-manager.mjs');
const RENEWAL_MANAGER = path.join(PROJECT_ROOT, 'scripts', 'managers', 'certificate-renewal-manager.mjs');
const host = createSimHost();
const work = tmpDir('phoenix-interrupted-');
const base = path.join(work, 'base');
fs.cpSync(path.join(PROJECT_ROOT, 'etc'), path.join(base, 'etc'), { recursive: true });
const env = cliEnv(host, work, base);
const { save, restore } = stateShelf(host, path.join(work, 'saved'), work);
const fingerprint = () => hostPrint(host);
const runTo = (argv: string[]) => runWith(argv, env);
const phoenix = (...args: string[]) => [CLI, ...args];
const vmManager = (...args: string[]) => [VM_MANAGER, ...args];
const configHas = (kind: 'lxc' | 'qemu', id: string, pattern: RegExp) => () => pattern.test(host.readConfigText(kind, id) ?? '');

// ---------------------------------------------------------------- references

let ref103: Record<string, string[]>;
let ref1001: Record<string, string[]>;

test('references: the uninterrupted runs', () => {
  save('empty');
  let r = runTo(phoenix('create', '900'));
  assert.is(r.code, 0, errorsOf(r.stderr));
  save('ct-template');
  r = runTo(phoenix('create', '103'));
  assert.is(r.code, 0, errorsOf(r.stderr));
  ref103 = fingerprint();
  // The VMs trust the CA: their phase starts where LetsGo's starts it, with the CA there.
  r = runTo(vmManager('create', '9000'));
  assert.is(r.code, 0, errorsOf(r.stderr));
  save('vm-template');
  r = runTo(vmManager('create', '1001'));
  assert.is(r.code, 0, errorsOf(r.stderr));
  assert.match(host.readConfigText('qemu', '1001') ?? '', /^\[cloud-base\]$/m);
  ref1001 = fingerprint();
});

// ---------------------------------------------------------------- phoenix create 103

interface Case {
  name: string;
  from: string;
  argv: string[];
  injection: Injection;
  reached?: () => boolean;
  /** Instead of a kill: the first run fails by itself. */
  fails?: boolean;
  /** What the second run must say. */
  says?: RegExp;
  /** Another command run on the interrupted state first: it must fail with this message and change nothing. */
  meanwhile?: { argv: string[]; says: RegExp };
  expected: () => Record<string, string[]>;
}

const cases: Case[] = [
  {
    name: 'create 103 killed while Proxmox creates CT 900 (its config still says lock: create)',
    from: 'empty',
    argv: phoenix('create', '103'),
    injection: { latency: { pct: 1500 } },
    reached: configHas('lxc', '900', /^lock: create$/m),
    says: /CT 900 is marked 'lock: create' by a create or clone that did not finish/,
    expected: () => ref103,
  },
  {
    name: 'create 103 killed while CT 900 is cloned (103 half-made, 900 marked lock: disk)',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: { latency: { pct: 1500 } },
    reached: configHas('lxc', '103', /^lock: create$/m),
    says: /CT 900 is still marked 'lock: disk'.*\n[\s\S]*CT 103 is marked 'lock: create'|CT 103 is marked 'lock: create'[\s\S]*CT 900 is still marked 'lock: disk'/,
    expected: () => ref103,
  },
  {
    name: 'create 103 killed right after the clone, before its configuration',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdCall('pct', ['set', '103']),
    expected: () => ref103,
  },
  {
    name: 'create 103 killed while the step_ca feature installs its packages',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdGuest({ guest: '103', stdin_contains: 'packages.smallstep.com' }),
    says: /taking over the stale lock/,
    expected: () => ref103,
  },
  {
    name: 'create 103 whose package install fails, run again',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: { exec: [{ guest: '103', stdin_contains: 'packages.smallstep.com', times: 1, exit: 100, stderr: 'E: Unable to fetch some archives\n' }] },
    fails: true,
    says: /CT 103 holds the CA and is not finished/,
    expected: () => ref103,
  },
  {
    name: 'create 103 killed during step ca init',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdGuest({ guest: '103', contains: 'step ca init' }),
    says: /CT 103 holds the CA and is not finished/,
    meanwhile: { argv: [RENEWAL_MANAGER], says: /the CA in CT 103 is missing or unfinished[^\n]*`phoenix create 103` finishes it/ },
    expected: () => ref103,
  },
  {
    name: 'create 103 killed right after step ca init, before the provisioner password copy was removed',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdGuest({ guest: '103', command: ['rm', '-f'], contains: '.phoenix-provisioner-password.' }),
    says: /removing \/root\/\.phoenix-provisioner-password\.[0-9a-f]+ in CT 103/,
    expected: () => ref103,
  },

  {
    name: 'create 103 killed before the root CA is copied to the host',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdCall('pct', ['pull', '103']),
    expected: () => ref103,
  },
  {
    name: 'create 103 killed before its last snapshot',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdCall('pct', ['snapshot', '103', 'final-form']),
    expected: () => ref103,
  },
  {
    name: 'create 103 killed while Proxmox takes its final-form snapshot (lock: snapshot, snapstate: prepare)',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdTask('pct', ['snapshot', '103', 'final-form']),
    says: /CT 103 is marked 'lock: snapshot' by a snapshot task that did not finish[\s\S]*removing snapshot 'final-form', left unfinished \(snapstate prepare\)/,
    expected: () => ref103,
  },
  // ---------------------------------------------------------------- the VM phase
  {
    name: 'VM 1001 killed while Proxmox clones it (its config still says lock: clone)',
    from: 'vm-template',
    argv: vmManager('create', '1001'),
    injection: { latency: { qm: 1500 } },
    reached: configHas('qemu', '1001', /^lock: clone$/m),
    says: /VM 1001 is marked 'lock: clone'/,
    expected: () => ref1001,
  },
  {
    name: 'VM 1001 killed right after qm clone, before its cloud-base snapshot',
    from: 'vm-template',
    argv: vmManager('create', '1001'),
    injection: holdCall('qm', ['snapshot', '1001', 'cloud-base']),
    says: /the clone of 9000 was interrupted before its snapshot 'cloud-base'; taking it now/,
    expected: () => ref1001,
  },

  {
    name: 'VM 1001 killed while Proxmox takes its cloud-base snapshot (lock: snapshot)',
    from: 'vm-template',
    argv: vmManager('create', '1001'),
    injection: holdTask('qm', ['snapshot', '1001', 'cloud-base']),
    says: /VM 1001 is marked 'lock: snapshot'[\s\S]*removing snapshot 'cloud-base'[\s\S]*taking it now/,
    expected: () => ref1001,
  },
  {
    name: 'VM 1001 killed before it first starts',
    from: 'vm-template',
    argv: vmManager('create', '1001'),
    injection: holdCall('qm', ['start', '1001']),
    expected: () => ref1001,
  },
];

// INTERRUPTED_ONLY=<words> runs the cases whose name contains them (after the references).
const only = process.env.INTERRUPTED_ONLY;
for (const c of cases.filter((k) => only === undefined || k.name.includes(only))) {
  test(c.name, async () => {
    restore(c.from);
    if (c.fails) {
      host.setInjection(c.injection);
      const first = runTo(c.argv);
      host.setInjection({});
      assert.is.not(first.code, 0, 'the first run fails');
    } else {
      await killAt(host, c.argv, env, c.injection, c.reached);
    }
    if (c.meanwhile) {
      const before = fingerprint();
      const other = runTo(c.meanwhile.argv);
      assert.is.not(other.code, 0, `${c.meanwhile.argv.join(' ')} on the interrupted state`);
      assert.match(other.stderr, c.meanwhile.says);
      assert.not.match(other.stderr, /\n\s+at /, 'no stack trace');
      assertSameHost(fingerprint(), before, `${c.name}: ${path.basename(c.meanwhile.argv[0]!)}`);
    }
    const second = runTo(c.argv);
    assert.is(second.code, 0, `the run after the interruption:\n${errorsOf(second.stderr)}`);
    if (c.says) assert.match(second.stderr, c.says);
    assertSameHost(fingerprint(), c.expected(), c.name);
    // No copy of the provisioner password is ever left in the CA container.
    const root = host.guestPath('103', '/root');
    if (fs.existsSync(root)) assert.equal(fs.readdirSync(root).filter((n) => n.startsWith('.phoenix-provisioner-password')), []);
  });
}

test.after(() => host.dispose());
test.run();
