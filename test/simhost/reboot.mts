#!/usr/bin/env node
// Reboot the simulated host: `node test/simhost/reboot.mjs <state dir>`.
// Empties <hostfs>/run and applies what only a boot applies (a pending
// NVIDIA driver, the staged kernel command line and module configuration);
// see hostsvc/kernel-state.mts rebootSimHost.

import path from 'node:path';
import { rebootSimHost } from './hostsvc/kernel-state.mts';

const [dir] = process.argv.slice(2);
if (dir === undefined || dir === '--help' || dir === '-h') {
  process.stdout.write('Usage: node test/simhost/reboot.mjs <state dir>\n');
  process.exitCode = dir === undefined ? 2 : 0;
} else {
  rebootSimHost(path.resolve(dir));
  process.stdout.write(`simulated host in ${dir} rebooted\n`);
}
