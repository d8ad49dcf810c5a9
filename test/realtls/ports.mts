// Free TCP (and UDP) ports on loopback addresses for the real-component
// tests. Several test files run at the same time, so a port is first claimed
// across processes (an atomic mkdir under the claim directory, holding the
// claimant's pid; a claim whose process is gone is taken over), then checked
// by binding it on every address the test will use. Ports are drawn from
// 20000-32159, below Linux's ephemeral range, so an outgoing connection can
// never be handed one of them between the check and the server's own bind.

import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const CLAIM_DIR = path.join(os.tmpdir(), 'phoenix-realtls-ports');
const FIRST = 20000;
const COUNT = 12160;
const MAX_TRIES = 400;
const claimed: string[] = [];

process.on('exit', () => {
  for (const dir of claimed) fs.rmSync(dir, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function claim(port: number): boolean {
  // Shared by root and non-root runs: world-writable and sticky, like /tmp.
  if (fs.mkdirSync(CLAIM_DIR, { recursive: true }) !== undefined) fs.chmodSync(CLAIM_DIR, 0o1777);
  const dir = path.join(CLAIM_DIR, String(port));
  try {
    fs.mkdirSync(dir);
  } catch {
    let owner = Number.NaN;
    try {
      owner = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'));
    } catch {
      // being created right now, or left without a pid file
    }
    const ageMs = Date.now() - (fs.statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0);
    if (Number.isInteger(owner) ? alive(owner) : ageMs < 60_000) return false;
    fs.rmSync(dir, { recursive: true, force: true });
    try {
      fs.mkdirSync(dir);
    } catch {
      return false;
    }
  }
  fs.writeFileSync(path.join(dir, 'pid'), String(process.pid));
  claimed.push(dir);
  return true;
}

function release(port: number): void {
  const dir = path.join(CLAIM_DIR, String(port));
  const index = claimed.indexOf(dir);
  if (index >= 0) claimed.splice(index, 1);
  fs.rmSync(dir, { recursive: true, force: true });
}

function tcpFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function udpFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ address, port, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

export interface PortOptions {
  /** Loopback addresses the port must be free on (default 127.0.0.1). */
  addresses?: string[];
  /** Also free for UDP (a DNS server). */
  udp?: boolean;
}

/** One claimed, currently free port; kept claimed until this process exits. */
export async function freePort(options: PortOptions = {}): Promise<number> {
  const addresses = options.addresses ?? ['127.0.0.1'];
  for (const address of addresses) {
    if (!address.startsWith('127.')) throw new Error(`freePort: ${address} is not a loopback address`);
  }
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    const port = FIRST + Math.floor(Math.random() * COUNT);
    if (!claim(port)) continue;
    let free = true;
    for (const address of addresses) {
      if (!(await tcpFree(address, port)) || (options.udp && !(await udpFree(address, port)))) {
        free = false;
        break;
      }
    }
    if (free) return port;
    release(port);
  }
  throw new Error(`no free port found on ${addresses.join(', ')} after ${MAX_TRIES} tries`);
}

/** Several distinct free ports with the same options. */
export async function freePorts(count: number, options: PortOptions = {}): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort(options));
  return ports;
}
