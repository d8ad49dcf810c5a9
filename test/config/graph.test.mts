import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildGraph, resolveOrder, waves, bootOrder, unknownIds, type GuestNode } from '../../lib/config/graph.mts';
import { CycleError, UsageError } from '../../lib/core/errors.mts';

// The upstream environment's edges as the bash phoenix-cli built them (the
// clone source first, then `dependencies[]` in file order), LXC ids first as
// the bash listed them, then the VMs in file order.
const node = (id: string, kind: 'lxc' | 'vm', edges: string[], extra: Partial<GuestNode> = {}): GuestNode => ({ id, kind, edges, isTemplate: false, bootOrder: 999, ...extra });
const upstream = buildGraph([
  node('101', 'lxc', ['900', '103']),
  node('102', 'lxc', ['900', '101']),
  node('103', 'lxc', ['900']),
  node('801', 'lxc', ['911', '1002', '103']),
  node('802', 'lxc', ['911', '1002']),
  node('900', 'lxc', [], { isTemplate: true }),
  node('901', 'lxc', ['900', '1002'], { isTemplate: true }),
  node('910', 'lxc', ['901', '103']),
  node('911', 'lxc', ['901', '103'], { isTemplate: true }),
  node('912', 'lxc', ['911', '103']),
  node('914', 'lxc', ['901', '1002']),
  node('917', 'lxc', ['901', '1002']),
  node('9000', 'vm', [], { isTemplate: true }),
  node('1001', 'vm', ['9000', '102']),
  node('1002', 'vm', ['9000', '1001']),
]);
const all = ['101', '102', '103', '801', '802', '900', '901', '910', '911', '912', '914', '917', '9000', '1001', '1002'];

test('orders match the bash toolkit for the upstream environment', () => {
  assert.equal(resolveOrder(upstream, ['103']), ['900', '103']);
  assert.equal(resolveOrder(upstream, ['102']), ['900', '103', '101', '102']);
  assert.equal(resolveOrder(upstream, ['1001']), ['9000', '900', '103', '101', '102', '1001']);
  assert.equal(resolveOrder(upstream, ['801']), ['900', '9000', '103', '101', '102', '1001', '1002', '901', '911', '801']);
  assert.equal(resolveOrder(upstream, all), ['900', '103', '101', '102', '9000', '1001', '1002', '901', '911', '801', '802', '910', '912', '914', '917']);
});

test('a cycle is reported with the whole cycle', () => {
  const g = buildGraph([node('1', 'lxc', ['2']), node('2', 'lxc', ['3']), node('3', 'lxc', ['1']), node('4', 'lxc', ['1'])]);
  try {
    resolveOrder(g, ['4']);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, CycleError);
    assert.equal((err as CycleError).cycle, ['1', '2', '3', '1']);
    assert.match((err as Error).message, /1 -> 2 -> 3 -> 1/);
  }
});

test('a self-dependency is a cycle too', () => {
  const g = buildGraph([node('7', 'lxc', ['7'])]);
  assert.throws(() => resolveOrder(g, ['7']), (err: Error) => err instanceof CycleError && /7 -> 7/.test(err.message));
});

test('unknown targets and unknown dependencies are named', () => {
  assert.equal(unknownIds(upstream, ['101', '555', 'abc']), ['555', 'abc']);
  assert.throws(() => resolveOrder(upstream, ['555']), (err: Error) => err instanceof UsageError && /555/.test(err.message));
  const g = buildGraph([node('5', 'lxc', ['6'])]);
  assert.throws(() => resolveOrder(g, ['5']), (err: Error) => /guest 5 depends on 6/.test(err.message));
});

test('waves group guests whose dependencies are done', () => {
  const order = resolveOrder(upstream, all);
  const w = waves(upstream, order);
  assert.equal(w[0], ['900', '9000']);
  assert.equal(w[1], ['103']);
  assert.equal(w[2], ['101']);
  assert.equal(w[3], ['102']);
  // every guest appears once, after all its dependencies
  const seenAt = new Map<string, number>();
  w.forEach((wave, i) => wave.forEach((id) => seenAt.set(id, i)));
  assert.is(seenAt.size, all.length);
  for (const id of all) for (const dep of upstream.get(id)!.edges) assert.ok(seenAt.get(dep)! < seenAt.get(id)!, `${dep} before ${id}`);
});

test('boot order skips templates and honours VM boot_order', () => {
  const g = buildGraph([
    node('900', 'lxc', [], { isTemplate: true, bootOrder: 1 }),
    node('103', 'lxc', ['900'], { bootOrder: 1 }),
    node('101', 'lxc', ['900'], { bootOrder: 2 }),
    node('1001', 'vm', [], { bootOrder: 4 }),
    node('1002', 'vm', [], { bootOrder: 3 }),
    node('102', 'lxc', [], {}),
  ]);
  assert.equal(bootOrder(g, ['900', '103', '101', '1001', '1002', '102']), ['103', '101', '1002', '1001', '102']);
});

test('a cycle names the manifest and the JSON pointer of the edge that closes it', () => {
  const origin = (id: string, edges: string[]) => ({ file: '/etc/phoenix/lxc.json', pointer: `/lxc_configs/${id}`, edges });
  const g = buildGraph([
    node('1', 'lxc', ['2'], { origin: origin('1', ['/lxc_configs/1/clone_from_ctid']) }),
    node('2', 'lxc', ['1'], { origin: origin('2', ['/lxc_configs/2/dependencies/0']) }),
  ]);
  assert.throws(
    () => resolveOrder(g, ['1']),
    (err: Error) => err instanceof CycleError && err.message === '/etc/phoenix/lxc.json at /lxc_configs/2/dependencies/0: dependency cycle: 1 -> 2 -> 1',
  );
});

test.run();
