import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { executePhases } from '../lib/executor.mts';
import { configureLog } from '../lib/log.mts';
import { sleep } from '../lib/runner.mts';
import type { Phase, Step } from '../lib/orchestrator.mts';

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

test.run();
