// provision_cloud_template on the simulated node: the template is made once
// and a second run does nothing; a download cut half way leaves nothing a
// later run would take for the image; a failed customisation leaves the
// cached download clean and no working copy; a VM the tool left unfinished
// is made again, any other VM under the id is refused.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { imageContent, imageCustomisations, saveNode } from '../simhost/hostsvc/node.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { CACHE_DIR, IMAGE_URL } from '../../lib/hypervisor/cloud-template.mts';

const host = createSimHost();
const work = tmpDir('phoenix-cloud-template-');
const SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', 'provision_cloud_template.mjs');
const cacheDir = path.join(host.stateDir, 'hostfs', CACHE_DIR);
const cached = path.join(cacheDir, path.basename(IMAGE_URL));
const ARGS = ['--vmid', '9100', '--storage-pool', 'local-lvm', '--bridge', 'vmbr0'];
let env: Record<string, string> = {};

function fresh(): void {
  host.reset();
  host.clearCalls();
  env = { ...host.env, PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'), MAIN_LOG_FILE: path.join(work, 'phoenix.log') };
  delete env.PHOENIX_DRY_RUN;
  delete env.PHOENIX_HOST_ROOT;
}

function provision(...args: string[]) {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

const shown = (calls: CallRecord[]) => calls.map((c) => `${c.tool} ${c.argv.join(' ')}`);
const changing = (calls: CallRecord[]) =>
  calls.filter((c) => ['apt-get', 'curl', 'virt-customize'].includes(c.tool) || (c.tool === 'qm' && !['config', 'status', 'list'].includes(c.argv[0] ?? '')));
const cacheFiles = () => (fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir).sort() : []);

test('command line: --help, a missing required flag, an unknown option', () => {
  fresh();
  const help = provision('--help');
  assert.is(help.code, 0);
  assert.match(help.stdout, /--storage-pool/);
  const missing = provision('--vmid', '9100', '--bridge', 'vmbr0');
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /--storage-pool is required/);
  const unknown = provision(...ARGS, '--force');
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /force/);
  assert.equal(host.calls(), []);
});

test('dry-run: every step planned, nothing changed', () => {
  fresh();
  const r = provision(...ARGS, '--dry-run');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /DRY-RUN: would run: qm template 9100/);
  assert.equal(shown(changing(host.calls())), []);
  assert.equal(cacheFiles(), []);
  assert.is(host.readConfig('qemu', 9100), undefined);
});

test('made once: a template with the customised image; the second run does nothing', () => {
  fresh();
  const r = provision(...ARGS);
  assert.is(r.code, 0, r.stderr);
  const config = host.readConfigText('qemu', 9100) ?? '';
  assert.match(config, /^template: 1$/m);
  assert.match(config, /^scsi0: local-lvm:base-9100-disk-0/m);
  assert.match(config, /^ide2: local-lvm:vm-9100-cloudinit,media=cdrom$/m);
  assert.match(config, /^net0: virtio=[0-9A-F:]+,bridge=vmbr0$/m);
  // The cached download is untouched; only the (now removed) copy was customised.
  assert.equal(cacheFiles(), [path.basename(IMAGE_URL)]);
  assert.ok(fs.readFileSync(cached).equals(imageContent(IMAGE_URL)));
  const customised = Object.entries(imageCustomisations(host.stateDir));
  assert.is(customised.length, 1);
  assert.is.not(customised[0]![0], cached);
  assert.equal(customised[0]![1], ['--install qemu-guest-agent,nfs-common', '--run-command systemctl enable qemu-guest-agent']);

  host.clearCalls();
  const again = provision(...ARGS);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stderr, /already a template; nothing changed/);
  assert.equal(shown(changing(host.calls())), []);
});

test('a download cut half way: nothing kept; the next run downloads the whole image', () => {
  fresh();
  saveNode(host.stateDir, { curl_partial: ['noble'] });
  const r = provision(...ARGS);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /curl exit 18/);
  assert.equal(cacheFiles(), []);
  assert.is(host.readConfig('qemu', 9100), undefined);
  saveNode(host.stateDir, {});
  host.clearCalls();
  const again = provision(...ARGS);
  assert.is(again.code, 0, again.stderr);
  assert.is(host.calls('curl').length, 1, 'downloaded again, not reused');
  assert.ok(fs.readFileSync(cached).equals(imageContent(IMAGE_URL)));
});

test('a failed customisation: the cached image stays clean, no copy left, no VM; the next run reuses the download', () => {
  fresh();
  saveNode(host.stateDir, { virt_customize_fail: "'apt-get -y install qemu-guest-agent nfs-common' failed" });
  const r = provision(...ARGS);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /virt-customize: error/);
  assert.equal(cacheFiles(), [path.basename(IMAGE_URL)]);
  assert.ok(fs.readFileSync(cached).equals(imageContent(IMAGE_URL)), 'the cached download was not customised');
  assert.not.ok(Object.hasOwn(imageCustomisations(host.stateDir), cached));
  assert.is(host.readConfig('qemu', 9100), undefined);
  saveNode(host.stateDir, {});
  host.clearCalls();
  assert.is(provision(...ARGS).code, 0);
  assert.equal(host.calls('curl'), []);
  assert.match(host.readConfigText('qemu', 9100) ?? '', /^template: 1$/m);
});

test('a VM the tool left unfinished is made again; a foreign VM under the id is refused and untouched', () => {
  fresh();
  host.injectFailure({ tool: 'qm', argv: ['set', '9100', '--ide2'], times: 1, exit: 255, stderr: "storage 'local-lvm' is busy\n" });
  assert.is(provision(...ARGS).code, 255);
  assert.not.match(host.readConfigText('qemu', 9100) ?? '', /^template: 1$/m);
  assert.ok(host.readConfig('qemu', 9100));
  const again = provision(...ARGS);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stderr, /did not finish .*removing it and making it again/);
  assert.match(host.readConfigText('qemu', 9100) ?? '', /^template: 1$/m);

  fresh();
  assert.is(host.run('qm', ['create', '9100', '--name', 'operators-vm', '--memory', '512']).code, 0);
  const before = host.readConfigText('qemu', 9100);
  host.clearCalls();
  const refused = provision(...ARGS);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /VM 9100 exists and is not a template \(name 'operators-vm'\); it was not made by this tool/);
  assert.is(host.readConfigText('qemu', 9100), before);
  assert.equal(shown(changing(host.calls())), []);
});

test.run();
