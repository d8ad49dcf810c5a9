import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { executePhases } from '../../lib/cli/executor.mts';
import { configureLog } from '../../lib/core/log.mts';
import { sleep } from '../../lib/core/runner.mts';
import type { Phase, Step } from '../../lib/cli/orchestrator.mts';

configureLog({ file: undefined, write: () => {} });
const step = (guest: string): Step => ({ script: 'managers/lxc-manager.sh', args: ['create', guest], guest });
const phase = (waves: string[][]): Phase => ({ name: 'create', waves: waves.map((w) => w.map(step)), skipped: [] });

test('a wave runs in parallel up to the limit; waves run in order', async () => {
  let active = 0;
  let peak = 0;
  const order: string[] = [];
  const result = await executePhases([phase([['a', 'b', 'c'], ['d']])], {
    concurrency: 2,
    runStep: async (s) => {
      active++;
      peak = Math.max(peak, active);
      await sleep(30);
      order.push(s.guest!);
      active--;
      return 0;
    },
  });
  assert.is(peak, 2);
  assert.is(order.at(-1), 'd');
  assert.is(result.failed, undefined);
  assert.is(result.outcomes.length, 4);
});

test('the first failure stops new work and carries its exit code', async () => {
  const ran: string[] = [];
  const result = await executePhases([phase([['a'], ['b'], ['c']]), phase([['z']])], {
    concurrency: 4,
    runStep: async (s) => {
      ran.push(s.guest!);
      return s.guest === 'b' ? 42 : 0;
    },
  });
  assert.equal(ran, ['a', 'b']);
  assert.is(result.failed?.code, 42);
  assert.equal(result.notRun.map((s) => s.guest), ['c', 'z']);
});

test('exclusive steps (legacy bash) never overlap', async () => {
  let active = 0;
  let peak = 0;
  await executePhases([phase([['a', 'b', 'c']])], {
    concurrency: 3,
    exclusive: () => true,
    runStep: async () => {
      active++;
      peak = Math.max(peak, active);
      await sleep(10);
      active--;
      return 0;
    },
  });
  assert.is(peak, 1);
});

test('steps sharing a serial key (clones of one template) take turns', async () => {
  const active = new Map<string, number>();
  let overlapSameKey = false;
  let peak = 0;
  let now = 0;
  const keyed = (guest: string, key?: string): Step => ({ ...step(guest), ...(key ? { serialKey: key } : {}) });
  await executePhases([{ name: 'create', waves: [[keyed('a', 'clone-source:900'), keyed('b', 'clone-source:900'), keyed('c', 'clone-source:901'), keyed('d')]], skipped: [] }], {
    concurrency: 4,
    runStep: async (s) => {
      now++;
      peak = Math.max(peak, now);
      if (s.serialKey) {
        if (active.get(s.serialKey)) overlapSameKey = true;
        active.set(s.serialKey, 1);
      }
      await sleep(20);
      if (s.serialKey) active.set(s.serialKey, 0);
      now--;
      return 0;
    },
  });
  assert.not.ok(overlapSameKey);
  assert.is(peak, 3, 'the other steps still ran in parallel');
});

test.run();
