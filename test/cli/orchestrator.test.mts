import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCliArgs, planGuestVerb, planLetsGo, usage, VERBS, type Phase } from '../../lib/cli/orchestrator.mts';
import { buildGraph, type GuestNode } from '../../lib/config/graph.mts';
import { UsageError, CycleError } from '../../lib/core/errors.mts';

const node = (id: string, kind: 'lxc' | 'vm', edges: string[], extra: Partial<GuestNode> = {}): GuestNode => ({ id, kind, edges, isTemplate: false, bootOrder: 999, ...extra });
// A small environment shaped like the example manifests.
const graph = buildGraph([
  node('900', 'lxc', [], { isTemplate: true }),
  node('103', 'lxc', ['900'], { bootOrder: 1 }),
  node('101', 'lxc', ['900', '103'], { bootOrder: 2 }),
  node('102', 'lxc', ['900', '101', '103'], { bootOrder: 3 }),
  node('9000', 'vm', [], { isTemplate: true }),
  node('1001', 'vm', ['9000', '102'], { bootOrder: 4 }),
]);
const calls = (phase: Phase) => phase.waves.map((w) => w.map((s) => `${s.script.replace('managers/', '')} ${s.args.join(' ')}`));

test('flags are taken from anywhere and removed, like the bash', () => {
  const a = parseCliArgs(['create', '--dry-run', '101', '--reset-portainer']);
  assert.equal(a, { verb: 'create', targets: ['101'], dryRun: true, resetPortainer: true, help: false });
  assert.ok(parseCliArgs(['--help']).help);
});

test('usage errors: no verb, unknown verb, missing targets, LetsGo with targets', () => {
  assert.throws(() => parseCliArgs([]), (e: Error) => e instanceof UsageError && /no verb/.test(e.message));
  assert.throws(() => parseCliArgs(['frobnicate']), /Invalid verb 'frobnicate'/);
  assert.throws(() => parseCliArgs(['letsgo']), /Invalid verb/); // verbs are case-sensitive, as upstream
  assert.throws(() => parseCliArgs(['start']), /requires at least one target/);
  assert.throws(() => parseCliArgs(['LetsGo', '101']), /takes no targets/);
  assert.not.throws(() => parseCliArgs(['setup']));
});

test('the usage text lists every verb and the flags the bash forgot', () => {
  const text = usage();
  for (const verb of VERBS) assert.ok(text.includes(verb), verb);
  for (const flag of ['--dry-run', '--reset-portainer', 'swarm']) assert.ok(text.includes(flag), flag);
});

test('create: missing dependencies first, in waves; existing ones skipped', () => {
  const fresh = planGuestVerb('create', ['102'], graph);
  assert.equal(calls(fresh), [['lxc-manager.sh create 900'], ['lxc-manager.sh create 103'], ['lxc-manager.sh create 101'], ['lxc-manager.sh create 102']]);
  const partly = planGuestVerb('create', ['102'], graph, new Set(['900', '103', '101']));
  assert.equal(calls(partly), [['lxc-manager.sh create 102']]);
  assert.equal(partly.skipped.map((s) => s.guest), ['900', '103', '101']);
});

test('create: every named target gets the full create, not only the last', () => {
  const plan = planGuestVerb('create', ['101', '103'], graph, new Set(['900', '103', '101']));
  assert.equal(calls(plan).flat(), ['lxc-manager.sh create 103', 'lxc-manager.sh create 101']);
});

test('create of guests in both manifests runs independent ones in the same wave', () => {
  const plan = planGuestVerb('create', ['1001'], graph);
  assert.equal(calls(plan)[0], ['vm-manager.sh create 9000', 'lxc-manager.sh create 900']);
  assert.equal(calls(plan).at(-1), ['vm-manager.sh create 1001']);
});

test('start never drags templates along; stopped dependencies start first', () => {
  const all = new Set(['900', '103', '101', '102', '9000', '1001']);
  const plan = planGuestVerb('start', ['102'], graph, all, new Set(['103']));
  assert.equal(calls(plan).flat(), ['lxc-manager.sh start 101', 'lxc-manager.sh start 102']);
  const tmpl = planGuestVerb('start', ['900'], graph, all);
  assert.equal(calls(tmpl), []);
  assert.equal(tmpl.skipped, [{ guest: '900', reason: 'templates cannot be started' }]);
});

test('stop and restart touch only the targets; stop goes dependents first', () => {
  assert.equal(calls(planGuestVerb('stop', ['101', '102'], graph)).flat(), ['lxc-manager.sh stop 102', 'lxc-manager.sh stop 101']);
  assert.equal(calls(planGuestVerb('restart', ['102'], graph)).flat(), ['lxc-manager.sh restart 102']);
});

test('delete keeps the order given and resolves nothing', () => {
  assert.equal(calls(planGuestVerb('delete', ['102', '900'], graph)).flat(), ['lxc-manager.sh delete 102', 'lxc-manager.sh delete 900']);
});

test('unknown ids are errors before anything is planned', () => {
  assert.throws(() => planGuestVerb('create', ['101', '4242'], graph), (e: Error) => e instanceof UsageError && /4242/.test(e.message));
  assert.throws(() => planGuestVerb('delete', ['x'], graph), /unknown guest id/);
});

test('cycles are errors naming the cycle', () => {
  const cyclic = buildGraph([node('1', 'lxc', ['2']), node('2', 'lxc', ['1'])]);
  assert.throws(() => planGuestVerb('create', ['1'], cyclic), (e: Error) => e instanceof CycleError && /1 -> 2 -> 1/.test(e.message));
});

test('clones of one LXC template carry the same serial key', () => {
  const plan = planGuestVerb('create', ['102'], graph);
  const keys = plan.waves.flat().map((s) => `${s.guest}:${s.serialKey ?? '-'}`);
  assert.equal(keys, ['900:-', '103:clone-source:900', '101:clone-source:900', '102:clone-source:900']);
  assert.is(planGuestVerb('create', ['1001'], graph).waves.flat().find((s) => s.guest === '1001')?.serialKey, undefined);
});

test('LetsGo creates in waves, starts non-templates in boot order, syncs once', () => {
  const phases = planLetsGo(graph, ['101', '102', '103', '900', '9000', '1001'], true);
  assert.equal(phases.map((p) => p.name), ['create', 'start', 'sync']);
  assert.equal(calls(phases[0]!)[0], ['lxc-manager.sh create 900', 'vm-manager.sh create 9000']);
  assert.equal(calls(phases[1]!).flat(), ['lxc-manager.sh start 103', 'lxc-manager.sh start 101', 'lxc-manager.sh start 102', 'vm-manager.sh start 1001']);
  assert.equal(calls(phases[2]!).flat(), ['portainer-manager.sh sync all']);
  assert.equal(planLetsGo(graph, ['900'], false).map((p) => p.name), ['create', 'start']);
});

test.run();
