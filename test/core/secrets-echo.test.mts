// A secret echoed back by a failing tool never reaches an output unmasked.
// Each case runs a small Phoenix script (runMain, the real runner, log,
// Portainer client, certificate issuer, guest agent wrapper) as its own
// process on the simulated host, makes a tool or a Portainer answer repeat
// a secret, and then searches everything the run left behind: its stdout,
// its stderr, the log file (MAIN_LOG_FILE), the command record
// (PHOENIX_RECORD) and the in-memory record (recordedCommands()). Each case
// also checks that the failure itself was reported, so a case cannot pass
// by printing nothing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { CommandError, PhoenixError } from '../../lib/core/errors.mts';
import { addSecret, clearSecrets, redact } from '../../lib/core/redact.mts';

const host = createSimHost();
const work = tmpDir('phoenix-secrets-');
const hostRoot = path.join(work, 'hostfs');
const TEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst';

// The secrets, one per kind. None looks like a pattern: only registration can hide them.
const SECRETS = {
  portainer: 'Pt-admin-4e1f9c0b77aa',
  provisioner: 'prov-Zq81-ab5c2d3e',
  ca: 'ca-pass-Hw93kq1LmN0p',
  join: 'SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx',
  bearer: 'opaque-session-7Tq2wXy9Rv4',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRtaW4ifQ.c2lnbmF0dXJlLXBhcnQtZm9yLXRlc3Rz',
};
// A private key's body lines: what must not show even when only the tail of the output is quoted.
const KEY_LINES = [
  'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQ7c9yXk2ZPJm4Ua1',
  'hRZb2nqkKXw0vR8ZrU3YvS3wqEChRANCAAT0oBvH3m4xV2p8e1cJq9X7Lk0N2q4T',
  'x8Jr5mYpL0c1d2e3f4g5h6i7j8k9l0m1n2o3p4q5r6s7t8u9v0w1x2y3z4A5B6C7',
];
const KEY = ['-----BEGIN EC PRIVATE KEY-----', ...KEY_LINES, '-----END EC PRIVATE KEY-----'].join('\n');

function sim(tool: string, args: string[]): void {
  const r = host.run(tool, args);
  if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')}: ${r.stderr}`);
}

// CT 103 and VM 1001 running; the Portainer password file on the host.
sim('pct', ['create', '103', TEMPLATE, '--hostname', 'step-ca', '--storage', 'quickOS-lxc-disks', '--unprivileged', '1']);
sim('pct', ['start', '103']);
const image = host.run('pvesm', ['path', 'local:iso/noble-server-cloudimg-amd64.img']).stdout.trim();
sim('qm', ['create', '1001', '--name', 'manager', '--agent', 'enabled=1', '--scsi0', `quickOS-vm-disks:0,import-from=${image}`]);
sim('qm', ['start', '1001']);
const PORTAINER_FILE = '/etc/phoenix/secrets/portainer_admin_password';
const PROVISIONER_FILE = '/etc/phoenix/secrets/step_provisioner_password';
fs.mkdirSync(path.join(hostRoot, path.dirname(PORTAINER_FILE)), { recursive: true, mode: 0o700 });
fs.writeFileSync(path.join(hostRoot, PORTAINER_FILE), `${SECRETS.portainer}\n`, { mode: 0o600 });
fs.writeFileSync(path.join(hostRoot, PROVISIONER_FILE), `${SECRETS.provisioner}\n`, { mode: 0o600 });

// ---------------------------------------------------------------- a Portainer that repeats what it is sent

const portainer = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const answer = (status: number, value: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (req.url === '/api/users/admin/check') return answer(404, { message: 'No administrator account found inside the database' });
    if (req.url === '/api/users/admin/init') return answer(400, { message: `Invalid request payload ${body}`, details: `password ${JSON.parse(body).Password} is not allowed` });
    if (req.url === '/api/endpoints') return answer(403, { message: `Access denied for ${req.headers.authorization ?? ''}`, details: `session ${SECRETS.jwt}` });
    return answer(500, { message: `unexpected ${req.method} ${req.url}` });
  });
});
const portainerUrl = await new Promise<string>((resolve) => portainer.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(portainer.address() as { port: number }).port}`)));

// ---------------------------------------------------------------- the scripts

const lib = (file: string) => pathToFileURL(path.join(PROJECT_ROOT, 'lib', file)).href;
const DRIVER = path.join(work, 'secrets-driver.mjs');
fs.writeFileSync(
  DRIVER,
  `import fs from 'node:fs';
import { runMain } from '${lib('core/main.mjs')}';
import { run, query, recordedCommands } from '${lib('core/runner.mjs')}';
import { addSecret } from '${lib('core/redact.mjs')}';
import { PhoenixError } from '${lib('core/errors.mjs')}';
import { guestExec } from '${lib('pve/qm.mjs')}';
import { adminCredentials } from '${lib('portainer/password.mjs')}';
import { PortainerClient } from '${lib('portainer/client.mjs')}';
import { ensureAdmin, listEndpoints } from '${lib('portainer/api.mjs')}';
import { runStages } from '${lib('sync/engine.mjs')}';
import { issueCertificate } from '${lib('certificates/issue.mjs')}';

const S = JSON.parse(process.env.SECRETS_JSON);
const scenario = process.argv[2];
const hostFile = (p) => process.env.PHOENIX_HOST_ROOT + p;
const client = () => new PortainerClient({ baseUrl: process.env.PORTAINER_URL, attempts: 1, backoffMs: 1 });
const config = { hypervisor: { portainer_api: { admin_user: 'admin', admin_password_file: '${PORTAINER_FILE}' } }, paths: { hypervisor: '/dev/null' } };
const stage = (title, body) => ({ id: title, title, needs: [], after: [], describe: () => 'echo test', run: body });

await runMain('secrets-driver.sh', async (context) => {
  try {
    switch (scenario) {
      case 'portainer-sync-summary': {
        // The password file is read, Portainer repeats the password; sync prints its summary on stdout.
        const creds = adminCredentials(config, context.options);
        const report = await runStages([stage('Portainer admin', async () => ({ status: await ensureAdmin(client(), creds.user, creds.password) }))], { options: context.options });
        return report.exitCode;
      }
      case 'portainer-unregistered-body': {
        // A password nobody registered: the client masks what it sends before the answer comes back.
        await ensureAdmin(client(), 'admin', S.portainer);
        return 0;
      }
      case 'bearer-token': {
        await listEndpoints(client(), S.bearer);
        return 0;
      }
      case 'portainer-command-stderr': {
        adminCredentials(config, context.options);
        await run({ cmd: 'pct', args: ['exec', '103', '--', 'docker', 'secret', 'create', 'portainer_admin', '-'], input: S.portainer });
        return 0;
      }
      case 'provisioner-health': {
        const password = fs.readFileSync(hostFile('${PROVISIONER_FILE}'), 'utf8');
        addSecret(password.trim());
        const health = await query({ cmd: 'step', args: ['ca', 'health', '--ca-url', 'https://ca.internal.example.org:9000'], allowFailure: true });
        throw new PhoenixError('the CA does not answer: ' + (health.stderr.trim() || health.stdout.trim()).split('\\n').slice(-2).join(' | '));
      }
      case 'ca-password-init': {
        addSecret(S.ca);
        await run({ cmd: 'pct', args: ['exec', '103', '--', 'step', 'ca', 'init', '--password-file', '/root/.step/secrets/password'] });
        return 0;
      }
      case 'join-token-agent': {
        const token = S.join;
        addSecret(token);
        await guestExec('1001', ['xargs', '-r', 'docker', 'swarm', 'join', '--token'], { input: token, pollMs: 50 });
        return 0;
      }
      case 'join-token-pattern': {
        // Not registered: the token's own shape is enough.
        await run({ cmd: 'qm', args: ['guest', 'exec', '1001', '--', 'docker', 'swarm', 'join-token', 'worker'] });
        return 0;
      }
      case 'key-tail': {
        const dir = fs.mkdtempSync(process.env.PHOENIX_HOST_ROOT + '/issue-');
        const plan = { name: 'gw.internal.example.org', requestSans: [], validity: '720h', certFile: dir + '/c.crt', keyFile: dir + '/c.key', keyMode: 0o600 };
        const ca = { provisioner: 'admin', passwordFile: hostFile('${PROVISIONER_FILE}'), url: 'https://ca.internal.example.org:9000', rootFile: '/dev/null' };
        await issueCertificate(plan, ca, undefined, { resolve: async () => undefined });
        return 0;
      }
      case 'key-full': {
        await run({ cmd: 'pct', args: ['exec', '103', '--', 'cat', '/etc/ssl/private/gw.key'] });
        return 0;
      }
      case 'passthrough': {
        // A child whose output is passed through (application scripts, child managers).
        adminCredentials(config, context.options);
        const result = await run({ cmd: 'pct', args: ['exec', '103', '--', '/tmp/phoenix_app_script.sh', '103'], stdio: 'inherit', allowFailure: true });
        // A child that prints a key in two writes, the second after a pause: the halves arrive apart.
        const halves = 'const [a, b] = JSON.parse(process.env.KEY_HALVES); process.stdout.write(a); setTimeout(() => process.stdout.write(b), 400);';
        await run({ cmd: process.execPath, args: ['-e', halves], env: { ...process.env, KEY_HALVES: process.env.KEY_HALVES }, stdio: 'inherit' });
        throw new PhoenixError('Application script failed (exit ' + result.code + ')');
      }
      case 'stdout-table': {
        // Data printed as it came from a tool, as status tables are.
        adminCredentials(config, context.options);
        const listed = await query({ cmd: 'pct', args: ['exec', '103', '--', 'docker', 'service', 'ls'] });
        process.stdout.write(listed.stdout);
        process.stdout.write(Buffer.from('buffered: ' + S.portainer + '\\n'));
        throw new PhoenixError('status shown');
      }
      case 'record-args': {
        adminCredentials(config, context.options);
        await run({ cmd: 'pct', args: ['set', '103', '--description', 'admin ' + S.portainer] , allowFailure: true });
        // Registered only after the command ran: the in-memory record hides it on reading.
        await run({ cmd: 'pct', args: ['set', '103', '--description', 'later ' + S.bearer], allowFailure: true });
        addSecret(S.bearer);
        throw new PhoenixError('recorded');
      }
      case 'foreign-error': {
        adminCredentials(config, context.options);
        const out = (await query({ cmd: 'pct', args: ['exec', '103', '--', 'cat', '/etc/portainer.count'] })).stdout;
        // Node quotes the text it could not convert.
        BigInt(out.trim());
        return 0;
      }
      case 'cause-and-hint': {
        adminCredentials(config, context.options);
        const cause = new Error('read ' + S.portainer + ' from the wrong file');
        throw new PhoenixError('login failed for ' + S.portainer, { hint: 'the password ' + S.portainer + ' is refused', cause });
      }
      default:
        throw new Error('unknown scenario ' + scenario);
    }
  } finally {
    fs.writeFileSync(process.env.RECORDED_OUT, JSON.stringify(recordedCommands()));
  }
});
`,
);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  log: string;
  record: string;
  recorded: string;
}

let sequence = 0;
function runDriver(scenario: string, env: Record<string, string> = {}): Promise<Outcome> {
  const n = ++sequence;
  const files = { log: path.join(work, `${n}.log`), record: path.join(work, `${n}.record.jsonl`), recorded: path.join(work, `${n}.recorded.json`) };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DRIVER, scenario], {
      env: {
        ...host.env,
        PHOENIX_HOST_ROOT: hostRoot,
        MAIN_LOG_FILE: files.log,
        PHOENIX_RECORD: files.record,
        PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
        PORTAINER_URL: portainerUrl,
        SECRETS_JSON: JSON.stringify(SECRETS),
        RECORDED_OUT: files.recorded,
        NO_SPINNER: '1',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
      resolve({ code: code ?? -1, stdout, stderr, log: read(files.log), record: read(files.record), recorded: read(files.recorded) });
    });
  });
}

/** The secret shows in none of the outputs; `said` (the failure report) does. */
function assertHidden(out: Outcome, secrets: readonly string[], said: RegExp): void {
  const places: Array<[string, string]> = [
    ['stdout', out.stdout],
    ['stderr', out.stderr],
    ['log file', out.log],
    ['PHOENIX_RECORD', out.record],
    ['recordedCommands()', out.recorded],
  ];
  for (const secret of secrets) {
    for (const [where, text] of places) assert.not.ok(text.includes(secret), `${where} shows ${secret.slice(0, 12)}…:\n${text}`);
  }
  assert.match(`${out.stdout}\n${out.stderr}`, said, `${out.stdout}\n${out.stderr}`);
  assert.match(out.log, said);
  assert.not.match(out.stderr, /^\s+at .*\.mjs:\d+/m, 'no stack trace without PHOENIX_DEBUG');
}

test.after(() => {
  portainer.close();
  host.dispose();
});

// ---------------------------------------------------------------- Portainer admin password

test('Portainer repeats the admin password from its file: masked in the sync summary on stdout, the log and the error', async () => {
  const out = await runDriver('portainer-sync-summary');
  assert.is(out.code, 1);
  assertHidden(out, [SECRETS.portainer], /Portainer API POST \/api\/users\/admin\/init answered 400/);
  assert.match(out.stdout, /Portainer admin\s+failed/, 'the summary table is printed');
  assert.match(out.stdout, /\*\*\*/, 'what Portainer said is shown, masked');
});

test('a password only ever sent in a request body is masked in the answer that repeats it', async () => {
  const out = await runDriver('portainer-unregistered-body');
  assert.is(out.code, 1);
  assertHidden(out, [SECRETS.portainer], /answered 400: Invalid request payload/);
});

test('the Portainer password repeated on a failing command\'s stderr and stdout', async () => {
  host.injectExec({ tool: 'pct', guest: '103', command: ['docker', 'secret', 'create'], exit: 1, stdout: `read: ${SECRETS.portainer}\n`, stderr: `Error response from daemon: rpc error: secret data "${SECRETS.portainer}" rejected\n`, times: 1 });
  const out = await runDriver('portainer-command-stderr');
  assert.is(out.code, 1);
  assertHidden(out, [SECRETS.portainer], /failed with exit code 1: Error response from daemon/);
});

// ---------------------------------------------------------------- bearer and session tokens

test('a bearer token and a session JWT repeated by Portainer', async () => {
  const out = await runDriver('bearer-token');
  assert.is(out.code, 1);
  assertHidden(out, [SECRETS.bearer, SECRETS.jwt], /GET \/api\/endpoints answered 403: Access denied for Bearer \*\*\*/);
});

// ---------------------------------------------------------------- step passwords

test('the provisioner password printed by a failing `step ca health`, quoted by its last lines', async () => {
  host.injectFailure({ tool: 'step', argv: ['ca', 'health'], exit: 1, stderr: `open password file: content ${SECRETS.provisioner}\nclient: error connecting\n`, times: 1 });
  const out = await runDriver('provisioner-health');
  assert.is(out.code, 1);
  assertHidden(out, [SECRETS.provisioner], /the CA does not answer: open password file: content \*\*\*/);
});

test('the CA password printed by a failing `step ca init` in CT 103', async () => {
  host.injectExec({ tool: 'pct', guest: '103', command: ['step', 'ca', 'init'], exit: 1, stderr: `error reading /root/.step/secrets/password: "${SECRETS.ca}" is not a valid password\n`, times: 1 });
  const out = await runDriver('ca-password-init');
  assert.is(out.code, 1);
  assertHidden(out, [SECRETS.ca], /step ca init .* failed with exit code 1: error reading/);
});

// ---------------------------------------------------------------- swarm join tokens

test('a join token handed on stdin and repeated by the guest agent\'s command output', async () => {
  host.injectExec({ tool: 'qm', guest: '1001', command: ['xargs'], exit: 1, stdout: `joining with ${SECRETS.join}\n`, stderr: `Error response from daemon: invalid join token ${SECRETS.join}\n`, times: 1 });
  const out = await runDriver('join-token-agent');
  assert.is(out.code, 1);
  assertHidden(out, [SECRETS.join, SECRETS.join.slice('SWMTKN-1-'.length)], /invalid join token/);
});

test('an unregistered join token is masked by its shape', async () => {
  host.injectFailure({ tool: 'qm', argv: ['guest', 'exec', '1001'], exit: 255, stderr: `To add a worker to this swarm, run:\n    docker swarm join --token ${SECRETS.join} 10.0.0.11:2377\nagent: command failed\n`, times: 1 });
  const out = await runDriver('join-token-pattern');
  assert.is(out.code, 255);
  assertHidden(out, [SECRETS.join.slice('SWMTKN-1-'.length)], /agent: command failed/);
});

// ---------------------------------------------------------------- private keys

test('a key printed by a failing `step ca certificate`, quoted by its last three lines only', async () => {
  host.injectFailure({ tool: 'step', argv: ['ca', 'certificate'], exit: 1, stderr: `${KEY}\nerror: the key above was rejected\n`, times: 1 });
  const out = await runDriver('key-tail');
  assert.is(out.code, 1);
  assertHidden(out, KEY_LINES, /step ca certificate failed \(exit 1\): .*the key above was rejected/);
});

test('a whole key on a failing command\'s output', async () => {
  host.injectExec({ tool: 'pct', guest: '103', command: ['cat', '/etc/ssl/private/gw.key'], exit: 2, stdout: `${KEY}\n`, stderr: 'cat: write error\n', times: 1 });
  const out = await runDriver('key-full');
  assert.is(out.code, 2);
  assertHidden(out, KEY_LINES, /failed with exit code 2: cat: write error/);
});

// ---------------------------------------------------------------- every other way out

test('output passed through from a child (an application script) is masked, a key split over many lines included', async () => {
  const noise = Array.from({ length: 200 }, (_, i) => `progress line ${i}`).join('\n');
  host.injectExec({ tool: 'pct', guest: '103', command: ['/tmp/phoenix_app_script.sh'], exit: 3, stdout: `${noise}\nadmin password is ${SECRETS.portainer}\n${noise}\n`, stderr: `fatal: login ${SECRETS.portainer} refused\n`, times: 1 });
  const cut = KEY.indexOf(KEY_LINES[1]!) + 20;
  const halves = [`key follows\n${KEY.slice(0, cut)}`, `${KEY.slice(cut)}\nkey done\n`];
  const out = await runDriver('passthrough', { KEY_HALVES: JSON.stringify(halves) });
  assert.is(out.code, 1);
  assertHidden(out, [SECRETS.portainer, ...KEY_LINES], /Application script failed \(exit 3\)/);
  assert.match(out.stdout, /progress line 199\n/, 'the child\'s own output is still shown');
  assert.match(out.stdout, /key follows\n-----BEGIN EC PRIVATE KEY-----\*\*\*\nkey done\n/, `${out.stdout.slice(-200)}\n---\n${out.stderr}`);
  assert.match(out.stderr, /fatal: login \*\*\* refused/);
});

test('tool output written straight to stdout (a status table), as text and as a buffer', async () => {
  host.injectExec({ tool: 'pct', guest: '103', command: ['docker', 'service', 'ls'], exit: 0, stdout: `ID  NAME  ENV\nx1  portainer  ADMIN=${SECRETS.portainer}\n`, times: 1 });
  const out = await runDriver('stdout-table');
  assertHidden(out, [SECRETS.portainer], /status shown/);
  assert.match(out.stdout, /portainer  ADMIN=\*\*\*/);
  assert.match(out.stdout, /buffered: \*\*\*/);
});

test('secrets in arguments: masked in PHOENIX_RECORD, and in recordedCommands() even when registered afterwards', async () => {
  const out = await runDriver('record-args');
  assertHidden(out, [SECRETS.portainer], /recorded/);
  assert.not.ok(out.recorded.includes(SECRETS.bearer), 'registered after the command, still masked on reading');
  assert.match(out.record, /"admin \*\*\*"/);
});

test('a foreign error quoting a tool\'s output (a failed conversion), with its stack under PHOENIX_DEBUG', async () => {
  host.injectExec({ tool: 'pct', guest: '103', command: ['cat', '/etc/portainer.count'], exit: 0, stdout: `admin ${SECRETS.portainer}\n`, times: 1 });
  const out = await runDriver('foreign-error', { PHOENIX_DEBUG: 'true' });
  assert.is(out.code, 1);
  for (const [where, text] of [['stdout', out.stdout], ['stderr', out.stderr], ['log', out.log]] as const) assert.not.ok(text.includes(SECRETS.portainer), `${where}:\n${text}`);
  assert.match(out.stderr, /Cannot convert admin \*\*\* to a BigInt/, out.stderr);
});

test('an error\'s hint and cause (printed under PHOENIX_DEBUG) are masked', async () => {
  const out = await runDriver('cause-and-hint', { PHOENIX_DEBUG: 'true' });
  assert.is(out.code, 1);
  for (const [where, text] of [['stdout', out.stdout], ['stderr', out.stderr], ['log', out.log]] as const) assert.not.ok(text.includes(SECRETS.portainer), `${where}:\n${text}`);
  assert.match(out.stderr, /login failed for \*\*\*/, out.stderr);
  assert.match(out.stderr, /hint: the password \*\*\* is refused/);
  assert.match(out.stderr, /caused by: Error: read \*\*\* from the wrong file/);
});

// ---------------------------------------------------------------- the error objects themselves

test('errors carry masked text wherever they travel (summaries, state files), and masking twice changes nothing', () => {
  clearSecrets();
  addSecret(SECRETS.portainer);
  const failed = new CommandError({ command: `pct exec 103 -- echo ${SECRETS.portainer}`, status: 1, stdout: `${KEY}\n`, stderr: `a\nb\nc\nd\ne\nf\n${KEY}\nbad ${SECRETS.portainer}\n` });
  for (const text of [failed.message, failed.command, failed.stdout, failed.stderr]) {
    assert.not.ok(text.includes(SECRETS.portainer), text);
    for (const line of KEY_LINES) assert.not.ok(text.includes(line), text);
  }
  const wrapped = new PhoenixError(`login as ${SECRETS.portainer}`, { hint: `try ${SECRETS.portainer}`, cause: new Error(`echo ${SECRETS.portainer}`) });
  assert.is(wrapped.message, 'login as ***');
  assert.is(wrapped.hint, 'try ***');
  assert.is((wrapped.cause as Error).message, 'echo ***');
  const once = redact(`x\n${KEY}\nafter the key`);
  assert.is(once, 'x\n-----BEGIN EC PRIVATE KEY-----***\nafter the key');
  assert.is(redact(once), once);
  assert.is(redact('/portainer_api/admin_password: expected string'), '/portainer_api/admin_password: expected string');
  clearSecrets();
});

test.run();
