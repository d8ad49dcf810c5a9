// The node itself: `timedatectl`, `hostnamectl`, `curl` and `virt-customize`,
// as Debian 12 / Proxmox VE 8 answer them.
//
//   host-node.json    { timezone: "UTC",
//                       curl_partial?: ["<url substring>"],   such downloads stop half way (curl exit 18)
//                       virt_customize_fail?: "<message>" }  virt-customize changes the image, then fails
//   host-images.json  { "<image path>": ["--install a,b", "--run-command ..."] }  what virt-customize did
//
// The time zone of a fresh node is UTC; its name is <hostfs>/etc/hostname,
// else the seed's node name (host.json, "pve"). curl serves fixed content
// for the URLs Phoenix fetches (Smallstep's apt key, *.img cloud images,
// *.run NVIDIA installers) and 404 for any other. virt-customize appends a
// line per operation to the image, so a customised image differs from the
// download byte for byte. seedNodeFiles writes the host files a fresh PVE 8
// node has that setup reads, where no other seed has.

import fs from 'node:fs';
import path from 'node:path';

import { atomicWrite, readHost, readJson, ToolExit, withStateLock } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';

interface NodeState {
  timezone?: string;
  curl_partial?: string[];
  virt_customize_fail?: string;
}

const FRESH_TIMEZONE = 'UTC';
const nodeFile = (root: string) => path.join(root, 'host-node.json');
const imagesFile = (root: string) => path.join(root, 'host-images.json');

export function loadNode(root: string): NodeState {
  return readJson<NodeState>(nodeFile(root), {});
}

export function saveNode(root: string, state: NodeState): void {
  atomicWrite(nodeFile(root), `${JSON.stringify(state, null, 2)}\n`);
}

/** What virt-customize did to each image path. */
export function imageCustomisations(root: string): Record<string, string[]> {
  return readJson<Record<string, string[]>>(imagesFile(root), {});
}

// ---------------------------------------------------------------- the fresh node's files

export const FRESH_OS_RELEASE = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`;

export function freshHosts(node: string, ip: string): string {
  return `127.0.0.1 localhost.localdomain localhost
${ip} ${node}.local ${node}

# The following lines are desirable for IPv6 capable hosts

::1     ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
ff02::3 ip6-allhosts
`;
}

/** Host files of a fresh PVE 8 node (path → content), for the seed. */
export function freshNodeFiles(node: string, ip: string): Record<string, string | Buffer> {
  return {
    '/etc/os-release': FRESH_OS_RELEASE,
    '/etc/hostname': `${node}\n`,
    '/etc/hosts': freshHosts(node, ip),
    '/etc/apt/sources.list': 'deb http://ftp.debian.org/debian bookworm main contrib\n\ndeb http://ftp.debian.org/debian bookworm-updates main contrib\n\n# security updates\ndeb http://security.debian.org bookworm-security main contrib\n',
    '/etc/apt/sources.list.d/pve-enterprise.list': 'deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n',
    '/etc/apt/sources.list.d/ceph.list': 'deb https://enterprise.proxmox.com/debian/ceph-quincy bookworm enterprise\n',
    // A binary OpenPGP keyring on a real node; its bytes are never read.
    '/etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg': Buffer.from([0x99, 0x02, 0x0d, 0x04, 0x63, 0x70, 0x68, 0x78]),
  };
}

/** Write the fresh node's files that are missing (nothing that exists is touched). */
export function seedNodeFiles(root: string, hostRoot: string): void {
  const host = readHost(root);
  for (const [file, content] of Object.entries(freshNodeFiles(host.node, host.ip))) {
    const target = onHostRoot(hostRoot, file);
    if (fs.existsSync(target)) continue;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content, { mode: 0o644 });
  }
  fs.mkdirSync(onHostRoot(hostRoot, '/etc/apt/keyrings'), { recursive: true });
}

// ---------------------------------------------------------------- timedatectl

function validZone(zone: string): boolean {
  if (!/^[A-Za-z0-9_+/-]+$/.test(zone) || zone.includes('..')) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function runTimedatectl(ctx: HostToolContext): void {
  const props: string[] = [];
  let value = false;
  const words: string[] = [];
  for (let i = 0; i < ctx.argv.length; i++) {
    const a = ctx.argv[i]!;
    if (a === '-p' || a === '--property') props.push(...(ctx.argv[++i] ?? '').split(','));
    else if (a.startsWith('--property=')) props.push(...a.slice('--property='.length).split(','));
    else if (/^-p./.test(a)) props.push(...a.slice(2).split(','));
    else if (a === '--value') value = true;
    else if (a === '--no-pager' || a === '--no-ask-password') continue;
    else if (a.startsWith('-')) throw new ToolExit(1, `timedatectl: unrecognized option '${a}'\n`);
    else words.push(a);
  }
  const [verb = 'status', ...rest] = words;
  const zone = loadNode(ctx.root).timezone ?? FRESH_TIMEZONE;
  const now = new Date();
  switch (verb) {
    case 'status':
      ctx.out(`               Local time: ${now.toUTCString()}\n           Universal time: ${now.toUTCString()}\n                Time zone: ${zone}\nSystem clock synchronized: yes\n              NTP service: active\n          RTC in local TZ: no\n`);
      return;
    case 'show': {
      const all: Record<string, string> = { Timezone: zone, LocalRTC: 'no', CanNTP: 'yes', NTP: 'yes', NTPSynchronized: 'yes', TimeUSec: now.toUTCString(), RTCTimeUSec: now.toUTCString() };
      const keys = props.length > 0 ? props : Object.keys(all);
      for (const key of keys) {
        if (!Object.hasOwn(all, key)) continue;
        ctx.out(value ? `${all[key]}\n` : `${key}=${all[key]}\n`);
      }
      return;
    }
    case 'set-timezone': {
      const wanted = rest[0];
      if (wanted === undefined) throw new ToolExit(1, 'Too few arguments.\n');
      if (rest.length > 1) throw new ToolExit(1, 'Too many arguments.\n');
      if (!validZone(wanted)) throw new ToolExit(1, `Failed to set time zone: Invalid or not installed time zone '${wanted}'\n`);
      withStateLock(ctx.root, () => saveNode(ctx.root, { ...loadNode(ctx.root), timezone: wanted }));
      return;
    }
    case 'list-timezones':
      ctx.out(`${Intl.supportedValuesOf('timeZone').join('\n')}\n`);
      return;
    default:
      throw new ToolExit(1, `Unknown command verb ${verb}.\n`);
  }
}

// ---------------------------------------------------------------- hostnamectl

function currentName(ctx: HostToolContext): string {
  try {
    const text = fs.readFileSync(onHostRoot(ctx.hostRoot, '/etc/hostname'), 'utf8').trim();
    if (text !== '') return text;
  } catch {
    // no /etc/hostname: the seed's node name
  }
  return readHost(ctx.root).node;
}

export function runHostnamectl(ctx: HostToolContext): void {
  const words = ctx.argv.filter((a) => !a.startsWith('-'));
  for (const a of ctx.argv) if (a.startsWith('-') && !['--static', '--transient', '--pretty', '--no-ask-password'].includes(a)) throw new ToolExit(1, `hostnamectl: unrecognized option '${a}'\n`);
  const [verb = 'status', ...rest] = words;
  const name = currentName(ctx);
  switch (verb) {
    case 'status':
      ctx.out(` Static hostname: ${name}\n       Icon name: computer-server\n         Chassis: server\nOperating System: Debian GNU/Linux 12 (bookworm)\n          Kernel: Linux 6.8.12-4-pve\n    Architecture: x86-64\n`);
      return;
    case 'hostname':
    case 'set-hostname': {
      if (rest.length === 0 && verb === 'hostname') {
        ctx.out(`${name}\n`);
        return;
      }
      if (rest.length !== 1) throw new ToolExit(1, rest.length === 0 ? 'Too few arguments.\n' : 'Too many arguments.\n');
      const wanted = rest[0]!;
      if (!/^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9-]{1,63})*$/i.test(wanted)) throw new ToolExit(1, `Invalid static hostname '${wanted}'\n`);
      const file = onHostRoot(ctx.hostRoot, '/etc/hostname');
      fs.mkdirSync(path.dirname(file), { recursive: true });
      atomicWrite(file, `${wanted}\n`);
      return;
    }
    default:
      throw new ToolExit(1, `Unknown command verb ${verb}.\n`);
  }
}

// ---------------------------------------------------------------- curl

export const SMALLSTEP_KEY_TEXT = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ1NpbWhvc3QgU21hbGxzdGVwIHRlc3Qga2V5IChub3QgYSByZWFsIGtleSkK\n=sim0\n-----END PGP PUBLIC KEY BLOCK-----\n';

/** A cloud image placeholder: a qcow2 magic and 4 KiB of bytes that depend only on the URL. */
export function imageContent(url: string): Buffer {
  const data = Buffer.alloc(4096);
  Buffer.from('QFI\xfb\x00\x00\x00\x03', 'latin1').copy(data, 0);
  const tag = Buffer.from(`simhost cloud image ${url}\n`);
  for (let i = 8; i < data.length; i++) data[i] = tag[i % tag.length]!;
  return data;
}

function contentFor(url: string): Buffer | undefined {
  const bare = url.replace(/[?#].*$/, '');
  if (/^https:\/\/packages\.smallstep\.com\/keys\/apt\/repo-signing-key\.gpg$/.test(bare)) return Buffer.from(SMALLSTEP_KEY_TEXT);
  if (/^https?:\/\/.+\.img$/.test(bare)) return imageContent(bare);
  if (/^https?:\/\/.+\.run$/.test(bare)) return Buffer.from(`#!/usr/bin/env bash\nexec nvidia-runfile --url '${url.replace(/'/g, "'\\''")}' "$@"\n`);
  return undefined;
}

export function runCurl(ctx: HostToolContext): void {
  let output: string | undefined;
  let fail = false;
  let silent = false;
  let showError = false;
  const urls: string[] = [];
  for (let i = 0; i < ctx.argv.length; i++) {
    const a = ctx.argv[i]!;
    if (a === '-o' || a === '--output') output = ctx.argv[++i];
    else if (a.startsWith('--output=')) output = a.slice('--output='.length);
    else if (a === '--fail') fail = true;
    else if (a === '--silent') silent = true;
    else if (a === '--show-error') showError = true;
    else if (a === '--location') continue;
    else if (a === '--retry' || a === '--max-time' || a === '--connect-timeout') i++;
    else if (/^-[a-zA-Z]+$/.test(a)) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        if (c === 'f') fail = true;
        else if (c === 's') silent = true;
        else if (c === 'S') showError = true;
        else if (c === 'L') continue;
        else if (c === 'o') {
          output = a.slice(j + 1) || ctx.argv[++i];
          break;
        } else throw new ToolExit(2, `curl: option ${a}: is unknown\ncurl: try 'curl --help' or 'curl --manual' for more information\n`);
      }
    } else if (a.startsWith('-')) throw new ToolExit(2, `curl: option ${a}: is unknown\ncurl: try 'curl --help' or 'curl --manual' for more information\n`);
    else urls.push(a);
  }
  const say = (text: string) => (!silent || showError ? text : '');
  if (urls.length === 0) throw new ToolExit(2, "curl: no URL specified!\ncurl: try 'curl --help' or 'curl --manual' for more information\n");
  if (output === undefined && ctx.argv.some((a) => a === '-o' || a === '--output')) throw new ToolExit(2, "curl: option -o: requires parameter\n");
  const url = urls[0]!;
  const content = contentFor(url);
  if (content === undefined) {
    if (fail) throw new ToolExit(22, say('curl: (22) The requested URL returned error: 404\n'));
    const page = '<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n';
    if (output === undefined) ctx.out(page);
    else writeOutput(output, Buffer.from(page), say);
    return;
  }
  const partial = (loadNode(ctx.root).curl_partial ?? []).some((s) => url.includes(s));
  const sent = partial ? content.subarray(0, Math.floor(content.length / 2)) : content;
  if (output === undefined) ctx.out(sent.toString('latin1'));
  else writeOutput(output, sent, say);
  if (partial) throw new ToolExit(18, say(`curl: (18) transfer closed with ${content.length - sent.length} bytes remaining to read\n`));
}

function writeOutput(file: string, data: Buffer, say: (text: string) => string): void {
  try {
    fs.writeFileSync(file, data);
  } catch (err) {
    throw new ToolExit(23, say(`Warning: Failed to open the file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message}\ncurl: (23) Failure writing output to destination\n`));
  }
}

// ---------------------------------------------------------------- virt-customize

export function runVirtCustomize(ctx: HostToolContext): void {
  const images: string[] = [];
  const operations: string[] = [];
  for (let i = 0; i < ctx.argv.length; i++) {
    const a = ctx.argv[i]!;
    const next = () => {
      const v = ctx.argv[++i];
      if (v === undefined) throw new ToolExit(1, `virt-customize: option '${a}' requires an argument\nTry 'virt-customize --help' or consult virt-customize(1) for more information.\n`);
      return v;
    };
    if (a === '-a' || a === '--add') images.push(next());
    else if (a === '--install' || a === '--run-command' || a === '--firstboot-command' || a === '--mkdir' || a === '--timezone' || a === '--hostname') operations.push(`${a} ${next()}`);
    else if (a === '-q' || a === '--quiet' || a === '-v' || a === '--verbose' || a === '-x' || a === '--no-network' || a === '--network') continue;
    else throw new ToolExit(1, `virt-customize: unknown option '${a}'\nTry 'virt-customize --help' or consult virt-customize(1) for more information.\n`);
  }
  if (images.length === 0) throw new ToolExit(1, "virt-customize: error: you must specify at least one -a or -d option.\n\nIf reporting bugs, run virt-customize with debugging enabled and include the complete output:\n\n  virt-customize -v -x [...]\n");
  const quiet = ctx.argv.includes('-q') || ctx.argv.includes('--quiet');
  for (const image of images) {
    if (!fs.existsSync(image)) {
      throw new ToolExit(1, `virt-customize: error: libguestfs error: could not create appliance through libvirt.\n\nqemu-img: Could not open '${image}': Could not open '${image}': No such file or directory\n\nIf reporting bugs, run virt-customize with debugging enabled and include the complete output:\n\n  virt-customize -v -x [...]\n`);
    }
  }
  const failure = loadNode(ctx.root).virt_customize_fail;
  if (!quiet) ctx.out('[   0.0] Examining the guest ...\n[   9.8] Setting a random seed\n[   9.9] Setting the machine ID in /etc/machine-id\n');
  withStateLock(ctx.root, () => {
    const done = imageCustomisations(ctx.root);
    for (const image of images) {
      const key = path.resolve(image);
      for (const op of operations) {
        if (!quiet) ctx.out(`[  10.0] ${op.startsWith('--install') ? `Installing packages: ${op.slice(10).split(',').join(' ')}` : `Running: ${op.replace(/^--[a-z-]+ /, '')}`}\n`);
        fs.appendFileSync(image, `\nvirt-customize ${op}\n`);
        (done[key] ??= []).push(op);
        if (failure !== undefined) {
          atomicWrite(imagesFile(ctx.root), `${JSON.stringify(done, null, 2)}\n`);
          throw new ToolExit(1, `virt-customize: error: ${failure}\n\nIf reporting bugs, run virt-customize with debugging enabled and include the complete output:\n\n  virt-customize -v -x [...]\n`);
        }
      }
    }
    atomicWrite(imagesFile(ctx.root), `${JSON.stringify(done, null, 2)}\n`);
  });
  if (!quiet) ctx.out('[  40.5] Finishing off\n');
}
