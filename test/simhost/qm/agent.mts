// The guest agent (PVE::QemuServer::Agent): `qm guest cmd`, `qm guest exec`
// and `qm guest exec-status`. The agent answers once the VM has been up
// for agent_delay_ms; guest exec acts on the VM's file tree.

import fs from 'node:fs';
import path from 'node:path';

import { usage } from '../args.mts';
import type { Ctx } from '../cli.mts';
import { parameterError } from '../guest-common/config-edits.mts';
import { readsStdin } from '../guest-common/exec.mts';
import { GuestFs, guestFsDir, runCommand } from '../guestfs.mts';
import { isRunning, loadGuest } from '../guests.mts';
import { takeExecRule, timeScale } from '../inject.mts';
import type { GuestConfig } from '../pveconf.mts';
import { die, loadRuntime, sleepSync, ToolExit, updateRuntime, type Runtime } from '../state.mts';
import { specs } from './schema.mts';

/** Perl's JSON->pretty->canonical output: 3-space indent, "key" : value. */
export function perlJson(value: Record<string, string | number>): string {
  const keys = Object.keys(value).sort();
  if (keys.length === 0) return '{}\n';
  const body = keys.map((k) => `   ${JSON.stringify(k)} : ${JSON.stringify(value[k])}`).join(',\n');
  return `{\n${body}\n}\n`;
}

function agentAvailable(ctx: Ctx, vmid: string): { config: GuestConfig; rt: Runtime } {
  const config = loadGuest(ctx, 'qemu', vmid);
  const rt = loadRuntime(ctx.root);
  if (config.main.props.agent === undefined) die('No QEMU guest agent configured');
  if (!isRunning(rt, vmid, ctx.root, 'qemu')) die(`VM ${vmid} is not running`);
  const enabled = !/^(enabled=)?0(,|$)/.test(config.main.props.agent);
  const ready = rt.guests[vmid]?.agentReadyAt ?? 0;
  if (!enabled || Date.now() < ready) die('QEMU guest agent is not running');
  return { config, rt };
}

export function guestCmd(ctx: Ctx, vmid: string, command: string): void {
  ctx.begin();
  const { config } = agentAvailable(ctx, vmid);
  const hostname = () => {
    try {
      return fs.readFileSync(path.join(guestFsDir(ctx.root, vmid), 'etc', 'hostname'), 'utf8').trim();
    } catch {
      return config.main.props.name ?? `vm${vmid}`;
    }
  };
  switch (command) {
    case 'ping':
    case 'fsfreeze-thaw':
    case 'fstrim':
      return;
    case 'get-host-name':
      ctx.out(`{\n   "host-name" : ${JSON.stringify(hostname())}\n}\n`);
      return;
    case 'get-osinfo':
      ctx.out(perlJson({ id: 'ubuntu', name: 'Ubuntu', 'pretty-name': 'Ubuntu 24.04 LTS', 'version-id': '24.04', 'kernel-release': '6.8.0-45-generic', machine: 'x86_64' }));
      return;
    case 'fsfreeze-status':
      ctx.out('thawed\n');
      return;
    case 'info':
      ctx.out(perlJson({ version: '8.2.2' }));
      return;
    case 'network-get-interfaces': {
      const ip = /ip=([\d.]+)\/(\d+)/.exec(config.main.props.ipconfig0 ?? '');
      const mac = /^\w+=([0-9A-Fa-f:]{17})/.exec(config.main.props.net0 ?? '')?.[1]?.toLowerCase() ?? '00:00:00:00:00:00';
      const iface = ip ? `,\n      "ip-addresses" : [\n         {\n            "ip-address" : "${ip[1]}",\n            "ip-address-type" : "ipv4",\n            "prefix" : ${ip[2]}\n         }\n      ]` : '';
      ctx.out(`[\n   {\n      "hardware-address" : "00:00:00:00:00:00",\n      "name" : "lo"\n   },\n   {\n      "hardware-address" : "${mac}"${iface},\n      "name" : "eth0"\n   }\n]\n`);
      return;
    }
    default:
      die(`simhost: 'qm guest cmd ${command}' is not simulated`);
  }
}

export function guestExec(ctx: Ctx, vmid: string, command: string[], opts: Record<string, string>): void {
  const sync = opts.synchronous !== '0';
  if (opts.timeout !== undefined && !sync) {
    parameterError(usage(specs['guest exec']!), 'synchronous', "needs to be set for 'timeout'");
  }
  ctx.begin();
  const stdin = opts['pass-stdin'] === '1' ? ctx.stdin() : undefined;
  if (stdin && stdin.length > 1024 * 1024) die("'input-data' (STDIN) is limited to 1 MiB, aborting");
  agentAvailable(ctx, vmid);
  if (command.length === 0 && !stdin) die('command or input-data (or both) required');
  const scale = timeScale(ctx.injection);
  const timeoutS = opts.timeout !== undefined ? Number(opts.timeout) : 30;

  const rule = takeExecRule(ctx.root, ctx.injection, { tool: 'qm', guest: vmid, command, ...(stdin ? { stdin: stdin.toString('latin1') } : {}) });
  let result: { exit: number; stdout: string; stderr: string };
  let durationMs = 0;
  if (rule) {
    result = { exit: rule.exit ?? 0, stdout: rule.stdout ?? '', stderr: rule.stderr ?? '' };
    durationMs = rule.duration_ms ?? 0;
  } else {
    const g = new GuestFs(guestFsDir(ctx.root, vmid));
    fs.mkdirSync(g.base, { recursive: true });
    const cmd = command.length > 0 ? command : ['sh'];
    result = runCommand(g, cmd, { launcher: 'qemu-ga', vmid, root: ctx.root, ...(stdin ? { stdin } : (readsStdin(cmd) ? { stdin: Buffer.alloc(0) } : {})) });
    if (result.exit === -1) {
      throw new ToolExit(255, result.stderr.replace(/\n?$/, '\n'));
    }
  }

  const pid = updateRuntime(ctx.root, (rt) => rt.nextPid++);
  const exceeds = sync && timeoutS !== 0 && durationMs > timeoutS * 1000;
  if (!sync || exceeds) {
    updateRuntime(ctx.root, (rt) => {
      (rt.agentExec[vmid] ??= {})[String(pid)] = { doneAt: Date.now() + durationMs * scale, exitcode: result.exit, out: result.stdout, err: result.stderr };
    });
    if (exceeds) {
      sleepSync(timeoutS * 1000 * scale);
      ctx.err('timeout reached, returning pid\n');
    }
    ctx.out(perlJson({ pid }));
    return;
  }
  sleepSync(durationMs * scale);
  ctx.out(perlJson(execReply(result.exit, result.stdout, result.stderr)));
}

function execReply(exitcode: number, out: string, err: string): Record<string, string | number> {
  const reply: Record<string, string | number> = { exitcode, exited: 1 };
  if (out !== '') reply['out-data'] = out;
  if (err !== '') reply['err-data'] = err;
  return reply;
}

export function execStatus(ctx: Ctx, vmid: string, pid: string): void {
  ctx.begin();
  agentAvailable(ctx, vmid);
  const reply = updateRuntime(ctx.root, (rt) => {
    const job = rt.agentExec[vmid]?.[pid];
    if (!job) return undefined;
    if (Date.now() < job.doneAt) return { exited: 0 } as Record<string, string | number>;
    // The agent forgets a process once its exit has been reported.
    delete rt.agentExec[vmid]![pid];
    return execReply(job.exitcode, job.out, job.err);
  });
  if (!reply) die(`Agent error: Invalid parameter 'pid'`);
  ctx.out(perlJson(reply));
}
