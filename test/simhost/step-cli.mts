// Smallstep's `step` as the simulated host answers it, in two places:
//
// - inside guests (`pct exec <id> -- step …`, programs/step.mts): paths are
//   the guest's, STEPPATH is `env STEPPATH=…` or /root/.step;
// - on the host (bin/step, `node step-cli.mjs …`): paths are the host's,
//   STEPPATH is $STEPPATH or $HOME/.step, and every call is recorded in
//   calls.jsonl (tool "step") and honours inject.json failures like the
//   simulated Proxmox tools. Without a simulator state it still works
//   against PHOENIX_STEP_CA_DIR (a CA directory, always "running").
//
// What is emulated (stepca.mts holds the CA itself): ca init, ca health,
// ca bootstrap, ca root, ca certificate, ca provisioner list/add,
// certificate fingerprint, path, version. Anything else fails loudly
// (exit 1) instead of pretending to work. Passwords are read from files
// and never printed.

import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { failureOutput, latencyFor, loadInjection, takeFailure } from './inject.mts';
import { appendCall } from './record.mts';
import { sleepSync, STATE_ENV, writeAll } from './state.mts';
import {
  addProvisioner,
  authorizeProvisioner,
  BACKDATE_MS,
  type CaRecord,
  fingerprintOf,
  formatDuration,
  guestRunning,
  initCa,
  isInitialised,
  issueLeaf,
  LAYOUT,
  maxLeafDurationMs,
  parseTimeFlag,
  provisioners,
  readCaConfig,
  readPasswordFile,
  readRecord,
  refreshRecordProvisioners,
  rootPemOf,
  sha256Hex,
  StepFailure,
  writeFileWithMode,
  writeRecord,
} from './stepca.mts';

export const STEP_VERSION = 'Smallstep CLI/0.28.7 (linux/amd64)';

export interface StepResult {
  exit: number;
  stdout: string;
  stderr: string;
}

/** Where a `step` runs. */
export interface StepEnv {
  /** Host path of a path as the caller wrote it (relative paths from the caller's cwd). */
  resolve(file: string): string;
  /** STEPPATH as the caller sees it. */
  steppath: string;
  /** The guest it runs in; undefined on the host. */
  guest?: string;
  /** The simulator's state directory, when there is one. */
  root?: string;
  /** PHOENIX_STEP_CA_DIR: a CA directory to use instead of the simulator's record. */
  caDir?: string;
  now?: number;
}

interface Ca {
  dir: string;
  running: boolean;
  record?: CaRecord;
}

// ---------------------------------------------------------------- arguments

interface FlagSpec {
  /** Flags that take a value (repeatable ones collect every value). */
  values?: readonly string[];
  bools?: readonly string[];
  aliases?: Readonly<Record<string, string>>;
}

interface Parsed {
  positional: string[];
  values: Map<string, string[]>;
  bools: Set<string>;
}

const COMMON_VALUES = ['context', 'ca-url', 'root'];

function parseFlags(args: readonly string[], spec: FlagSpec): Parsed {
  const values = new Map<string, string[]>();
  const bools = new Set<string>();
  const positional: string[] = [];
  const valueFlags = new Set([...(spec.values ?? []), ...COMMON_VALUES]);
  const boolFlags = new Set(spec.bools ?? []);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = arg.replace(/^--?/, '');
    let inline: string | undefined;
    if (eq !== -1) {
      name = arg.slice(0, eq).replace(/^--?/, '');
      inline = arg.slice(eq + 1);
    }
    name = spec.aliases?.[name] ?? name;
    if (boolFlags.has(name)) {
      if (inline === undefined || inline === 'true') bools.add(name);
      continue;
    }
    if (!valueFlags.has(name)) throw new StepFailure(`flag provided but not defined: -${name}`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new StepFailure(`flag needs an argument: -${name}`);
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  return { positional, values, bools };
}

const one = (p: Parsed, name: string): string | undefined => p.values.get(name)?.at(-1);
const all = (p: Parsed, name: string): string[] => p.values.get(name) ?? [];

function required(p: Parsed, name: string, command: string): string {
  const value = one(p, name);
  if (value === undefined || value === '') throw new StepFailure(`'step ${command}' requires the '--${name}' flag`);
  return value;
}

// ---------------------------------------------------------------- the CA and the caller's STEPPATH

function locateCa(env: StepEnv): Ca | undefined {
  if (env.caDir) return { dir: env.caDir, running: isInitialised(env.caDir) };
  if (!env.root) return undefined;
  const record = readRecord(env.root);
  if (!record) return undefined;
  return { dir: record.ca_dir, running: guestRunning(env.root, record.guest) && isInitialised(record.ca_dir), record };
}

function stepFile(env: StepEnv, rel: string): { shown: string; host: string } {
  const shown = path.posix.join(env.steppath, rel);
  return { shown, host: env.resolve(shown) };
}

function readDefaults(env: StepEnv): Record<string, string> {
  try {
    return JSON.parse(fs.readFileSync(stepFile(env, LAYOUT.defaults).host, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/** The CA URL of a client command: --ca-url, else the bootstrapped defaults.json. */
function caUrlOf(env: StepEnv, p: Parsed, command: string): string {
  const url = one(p, 'ca-url') ?? readDefaults(env)['ca-url'];
  if (!url) throw new StepFailure(`'step ${command}' requires the '--ca-url' flag`);
  if (!/^https:\/\/[^/\s]+/.test(url)) throw new StepFailure(`invalid value '${url}' for flag '--ca-url': it must be an https URL`);
  return url.replace(/\/+$/, '');
}

function connectionRefused(url: string, what: string): StepFailure {
  const hostPort = url.replace(/^https:\/\//, '').split('/')[0]!;
  const port = hostPort.includes(':') ? hostPort.split(':').pop() : '443';
  return new StepFailure(`client GET ${url}/${what} failed: Get "${url}/${what}": dial tcp ${hostPort.split(':')[0]}:${port}: connect: connection refused`);
}

/**
 * A client connection: the CA must be running, and the root the client
 * trusts (--root, the bootstrapped root, or $STEPPATH/certs/root_ca.crt)
 * must be the CA's, as the TLS handshake would demand.
 */
function connect(env: StepEnv, p: Parsed, command: string, endpoint: string): { ca: Ca; url: string } {
  const url = caUrlOf(env, p, command);
  const ca = locateCa(env);
  if (!ca || !ca.running) throw connectionRefused(url, endpoint);
  const rootArg = one(p, 'root') ?? readDefaults(env).root;
  const root = rootArg !== undefined ? { shown: rootArg, host: env.resolve(rootArg) } : stepFile(env, LAYOUT.rootCert);
  let trusted: string;
  try {
    trusted = fs.readFileSync(root.host, 'utf8');
  } catch {
    throw new StepFailure(`error reading ${root.shown}: open ${root.shown}: no such file or directory`);
  }
  if (fingerprintOf(trusted, root.shown) !== fingerprintOf(rootPemOf(ca.dir))) {
    throw new StepFailure(`client GET ${url}/${endpoint} failed: tls: failed to verify certificate: x509: certificate signed by unknown authority`);
  }
  return { ca, url };
}

/** Refuse to replace a file unless --force (step asks; without a terminal it fails). */
function checkOverwrite(target: { shown: string; host: string }, force: boolean): void {
  if (!force && fs.existsSync(target.host)) throw new StepFailure(`file ${target.shown} already exists; use '--force' to overwrite it`);
}

function writeInto(target: { shown: string; host: string }, data: string, mode: number): void {
  const dir = path.dirname(target.host);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileWithMode(target.host, data, mode);
}

// ---------------------------------------------------------------- commands

type Command = (env: StepEnv, args: readonly string[]) => StepResult;

const done = (stdout = '', stderr = ''): StepResult => ({ exit: 0, stdout, stderr });

function caInit(env: StepEnv, args: readonly string[]): StepResult {
  const p = parseFlags(args, {
    values: ['name', 'dns', 'address', 'provisioner', 'deployment-type', 'password-file', 'provisioner-password-file', 'with-ca-url'],
    bools: ['acme', 'ssh', 'helm', 'no-db', 'pki'],
  });
  const name = required(p, 'name', 'ca init');
  const dns = all(p, 'dns').flatMap((d) => d.split(',')).map((d) => d.trim()).filter(Boolean);
  if (dns.length === 0) throw new StepFailure(`'step ca init' requires the '--dns' flag`);
  const address = required(p, 'address', 'ca init');
  const provisioner = required(p, 'provisioner', 'ca init');
  const deployment = one(p, 'deployment-type') ?? 'standalone';
  if (deployment !== 'standalone') throw new StepFailure(`deployment type '${deployment}' is not emulated (only standalone)`);
  const passwordFile = required(p, 'password-file', 'ca init');
  const password = readPasswordFile(env.resolve(passwordFile), passwordFile);
  const provisionerFile = one(p, 'provisioner-password-file');
  const provisionerPassword = provisionerFile === undefined ? password : readPasswordFile(env.resolve(provisionerFile), provisionerFile);
  const dir = env.resolve(env.steppath);
  const caUrl = one(p, 'with-ca-url');
  const result = initCa(dir, { name, dns, address, provisioner, password, provisionerPassword, steppath: env.steppath, ...(caUrl ? { caUrl } : {}) });
  if (p.bools.has('acme')) addProvisioner(dir, { type: 'ACME', name: 'acme' });
  if (env.root && env.guest !== undefined) {
    writeRecord(env.root, {
      guest: env.guest,
      steppath: env.steppath,
      ca_dir: dir,
      provisioners: [{ name: provisioner, type: 'JWK', password_sha256: sha256Hex(provisionerPassword) }, ...(p.bools.has('acme') ? [{ name: 'acme', type: 'ACME' }] : [])],
      dns,
      root_fingerprint: result.fingerprint,
    });
  }
  const f = (rel: string) => path.posix.join(env.steppath, rel);
  const out = [
    'Generating root certificate... done!',
    'Generating intermediate certificate... done!',
    '',
    `✔ Root certificate: ${f(LAYOUT.rootCert)}`,
    `✔ Root private key: ${f(LAYOUT.rootKey)}`,
    `✔ Root fingerprint: ${result.fingerprint}`,
    `✔ Intermediate certificate: ${f(LAYOUT.intermediateCert)}`,
    `✔ Intermediate private key: ${f(LAYOUT.intermediateKey)}`,
    `✔ Database folder: ${f(LAYOUT.db)}`,
    `✔ Default configuration: ${f(LAYOUT.defaults)}`,
    `✔ Certificate Authority configuration: ${f(LAYOUT.caConfig)}`,
    '',
    "Your PKI is ready to go. To generate certificates for individual services see 'step help ca'.",
    '',
  ].join('\n');
  return done(out);
}

function caHealth(env: StepEnv, args: readonly string[]): StepResult {
  connect(env, parseFlags(args, {}), 'ca health', 'health');
  return done('ok\n');
}

function caBootstrap(env: StepEnv, args: readonly string[]): StepResult {
  const p = parseFlags(args, { values: ['fingerprint', 'team', 'redirect-url'], bools: ['install', 'force', 'f'], aliases: { f: 'force' } });
  const url = caUrlOf(env, p, 'ca bootstrap');
  const fingerprint = required(p, 'fingerprint', 'ca bootstrap').toLowerCase().replace(/:/g, '');
  const ca = locateCa(env);
  if (!ca || !ca.running) throw connectionRefused(url, 'roots');
  const rootPem = rootPemOf(ca.dir);
  if (fingerprintOf(rootPem) !== fingerprint) {
    throw new StepFailure(`error downloading root certificate: the fingerprint of the root certificate does not match '${fingerprint}'`);
  }
  const force = p.bools.has('force');
  const rootFile = stepFile(env, LAYOUT.rootCert);
  const defaultsFile = stepFile(env, LAYOUT.defaults);
  checkOverwrite(rootFile, force);
  checkOverwrite(defaultsFile, force);
  writeInto(rootFile, rootPem, 0o600);
  writeInto(defaultsFile, `${JSON.stringify({ 'ca-url': url, fingerprint, root: rootFile.shown }, null, 2)}\n`, 0o644);
  let err = `The root certificate has been saved in ${rootFile.shown}.\nThe authority configuration has been saved in ${defaultsFile.shown}.\n`;
  if (p.bools.has('install')) {
    if (env.guest === undefined) {
      err += 'The host trust store is not changed by the simulator.\n';
    } else {
      const cn = /CN\s*=\s*([^,\n/]+)/.exec(rootSubject(rootPem))?.[1]?.trim() ?? 'step-ca-root';
      const target = { shown: `/usr/local/share/ca-certificates/${cn.replace(/[^A-Za-z0-9.-]+/g, '_')}.crt`, host: '' };
      target.host = env.resolve(target.shown);
      writeInto(target, rootPem, 0o644);
      err += `Certificate ${rootFile.shown} has been installed.\n`;
    }
  }
  return done('', err);
}

function rootSubject(pem: string): string {
  try {
    return new X509Certificate(pem).subject;
  } catch {
    return '';
  }
}

function caRoot(env: StepEnv, args: readonly string[]): StepResult {
  const p = parseFlags(args, { values: ['fingerprint'], bools: ['force', 'f'], aliases: { f: 'force' } });
  const [file] = p.positional;
  const url = caUrlOf(env, p, 'ca root');
  const ca = locateCa(env);
  if (!ca || !ca.running) throw connectionRefused(url, 'root');
  const rootPem = rootPemOf(ca.dir);
  const wanted = one(p, 'fingerprint')?.toLowerCase().replace(/:/g, '');
  if (wanted !== undefined && wanted !== fingerprintOf(rootPem)) throw new StepFailure(`the fingerprint of the root certificate does not match '${wanted}'`);
  if (file === undefined) return done(rootPem);
  const target = { shown: file, host: env.resolve(file) };
  checkOverwrite(target, p.bools.has('force'));
  writeInto(target, rootPem, 0o600);
  return done('', `The root certificate has been saved in ${file}.\n`);
}

function caCertificate(env: StepEnv, args: readonly string[]): StepResult {
  const p = parseFlags(args, {
    values: ['provisioner', 'p', 'provisioner-password-file', 'password-file', 'san', 'not-after', 'not-before', 'kty', 'crv', 'curve', 'size', 'token', 'set', 'set-file'],
    bools: ['force', 'f', 'insecure', 'no-password', 'offline'],
    aliases: { p: 'provisioner', 'password-file': 'provisioner-password-file', f: 'force', curve: 'crv' },
  });
  const [subject, crtArg, keyArg, extra] = p.positional;
  if (subject === undefined || crtArg === undefined || keyArg === undefined || extra !== undefined) {
    throw new StepFailure(`'step ca certificate' requires the 'subject', 'crt-file' and 'key-file' positional arguments`);
  }
  for (const unsupported of ['token', 'set', 'set-file', 'size']) if (p.values.has(unsupported)) throw new StepFailure(`flag '--${unsupported}' is not emulated by the simulator`);
  if (p.bools.has('offline')) throw new StepFailure(`flag '--offline' is not emulated by the simulator`);
  const kty = one(p, 'kty') ?? 'EC';
  const crv = one(p, 'crv') ?? 'P-256';
  if (kty !== 'EC' || crv !== 'P-256') throw new StepFailure(`key type ${kty} ${crv} is not emulated by the simulator (only EC P-256)`);
  const { ca, url } = connect(env, p, 'ca certificate', 'sign');
  const passwordFile = one(p, 'provisioner-password-file');
  if (passwordFile === undefined) throw new StepFailure(`'step ca certificate' needs '--provisioner-password-file' when it cannot prompt for the password`);
  const password = readPasswordFile(env.resolve(passwordFile), passwordFile);
  const provisioner = authorizeProvisioner(ca.dir, one(p, 'provisioner'), password);

  const now = env.now ?? Date.now();
  const notBefore = p.values.has('not-before') ? parseTimeFlag('not-before', one(p, 'not-before')!, now) : new Date(now - BACKDATE_MS);
  const notAfter = p.values.has('not-after') ? parseTimeFlag('not-after', one(p, 'not-after')!, now) : new Date(now + 24 * 3600_000);
  if (notAfter.getTime() <= notBefore.getTime()) throw new StepFailure(`the certificate would end (${notAfter.toISOString()}) before it starts (${notBefore.toISOString()})`);
  const requested = notAfter.getTime() - Math.max(notBefore.getTime(), now);
  const max = maxLeafDurationMs(ca.dir, provisioner);
  if (requested > max + 1000) {
    throw new StepFailure(`the request for a certificate valid for ${formatDuration(requested)} is more than the authorized maximum certificate duration of ${formatDuration(max)}`);
  }

  const crt = { shown: crtArg, host: env.resolve(crtArg) };
  const key = { shown: keyArg, host: env.resolve(keyArg) };
  const force = p.bools.has('force');
  checkOverwrite(crt, force);
  checkOverwrite(key, force);
  for (const target of [crt, key]) {
    if (!fs.existsSync(path.dirname(target.host))) throw new StepFailure(`error writing ${target.shown}: open ${target.shown}: no such file or directory`);
  }
  const leaf = issueLeaf(ca.dir, { subject, sans: all(p, 'san'), notBefore, notAfter });
  writeFileWithMode(key.host, leaf.keyPem, 0o600);
  writeFileWithMode(crt.host, leaf.bundle, 0o600);
  return done('', `✔ CA: ${url}\n✔ Certificate: ${crt.shown}\n✔ Private Key: ${key.shown}\n`);
}

function provisionerList(env: StepEnv, args: readonly string[]): StepResult {
  const { ca } = connect(env, parseFlags(args, { values: ['ca-config'] }), 'ca provisioner list', 'provisioners');
  return done(`${JSON.stringify(provisioners(ca.dir), null, 3)}\n`);
}

function provisionerAdd(env: StepEnv, args: readonly string[]): StepResult {
  const p = parseFlags(args, {
    values: ['type', 'challenge', 'ca-config', 'admin-cert', 'admin-key', 'admin-subject', 'admin-provisioner', 'admin-password-file', 'x509-template', 'x509-template-data'],
    bools: ['force-cn', 'require-eab'],
  });
  const [name] = p.positional;
  if (name === undefined) throw new StepFailure(`'step ca provisioner add' requires the 'name' argument`);
  const type = (one(p, 'type') ?? 'JWK').toUpperCase();
  if (type !== 'ACME') throw new StepFailure(`adding a provisioner of type ${type} is not emulated by the simulator (only ACME)`);
  // Without remote management the command edits ca.json in place; the CA reads it on its next start.
  const configArg = one(p, 'ca-config') ?? path.posix.join(env.steppath, LAYOUT.caConfig);
  const configHost = env.resolve(configArg);
  const dir = path.dirname(path.dirname(configHost));
  if (path.basename(configHost) !== 'ca.json' || !fs.existsSync(configHost)) throw new StepFailure(`error reading ${configArg}: open ${configArg}: no such file or directory`);
  readCaConfig(dir, configArg);
  const challenges = all(p, 'challenge');
  addProvisioner(
    dir,
    {
      type: 'ACME',
      name,
      ...(p.bools.has('force-cn') ? { forceCN: true } : {}),
      ...(p.bools.has('require-eab') ? { requireEAB: true } : {}),
      ...(challenges.length > 0 ? { challenges } : {}),
    },
    configArg,
  );
  if (env.root) refreshRecordProvisioners(env.root, dir);
  return done('', `Success! Your \`step-ca\` config has been updated. To pick up the new configuration SIGHUP (kill -1 <pid>) or restart the step-ca process.\n`);
}

function certificateFingerprint(env: StepEnv, args: readonly string[]): StepResult {
  const p = parseFlags(args, { values: ['format'], bools: ['insecure', 'roots', 'bundle', 'sha1'] });
  const [file] = p.positional;
  if (file === undefined) throw new StepFailure(`'step certificate fingerprint' requires the 'crt-file' argument`);
  let pem: string;
  try {
    pem = fs.readFileSync(env.resolve(file), 'utf8');
  } catch {
    throw new StepFailure(`open ${file}: no such file or directory`);
  }
  return done(`${fingerprintOf(pem, file)}\n`);
}

const COMMANDS: Record<string, Command> = {
  'ca init': caInit,
  'ca health': caHealth,
  'ca bootstrap': caBootstrap,
  'ca root': caRoot,
  'ca certificate': caCertificate,
  'ca provisioner list': provisionerList,
  'ca provisioner add': provisionerAdd,
  'certificate fingerprint': certificateFingerprint,
};

/** Run one `step` command line (the words after `step`). */
export function runStep(args: readonly string[], env: StepEnv): StepResult {
  try {
    if (args[0] === 'version' || args[0] === '--version' || args[0] === '-v') return done(`${STEP_VERSION}\n`);
    if (args[0] === 'path') return done(`${env.steppath}\n`);
    for (const words of [3, 2]) {
      const key = args.slice(0, words).join(' ');
      const command = COMMANDS[key];
      if (command) return command(env, args.slice(words));
    }
    throw new StepFailure(`'step ${args.filter((a) => !a.startsWith('-')).slice(0, 3).join(' ')}' is not emulated by the simulated host (known: ${Object.keys(COMMANDS).join(', ')}, path, version)`);
  } catch (error) {
    if (error instanceof StepFailure) return { exit: error.code, stdout: '', stderr: `${error.message}\n` };
    throw error;
  }
}

// ---------------------------------------------------------------- the host stand-in


/** The simulator's state directory when it is set and seeded; `step` on the host also works without one. */
function simulatorRoot(env: NodeJS.ProcessEnv): string | undefined {
  const dir = env[STATE_ENV];
  return dir && fs.existsSync(path.join(dir, 'state.json')) ? path.resolve(dir) : undefined;
}

export function main(argv: string[], env: NodeJS.ProcessEnv = process.env): number {
  const started = Date.now();
  const root = simulatorRoot(env);
  let result: StepResult;
  try {
    const injection = root ? loadInjection(root) : {};
    const failure = root ? takeFailure(root, injection, 'step', argv) : undefined;
    if (root) sleepSync(latencyFor(injection, 'step'));
    if (failure) {
      sleepSync(failure.delay_ms ?? 0);
      const out = failureOutput(failure, 'step', argv);
      result = { exit: out.exit, stdout: out.stdout, stderr: out.stderr };
    } else {
      const home = env.HOME ?? '/root';
      result = runStep(argv, {
        resolve: (file) => path.resolve(file),
        steppath: path.resolve(env.STEPPATH || path.join(home, '.step')),
        ...(root ? { root } : {}),
        ...(env.PHOENIX_STEP_CA_DIR ? { caDir: path.resolve(env.PHOENIX_STEP_CA_DIR) } : {}),
      });
    }
  } catch (error) {
    result = { exit: 70, stdout: '', stderr: `simhost: internal error in step: ${(error as Error).stack ?? String(error)}\n` };
    if (root) {
      try {
        fs.appendFileSync(path.join(root, 'simhost-errors.log'), `${new Date().toISOString()} step ${JSON.stringify(argv)}: ${(error as Error).stack ?? String(error)}\n`);
      } catch {
        // nothing more to do
      }
    }
  }
  writeAll(1, result.stdout);
  writeAll(2, result.stderr);
  if (root) appendCall(root, { tool: 'step', argv, exit: result.exit, ms: Date.now() - started, start: started });
  return result.exit;
}

const invokedDirectly = process.argv[1] !== undefined && /[\\/]step-cli\.m[jt]s$/.test(process.argv[1]);
if (invokedDirectly) process.exitCode = main(process.argv.slice(2));
