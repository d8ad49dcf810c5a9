// `docker` inside simulated VMs: the engine commands Phoenix's swarm- and
// portainer-manager run through `qm guest exec`, with a Swarm
// whose state is shared by every guest in <state>/docker.json (one lock file
// beside it). What is modelled is what orchestration code relies on:
//
// - swarm init / join-token / join / leave, with the engine's own view in
//   `docker info` (.Swarm as the Engine API returns it) and the refusals of
//   the real daemon (already part of a swarm, not a manager, bad token, no
//   manager at the address, last manager leaving without --force);
// - nodes (ls, inspect, update --label-add/--label-rm, rm, promote/demote),
//   addressed by ID, unique ID prefix, hostname (ambiguous when a stale
//   entry shares it) or `self`;
// - stacks from a compose file or stdin (`-c -`): YAML parsed, interpolated
//   like the docker CLI (the guest has no variables set: `${X}` is empty,
//   `$$` is a dollar, `${X:?msg}` fails), external networks and secrets
//   required, networks/secrets/services created with the stack namespace
//   label, services updated in place; stack ls / services / rm;
// - services (ls, inspect, update --force, rm), secrets (create from a file
//   or stdin, ls, inspect, rm; only a digest of the data is kept, and a
//   secret in use cannot be removed), networks (ls, create, inspect, rm),
//   volumes, and standalone containers (run -d, rm, ps, which also lists a
//   node's service tasks, placed by the services' constraints).
//
// Nothing is pulled or run: an image is a name, a task is a row. Node IDs,
// tokens and object IDs come from a counter in the state, so a given
// sequence of commands gives the same IDs every time (golden transcripts).
//
// `xargs` is emulated too (docker/xargs.mts; it runs its command through the
// guest's command table): it is how a secret reaches a command line inside a
// guest without passing through the host's argument vectors.
//
// This module reads the global flags and dispatches by subcommand; each
// subcommand lives in docker/ (swarm.mts with info, node.mts, service.mts
// with the task placement, stack.mts, secret.mts, network.mts,
// containers.mts with volumes), over the state in docker/state.mts, the
// flag parsing in docker/flags.mts and the output in docker/format.mts.
//
// In containers (`pct exec`) docker stays an unmodelled program (exit 0,
// recorded only), so tests of the LXC features keep scripting its answers.

import { guestPrograms, type ExecResult, type GuestFs, type RunOptions } from '../guestfs.mts';
import { ENGINE_VERSION, Fail, SWARM_PORT, type Ctx, type Handler } from './docker/state.mts';
import { infoCmd, swarmCmd } from './docker/swarm.mts';
import { nodeCmd } from './docker/node.mts';
import { serviceCmd } from './docker/service.mts';
import { secretCmd } from './docker/secret.mts';
import { networkCmd } from './docker/network.mts';
import { stackCmd } from './docker/stack.mts';
import { inspectCmd, psCmd, rmCmd, runCmd, startStopCmd, volumeCmd } from './docker/containers.mts';
import { xargsProgram } from './docker/xargs.mts';

export { ENGINE_VERSION, SWARM_PORT, xargsProgram };

// ---------------------------------------------------------------------------
// Entry

const GLOBAL_VALUE_FLAGS = new Set(['--context', '-c', '--host', '-H', '--config', '--log-level', '-l', '--tlscacert', '--tlscert', '--tlskey']);
const GLOBAL_BOOL_FLAGS = new Set(['--tls', '--tlsverify', '-D', '--debug']);

const commands: Record<string, Handler> = {
  info: infoCmd,
  swarm: swarmCmd,
  node: nodeCmd,
  service: serviceCmd,
  secret: secretCmd,
  network: networkCmd,
  stack: stackCmd,
  volume: volumeCmd,
  ps: psCmd,
  run: runCmd,
  rm: rmCmd,
  start: startStopCmd('start'),
  stop: startStopCmd('stop'),
  restart: startStopCmd('restart'),
  inspect: inspectCmd,
  version: (ctx) => {
    ctx.out += `Client: Docker Engine - Community\n Version:           ${ENGINE_VERSION}\n\nServer: Docker Engine - Community\n Engine:\n  Version:          ${ENGINE_VERSION}\n`;
  },
  system: (ctx, args) => {
    if (args[0] === 'info') return infoCmd(ctx, args.slice(1));
    throw new Fail(1, `simhost: 'docker system ${args[0] ?? ''}' is not simulated\n`);
  },
  container: (ctx, args) => {
    const [sub, ...rest] = args;
    if (sub === 'ls' || sub === 'list' || sub === 'ps') return psCmd(ctx, rest);
    if (sub === 'run') return runCmd(ctx, rest);
    if (sub === 'rm' || sub === 'remove') return rmCmd(ctx, rest);
    if (sub === 'inspect') return inspectCmd(ctx, rest);
    if (sub === 'start' || sub === 'stop' || sub === 'restart') return startStopCmd(sub)(ctx, rest);
    throw new Fail(1, `simhost: 'docker container ${sub ?? ''}' is not simulated\n`);
  },
};

export function dockerProgram(g: GuestFs, argv: readonly string[], options: RunOptions): ExecResult {
  // Containers keep the simulator's rule for unmodelled programs (exit 0,
  // recorded only): the LXC feature tests script docker's answers there.
  if (options.launcher !== 'qemu-ga') return { exit: 0, stdout: '', stderr: '' };
  let i = 0;
  while (i < argv.length && (argv[i] as string).startsWith('-')) {
    const flag = (argv[i] as string).split('=')[0] as string;
    if (flag === '--version' || flag === '-v') return { exit: 0, stdout: `Docker version ${ENGINE_VERSION}, build ce12230\n`, stderr: '' };
    if (GLOBAL_VALUE_FLAGS.has(flag)) i += (argv[i] as string).includes('=') ? 1 : 2;
    else if (GLOBAL_BOOL_FLAGS.has(flag)) i += 1;
    else return { exit: 125, stdout: '', stderr: `unknown flag: ${flag}\nSee 'docker --help'.\n` };
  }
  const [name, ...args] = argv.slice(i);
  if (name === undefined) return { exit: 0, stdout: 'Usage:  docker [OPTIONS] COMMAND\n', stderr: '' };
  const handler = commands[name];
  if (!handler) return { exit: 1, stdout: '', stderr: `docker: '${name}' is not a docker command.\nSee 'docker --help'\n` };
  const ctx: Ctx = { g, options, vmid: options.vmid, stdin: options.stdin, out: '', err: '' };
  try {
    handler(ctx, args);
    return { exit: 0, stdout: ctx.out, stderr: ctx.err };
  } catch (error) {
    if (error instanceof Fail) return { exit: error.exit, stdout: error.stdout || '', stderr: ctx.err + error.message };
    throw error;
  }
}

guestPrograms.docker = dockerProgram;
guestPrograms.xargs ??= xargsProgram;
