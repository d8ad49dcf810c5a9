// The kernel and GPU steps of `phoenix setup` (VFIO, the NVIDIA host driver,
// the GPU init unit), run as scripts on the simulated host
// (test/simhost/hostsvc/kernel.mts): the VFIO/NVIDIA exclusivity refused
// before any change, no GPU → skipped without apt or curl, the driver
// install stopping for a reboot (exit 10, REBOOT_REQUIRED_EXIT) and staying stopped until the
// host reboots, the boot loader's files kept byte for byte outside
// Phoenix's words, second runs and dry-runs that change nothing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { ensureSimNode, loadKernel, NODE_PCI, NVIDIA_RTX_2070_SUPER, rebootSimHost, setKernelState, type KernelState } from '../simhost/hostsvc/kernel-state.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { validateGpu, vfioConfText, vfioModules, withCmdlineWords } from '../../lib/hypervisor/vfio.mts';
import { REBOOT_REQUIRED_EXIT } from '../../lib/hypervisor/setup-step.mts';
import { treeSnapshot } from '../helpers/host-tree.mts';

const host = createSimHost();
const work = tmpDir('phoenix-gpu-');
const etcDir = path.join(work, 'etc');
const hostfs = path.join(host.stateDir, 'hostfs');
const onHost = (p: string) => path.join(hostfs, p);
const VERSION = '550.78';
const RUNFILE_URL = `https://us.download.nvidia.com/XFree86/Linux-x86_64/${VERSION}/NVIDIA-Linux-x86_64-${VERSION}.run`;
const FILE = 'phoenix_hypervisor_config.json';
const GPU_NODE = [...NODE_PCI, ...NVIDIA_RTX_2070_SUPER];

function readExample(file: string): any {
  return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', file), 'utf8'));
}

function writeManifests(edit: (hv: any) => void): Record<string, string> {
  fs.mkdirSync(etcDir, { recursive: true });
  const hv = readExample(FILE);
  delete hv.vfio;
  delete hv.nvidia_driver;
  edit(hv);
  const files: Record<string, unknown> = {
    [FILE]: hv,
    'phoenix_lxc_configs.json': readExample('phoenix_lxc_configs.json'),
    'phoenix_vm_configs.json': readExample('phoenix_vm_configs.json'),
    'phoenix_stacks_config.json': readExample('phoenix_stacks_config.json'),
    'certificate-manifest.json': readExample('certificate-manifest.json'),
  };
  for (const [name, doc] of Object.entries(files)) fs.writeFileSync(path.join(etcDir, name), `${JSON.stringify(doc, null, 2)}\n`);
  return {
    HYPERVISOR_CONFIG_FILE: path.join(etcDir, FILE),
    LXC_CONFIG_FILE: path.join(etcDir, 'phoenix_lxc_configs.json'),
    VM_CONFIG_FILE: path.join(etcDir, 'phoenix_vm_configs.json'),
    STACKS_CONFIG_FILE: path.join(etcDir, 'phoenix_stacks_config.json'),
    CERTIFICATE_MANIFEST_FILE: path.join(etcDir, 'certificate-manifest.json'),
  };
}

let env: Record<string, string> = {};

/** A fresh node with this hardware and this manifest. */
function fresh(kernel: Partial<KernelState>, edit: (hv: any) => void): void {
  host.reset();
  if (Object.keys(kernel).length > 0) setKernelState(host.stateDir, kernel);
  ensureSimNode(host.stateDir, { ...host.env, PHOENIX_HOST_ROOT: '' });
  host.clearCalls();
  env = { ...host.env, ...writeManifests(edit), PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'), MAIN_LOG_FILE: path.join(work, 'phoenix.log') };
  delete env.PHOENIX_DRY_RUN;
  delete env.PHOENIX_HOST_ROOT;
}

const withDriver = (hv: any) => (hv.nvidia_driver = { install: true, version: VERSION, runfile_url: RUNFILE_URL });
const withVfio = (ids: string[]) => (hv: any) => (hv.vfio = { device_ids: ids });

interface ScriptRun {
  code: number;
  out: string;
}

function script(name: string, args: string[] = []): ScriptRun {
  const file = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', `${name}.mjs`);
  const r = spawnSync(process.execPath, [file, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 128, out: `${r.stdout}${r.stderr}` };
}

const VFIO = 'hypervisor_feature_configure_vfio';
const NVIDIA = 'hypervisor_feature_install_nvidia';
const INIT = 'hypervisor_feature_initialize_nvidia_gpus';

const MUTATING = new Set(['apt-get', 'curl', 'nvidia-runfile', 'update-grub', 'update-initramfs', 'depmod', 'rmmod', 'modprobe']);
function changing(calls: CallRecord[]): string[] {
  return calls
    .filter((c) => MUTATING.has(c.tool) || (c.tool === 'proxmox-boot-tool' && c.argv[0] === 'refresh') || (c.tool === 'systemctl' && !['is-active', 'is-enabled', 'show', 'status'].includes(c.argv[0] ?? '')))
    .map((c) => [c.tool, ...c.argv].join(' '));
}

/** Every file under the host root (for "nothing changed"); /proc is the kernel's. */
function snapshot(): Map<string, string> {
  return treeSnapshot(hostfs, { skip: (rel) => rel === 'proc' });
}

// ---------------------------------------------------------------- pure

test('validateGpu: an NVIDIA device for vfio-pci and the NVIDIA host driver are refused together, with both paths', () => {
  const issues = validateGpu({ domain_name: 'x', vfio: { device_ids: ['8086:a36d', '10DE:1e84'] }, nvidia_driver: { install: true, version: VERSION, runfile_url: RUNFILE_URL } }, FILE);
  assert.equal(issues.map((i) => i.pointer), ['/vfio/device_ids/1', '/nvidia_driver/install']);
  assert.match(issues[0]!.message, /10de:1e84 is handed to vfio-pci/);
  // Either alone is fine; so is a disabled vfio section, or a non-NVIDIA device.
  assert.equal(validateGpu({ domain_name: 'x', vfio: { device_ids: ['10de:1e84'] }, nvidia_driver: { install: false } }, FILE), []);
  assert.equal(validateGpu({ domain_name: 'x', vfio: { enabled: false, device_ids: ['10de:1e84'] }, nvidia_driver: { install: true, version: VERSION, runfile_url: RUNFILE_URL } }, FILE), []);
  assert.equal(validateGpu({ domain_name: 'x', vfio: { device_ids: ['8086:a36d'] }, nvidia_driver: { install: true, version: VERSION, runfile_url: RUNFILE_URL } }, FILE), []);
  // The driver's own keys.
  const driver = validateGpu({ domain_name: 'x', nvidia_driver: { install: true, runfile_url: 'https://example.org/NVIDIA-Linux-x86_64-535.54.run' } }, FILE);
  assert.equal(driver.map((i) => i.pointer), ['/nvidia_driver/version']);
  const mismatch = validateGpu({ domain_name: 'x', nvidia_driver: { install: true, version: VERSION, runfile_url: 'https://example.org/NVIDIA-Linux-x86_64-535.54.run' } }, FILE);
  assert.match(mismatch[0]!.message, /runfile is driver 535\.54, but nvidia_driver\.version is 550\.78/);
});

test('vfio texts: ids comma-separated with softdeps, vfio_virqfd only before 6.2, cmdline words appended once', () => {
  const conf = vfioConfText(['10de:1e84', '10de:10f8']);
  assert.ok(conf.split('\n').includes('options vfio-pci ids=10de:1e84,10de:10f8'), conf);
  assert.ok(conf.split('\n').includes('softdep nouveau pre: vfio-pci'));
  assert.ok(conf.split('\n').includes('softdep nvidia pre: vfio-pci'));
  assert.not.match(conf, /^blacklist nvidia$/m);
  assert.equal(vfioModules('6.8.12-4-pve'), ['vfio', 'vfio_iommu_type1', 'vfio_pci']);
  assert.equal(vfioModules('6.1.0-18-amd64'), ['vfio', 'vfio_iommu_type1', 'vfio_pci', 'vfio_virqfd']);
  assert.equal(vfioModules('5.15.131-2-pve'), ['vfio', 'vfio_iommu_type1', 'vfio_pci', 'vfio_virqfd']);
  assert.is(withCmdlineWords('root=ZFS=rpool/ROOT/pve-1 boot=zfs  quiet\n', ['intel_iommu=on', 'iommu=pt']), 'root=ZFS=rpool/ROOT/pve-1 boot=zfs  quiet intel_iommu=on iommu=pt\n');
  assert.is(withCmdlineWords('a iommu=pt\n', ['intel_iommu=on', 'iommu=pt']), 'a iommu=pt intel_iommu=on\n');
  assert.is(withCmdlineWords('a intel_iommu=on iommu=pt', ['intel_iommu=on', 'iommu=pt']), 'a intel_iommu=on iommu=pt');
});

// ---------------------------------------------------------------- the exclusivity, on the host

test('VFIO of an NVIDIA device + nvidia_driver.install: both scripts refuse with both JSON paths, nothing changes', () => {
  fresh({ pci: GPU_NODE }, (hv) => {
    withVfio(['10de:1e84'])(hv);
    withDriver(hv);
  });
  const before = snapshot();
  for (const name of [VFIO, NVIDIA]) {
    const r = script(name);
    assert.is.not(r.code, 0, r.out);
    assert.ok(r.out.includes('/vfio/device_ids/0'), r.out);
    assert.ok(r.out.includes('/nvidia_driver/install'), r.out);
  }
  assert.equal(changing(host.calls()), []);
  assert.equal(snapshot(), before);
});

// ---------------------------------------------------------------- no GPU

test('no NVIDIA GPU: driver and init steps are skipped with the reason, no apt-get or curl', () => {
  fresh({}, withDriver);
  let r = script(NVIDIA);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /skipped, no NVIDIA GPU present/);
  r = script(INIT);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /skipped, no NVIDIA GPU present/);
  assert.equal(host.calls().filter((c) => c.tool === 'apt-get' || c.tool === 'curl'), []);
  assert.equal(changing(host.calls()), []);
  // install false: skipped before even looking.
  fresh({}, (hv) => (hv.nvidia_driver = { install: false }));
  r = script(NVIDIA);
  assert.match(r.out, /skipped, nvidia_driver\.install is not true/);
  assert.equal(host.calls('lspci'), []);
});

// ---------------------------------------------------------------- the driver install and the reboot

test('driver install stops for a reboot (exit 10); before the reboot it stops again without reinstalling; after it nothing changes', () => {
  fresh({ pci: GPU_NODE }, withDriver);
  assert.ok(loadKernel(host.stateDir).loaded.includes('nouveau'));

  // dry-run first: nothing written, nothing run that changes the host.
  const before = snapshot();
  let r = script(NVIDIA, ['--dry-run']);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /would then need a reboot/);
  assert.equal(changing(host.calls()), []);
  assert.equal(snapshot(), before);
  host.clearCalls();

  r = script(NVIDIA, ['--no-reboot']);
  assert.is(r.code, REBOOT_REQUIRED_EXIT, r.out);
  assert.match(r.out, /must reboot before setup can go on: NVIDIA driver 550\.78 is installed and loads at the next boot/);
  assert.match(r.out, /--no-reboot is no longer needed/);
  const calls = changing(host.calls());
  assert.ok(calls.includes('apt-get install -y -q proxmox-headers-6.8.12-4-pve build-essential dkms pkg-config'), calls.join('\n'));
  assert.ok(calls.some((c) => /^nvidia-runfile --url \S+NVIDIA-Linux-x86_64-550\.78\.run --silent --accept-license --dkms /.test(c)), calls.join('\n'));
  assert.ok(calls.includes('update-initramfs -u -k all'));
  assert.not.ok(host.calls().some((c) => c.tool === 'reboot'));
  assert.is(fs.readFileSync(onHost('/etc/modprobe.d/phoenix-blacklist-nouveau.conf'), 'utf8').includes('blacklist nouveau\n'), true);
  const runfile = onHost(`/var/cache/phoenix/nvidia/NVIDIA-Linux-x86_64-${VERSION}.run`);
  assert.ok(fs.existsSync(runfile));
  assert.equal(fs.readdirSync(path.dirname(runfile)).filter((f) => f.endsWith('.part')), []);
  assert.is(loadKernel(host.stateDir).nvidia.pending, VERSION);
  assert.is(loadKernel(host.stateDir).nvidia.dkms, true);

  // Before the reboot: the same stop, nothing reinstalled or downloaded.
  host.clearCalls();
  r = script(NVIDIA);
  assert.is(r.code, REBOOT_REQUIRED_EXIT, r.out);
  assert.match(r.out, /NVIDIA driver 550\.78 is installed and loads at the next boot/);
  assert.equal(changing(host.calls()), []);

  rebootSimHost(host.stateDir, { ...host.env, PHOENIX_HOST_ROOT: '' });
  const booted = loadKernel(host.stateDir);
  assert.is(booted.nvidia.installed, VERSION);
  assert.ok(booted.loaded.includes('nvidia') && !booted.loaded.includes('nouveau'), booted.loaded.join(' '));
  host.clearCalls();
  r = script(NVIDIA);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /already in place; nothing changed/);
  assert.equal(changing(host.calls()), []);

  // Step 8 now has a driver: the unit once, then nothing.
  r = script(INIT);
  assert.is(r.code, 0, r.out);
  const unit = fs.readFileSync(onHost('/etc/systemd/system/nvidia-gpu-init.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/bin\/nvidia-smi$/m);
  assert.match(unit, /^Before=pve-guests\.service$/m);
  assert.ok(changing(host.calls()).includes('systemctl enable nvidia-gpu-init.service'));
  host.clearCalls();
  r = script(INIT);
  assert.match(r.out, /already in place/);
  assert.equal(changing(host.calls()), []);
  // A unit edited by hand is put back (content, not existence, decides).
  fs.appendFileSync(onHost('/etc/systemd/system/nvidia-gpu-init.service'), 'ExecStartPost=/bin/false\n');
  r = script(INIT);
  assert.ok(changing(host.calls()).includes('systemctl daemon-reload'), r.out);
  assert.not.match(fs.readFileSync(onHost('/etc/systemd/system/nvidia-gpu-init.service'), 'utf8'), /ExecStartPost/);
});

test('driver install: a failing installer (no headers package of that name) falls back to pve-headers, then fails loudly', () => {
  fresh({ pci: GPU_NODE, release: '6.8.4-2-pve' }, withDriver);
  const r = script(NVIDIA);
  assert.is.not(r.code, 0, r.out);
  assert.is.not(r.code, REBOOT_REQUIRED_EXIT, r.out);
  const apt = host.calls('apt-get').map((c) => c.argv.join(' '));
  assert.ok(apt.includes('install -y -q proxmox-headers-6.8.4-2-pve build-essential dkms pkg-config'), apt.join('\n'));
  assert.ok(apt.includes('install -y -q pve-headers-6.8.4-2-pve build-essential dkms pkg-config'), apt.join('\n'));
  assert.match(r.out, /Unable to locate package pve-headers-6\.8\.4-2-pve/);
  assert.equal(host.calls('nvidia-runfile'), []);
});

// ---------------------------------------------------------------- VFIO and the boot loader

const OPERATOR_GRUB = `# If you change this file, run 'update-grub' afterwards to update
GRUB_DEFAULT=0
GRUB_TIMEOUT=3   
GRUB_DISTRIBUTOR="Proxmox VE"
GRUB_CMDLINE_LINUX_DEFAULT="quiet mitigations=auto"
GRUB_CMDLINE_LINUX=""
# operator's note\r
`;

test('VFIO on GRUB: a drop-in Phoenix owns, /etc/default/grub byte for byte, modules and ids; second run changes nothing', () => {
  fresh({ pci: GPU_NODE }, withVfio(['10de:1e84', '10de:10f8']));
  fs.writeFileSync(onHost('/etc/default/grub'), OPERATOR_GRUB);
  fs.appendFileSync(onHost('/etc/modules'), 'loop\n');
  const modulesBefore = fs.readFileSync(onHost('/etc/modules'), 'utf8');

  let r = script(VFIO);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /reboot the host for this to take effect/);
  assert.is(fs.readFileSync(onHost('/etc/default/grub'), 'utf8'), OPERATOR_GRUB);
  assert.match(fs.readFileSync(onHost('/etc/default/grub.d/phoenix.cfg'), 'utf8'), /^GRUB_CMDLINE_LINUX_DEFAULT="\$GRUB_CMDLINE_LINUX_DEFAULT intel_iommu=on iommu=pt"$/m);
  const modules = fs.readFileSync(onHost('/etc/modules'), 'utf8');
  assert.ok(modules.startsWith(modulesBefore), modules);
  assert.match(modules, /# BEGIN phoenix: vfio modules\nvfio\nvfio_iommu_type1\nvfio_pci\n# END phoenix: vfio modules\n$/);
  assert.match(fs.readFileSync(onHost('/etc/modprobe.d/phoenix-vfio.conf'), 'utf8'), /^options vfio-pci ids=10de:1e84,10de:10f8$/m);
  assert.not.match(fs.readdirSync(onHost('/etc/modprobe.d')).map((f) => fs.readFileSync(onHost(`/etc/modprobe.d/${f}`), 'utf8')).join(''), /^blacklist nvidia$/m);
  const calls = changing(host.calls());
  assert.equal(calls, ['update-grub', 'update-initramfs -u -k all']);

  host.clearCalls();
  r = script(VFIO);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /already in place; nothing changed/);
  assert.equal(changing(host.calls()), []);

  // After the reboot the kernel runs with the IOMMU on and vfio-pci holds the GPU.
  rebootSimHost(host.stateDir, { ...host.env, PHOENIX_HOST_ROOT: '' });
  const cmdline = fs.readFileSync(onHost('/proc/cmdline'), 'utf8');
  assert.match(cmdline, / quiet mitigations=auto intel_iommu=on iommu=pt\n$/);
  const loaded = loadKernel(host.stateDir).loaded;
  assert.ok(loaded.includes('vfio_pci') && !loaded.includes('nouveau') && !loaded.includes('nvidia'), loaded.join(' '));
});

test('VFIO on systemd-boot (proxmox-boot-tool): /etc/kernel/cmdline keeps every byte, Phoenix words appended once; AMD gets iommu=pt', () => {
  fresh({ bootLoader: 'systemd-boot', cpuVendor: 'AuthenticAMD' }, withVfio(['10de:1e84']));
  fs.writeFileSync(onHost('/etc/kernel/cmdline'), 'root=ZFS=rpool/ROOT/pve-1 boot=zfs  quiet\n');
  let r = script(VFIO);
  assert.is(r.code, 0, r.out);
  assert.is(fs.readFileSync(onHost('/etc/kernel/cmdline'), 'utf8'), 'root=ZFS=rpool/ROOT/pve-1 boot=zfs  quiet iommu=pt\n', r.out);
  assert.not.ok(fs.existsSync(onHost('/etc/default/grub.d/phoenix.cfg')));
  assert.equal(changing(host.calls()), ['proxmox-boot-tool refresh', 'update-initramfs -u -k all']);
  host.clearCalls();
  r = script(VFIO);
  assert.equal(changing(host.calls()), []);
  assert.is(fs.readFileSync(onHost('/etc/kernel/cmdline'), 'utf8'), 'root=ZFS=rpool/ROOT/pve-1 boot=zfs  quiet iommu=pt\n');
});

test('VFIO: without the section, or disabled, skipped with the reason; dry-run changes nothing', () => {
  fresh({}, () => {});
  let r = script(VFIO);
  assert.match(r.out, /skipped, VFIO is not asked for: the manifest has no vfio section/);
  fresh({}, (hv) => (hv.vfio = { enabled: false, device_ids: ['10de:1e84'] }));
  r = script(VFIO);
  assert.match(r.out, /skipped, VFIO is not asked for: vfio\.enabled is false/);
  assert.equal(changing(host.calls()), []);

  fresh({}, withVfio(['10de:1e84']));
  const before = snapshot();
  r = script(VFIO, ['--dry-run']);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /change\(s\) planned/);
  assert.equal(changing(host.calls()), []);
  assert.equal(snapshot(), before);
  // The orphan variant: modules and nouveau only, no boot loader.
  r = script('hypervisor_feature_setup_vfio');
  assert.is(r.code, 0, r.out);
  assert.equal(changing(host.calls()), ['update-initramfs -u -k all']);
  assert.not.ok(fs.existsSync(onHost('/etc/default/grub.d/phoenix.cfg')));
  assert.not.ok(fs.existsSync(onHost('/etc/modprobe.d/phoenix-vfio.conf')));
});

test('driver upgrade: the loaded older driver is unloaded first (the installer refuses otherwise), then the same stop', () => {
  fresh({ pci: GPU_NODE, nvidia: { installed: '535.54.03' } }, withDriver);
  setKernelState(host.stateDir, { loaded: [...loadKernel(host.stateDir).loaded, 'nvidia', 'nvidia_modeset', 'nvidia_drm', 'nvidia_uvm'] });
  const r = script(NVIDIA);
  assert.is(r.code, REBOOT_REQUIRED_EXIT, r.out);
  assert.match(r.out, /NVIDIA driver 535\.54\.03 is loaded; replacing it with 550\.78/);
  const calls = changing(host.calls());
  assert.ok(calls.indexOf('rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia') >= 0, calls.join('\n'));
  assert.ok(calls.indexOf('rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia') < calls.findIndex((c) => c.startsWith('nvidia-runfile')));
  assert.is(loadKernel(host.stateDir).nvidia.pending, VERSION);
});

test('the six scripts: --help on stdout with exit 0; an unknown flag exits 1', () => {
  for (const name of [VFIO, 'hypervisor_feature_setup_vfio', NVIDIA, INIT, 'hypervisor_feature_setup_apparmor', 'hypervisor_feature_fix_apparmor_tunables']) {
    const file = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', `${name}.mjs`);
    let r = spawnSync(process.execPath, [file, '--help'], { env, encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, name);
    assert.ok(r.stdout.startsWith(`Usage: ${name}.sh [HYPERVISOR_CONFIG_FILE]`), r.stdout);
    r = spawnSync(process.execPath, [file, '--bogus'], { env, encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 1, `${name}: ${r.stderr}`);
  }
  const help = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', `${NVIDIA}.mjs`), '--help'], { env, encoding: 'utf8' }).stdout;
  assert.match(help, /--no-reboot\s+accepted for compatibility; it changes nothing/);
});

test.after(() => host.dispose());
test.run();
