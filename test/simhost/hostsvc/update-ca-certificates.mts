// Debian's `update-ca-certificates` on the host, for the local certificates.

import fs from 'node:fs';
import path from 'node:path';

import { atomicWrite, ToolExit } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';
import { packageInstalled } from './packages.mts';

const LOCAL_CA_DIR = '/usr/local/share/ca-certificates';
const CERTS_DIR = '/etc/ssl/certs';
const BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

function listCrtFiles(dir: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listCrtFiles(full));
    else if (entry.name.endsWith('.crt')) out.push(full);
  }
  return out.sort();
}

/**
 * Debian's update-ca-certificates for the local certificates: each
 * <host root>/usr/local/share/ca-certificates/**.crt holding exactly one
 * certificate is linked as /etc/ssl/certs/<name>.pem, links whose source is
 * gone are removed, and the bundle ca-certificates.crt is rebuilt. The
 * counts it prints are those links.
 */
export function runUpdateCaCertificates(ctx: HostToolContext): void {
  const fresh = ctx.argv.includes('--fresh') || ctx.argv.includes('-f');
  for (const arg of ctx.argv) {
    if (!['--fresh', '-f', '--verbose', '-v'].includes(arg)) throw new ToolExit(1, `update-ca-certificates: unknown option ${arg}\n`);
  }
  if (!packageInstalled(ctx.root, 'ca-certificates')) throw new ToolExit(127, 'update-ca-certificates: command not found\n');
  const localDir = onHostRoot(ctx.hostRoot, LOCAL_CA_DIR);
  const certsDir = onHostRoot(ctx.hostRoot, CERTS_DIR);
  fs.mkdirSync(certsDir, { recursive: true });
  ctx.out(`Updating certificates in ${CERTS_DIR}...\n`);

  let removed = 0;
  for (const name of fs.readdirSync(certsDir)) {
    const link = path.join(certsDir, name);
    let target: string;
    try {
      target = fs.readlinkSync(link);
    } catch {
      continue; // not a link: the bundle
    }
    if (!target.startsWith(`${LOCAL_CA_DIR}/`)) continue;
    if (fresh || !fs.existsSync(onHostRoot(ctx.hostRoot, target))) {
      fs.rmSync(link);
      if (!fresh) removed++;
    }
  }

  let added = 0;
  const bundle: string[] = [];
  for (const file of listCrtFiles(localDir)) {
    const hostPath = `${LOCAL_CA_DIR}/${path.relative(localDir, file).split(path.sep).join('/')}`;
    const pem = fs.readFileSync(file, 'utf8');
    const count = (pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
    if (count !== 1 || !/-----END CERTIFICATE-----/.test(pem)) {
      ctx.err(`WARNING: ${hostPath} does not contain exactly one certificate or CRL: skipping\n`);
      continue;
    }
    const link = path.join(certsDir, `${path.basename(file, '.crt')}.pem`);
    let current: string | undefined;
    try {
      current = fs.readlinkSync(link);
    } catch {
      current = undefined;
    }
    if (current !== hostPath) {
      fs.rmSync(link, { force: true });
      fs.symlinkSync(hostPath, link);
      added++;
    }
    bundle.push(pem.endsWith('\n') ? pem : `${pem}\n`);
  }
  atomicWrite(onHostRoot(ctx.hostRoot, BUNDLE), bundle.join(''), 0o644);
  ctx.out(`${added} added, ${removed} removed; done.\nRunning hooks in /etc/ca-certificates/update.d...\ndone.\n`);
}
