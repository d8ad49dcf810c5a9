// A real step-ca for the tests: the binary test/tools/step-ca/build.sh builds
// from Debian's packaged sources (make install), started on a STEPPATH laid
// out as `step ca init` leaves it plus Phoenix's ACME provisioner, through
// Phoenix's own run-step-ca script (scripts/run-step-ca.mjs) in a child
// process, on 127.0.0.1 only. The root and intermediate are made here with
// openssl (EC P-256, as step makes them); the intermediate key is encrypted
// with the password file Phoenix's unit passes (CA_PASSWORD_FILE).
//
// Not covered: anything needing the `step` CLI (JWK one-time tokens for
// `step ca certificate`); Debian packages only part of it, so those flows
// stay on the simulated `step`.
//
// Every wait is bounded: the start waits for /health at most `startTimeoutMs`,
// the process lives at most `lifetimeS` (coreutils timeout), stop() sends
// SIGTERM to the process group and SIGKILL after a grace period.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CA_PASSWORD_FILE } from '../../lib/features/lxc/step-ca.mts';
import { acmeProvisionerJson } from '../../lib/pki/ca-layout.mts';
import { freePort } from '../realtls/ports.mts';
import { childEnv, delay, Scope, startDaemon, tail, type Daemon } from '../realtls/procs.mts';

const PROJECT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where test/tools/step-ca/build.sh puts the binary. */
export const REAL_STEP_CA_BINARY = path.join(PROJECT, '.tools', 'step-ca', 'bin', 'step-ca');
const RUN_STEP_CA_SCRIPT = path.join(PROJECT, 'scripts', 'run-step-ca.mjs');

/** Why the real step-ca cannot run here, or undefined when it can. */
export function realStepCaMissing(binary = REAL_STEP_CA_BINARY): string | undefined {
  if (!fs.existsSync(binary)) return `${binary} is not built (make stepca, or make install, builds it from Debian's golang-github-smallstep-certificates-dev)`;
  return undefined;
}

export interface RealStepCaOptions {
  /** Where the STEPPATH goes (default: a new temp directory, removed on stop). */
  dir?: string;
  /** Extra names in ca.json's dnsNames (127.0.0.1 and localhost are always there). */
  dnsNames?: string[];
  /** Change the files before the start (e.g. break them on purpose). */
  mutate?: (layout: RealStepCaLayout) => void;
  startTimeoutMs?: number;
  /** Seconds after which the CA stops by itself even if stop() is never called. */
  lifetimeS?: number;
  binary?: string;
}

export interface RealStepCaLayout {
  dir: string;
  rootFile: string;
  intermediateFile: string;
  intermediateKey: string;
  rootKey: string;
  configFile: string;
  passwordFile: string;
  port: number;
}

export interface RealStepCa {
  url: string;
  port: number;
  rootPem: string;
  rootFile: string;
  intermediate: string;
  dir: string;
  daemon: Daemon;
  stop(): Promise<void>;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
}

/** Write the STEPPATH: certs/, secrets/, config/ca.json, config/defaults.json, db/. */
export async function layoutRealStepCa(dir: string, dnsNames: string[] = []): Promise<RealStepCaLayout> {
  for (const sub of ['certs', 'secrets', 'config', 'db', 'templates']) fs.mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o700 });
  const port = await freePort();
  const passwordFile = path.join(dir, CA_PASSWORD_FILE);
  fs.writeFileSync(passwordFile, `${crypto.randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
  const rootKey = path.join(dir, 'secrets', 'root_ca_key');
  const rootFile = path.join(dir, 'certs', 'root_ca.crt');
  const intermediateKey = path.join(dir, 'secrets', 'intermediate_ca_key');
  const intermediateFile = path.join(dir, 'certs', 'intermediate_ca.crt');
  const keyArgs = ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes-256-cbc', '-pass', `file:${passwordFile}`];
  openssl([...keyArgs, '-out', rootKey]);
  openssl([...keyArgs, '-out', intermediateKey]);
  openssl([
    'req', '-x509', '-new', '-key', rootKey, '-passin', `file:${passwordFile}`, '-subj', '/O=Phoenix test/CN=Phoenix test Root CA', '-days', '3', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:1', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', rootFile,
  ]);
  const csr = path.join(dir, 'intermediate.csr');
  const ext = path.join(dir, 'intermediate.ext');
  openssl(['req', '-new', '-key', intermediateKey, '-passin', `file:${passwordFile}`, '-subj', '/O=Phoenix test/CN=Phoenix test Intermediate CA', '-out', csr]);
  fs.writeFileSync(ext, 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  openssl([
    'x509', '-req', '-in', csr, '-CA', rootFile, '-CAkey', rootKey, '-passin', `file:${passwordFile}`, '-CAcreateserial', '-days', '2', '-sha256', '-extfile', ext, '-out', intermediateFile,
  ]);
  fs.rmSync(csr);
  fs.rmSync(ext);
  const names = [...new Set(['127.0.0.1', 'localhost', ...dnsNames])];
  const configFile = path.join(dir, 'config', 'ca.json');
  const caJson = {
    root: rootFile,
    federatedRoots: null,
    crt: intermediateFile,
    key: intermediateKey,
    address: `127.0.0.1:${port}`,
    insecureAddress: '',
    dnsNames: names,
    logger: { format: 'text' },
    db: { type: 'badgerv2', dataSource: path.join(dir, 'db'), badgerFileLoadingMode: '' },
    authority: { provisioners: [acmeProvisionerJson()] },
    tls: { cipherSuites: ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'], minVersion: 1.2, maxVersion: 1.3, renegotiation: false },
  };
  fs.writeFileSync(configFile, `${JSON.stringify(caJson, null, 2)}\n`);
  const fingerprint = crypto.createHash('sha256').update(new crypto.X509Certificate(fs.readFileSync(rootFile)).raw).digest('hex');
  const defaults = { 'ca-url': `https://127.0.0.1:${port}`, 'ca-config': configFile, fingerprint, root: rootFile };
  fs.writeFileSync(path.join(dir, 'config', 'defaults.json'), `${JSON.stringify(defaults, null, 2)}\n`);
  return { dir, rootFile, intermediateFile, intermediateKey, rootKey, configFile, passwordFile, port };
}

export interface HttpsAnswer {
  status: number;
  body: string;
}

/** GET over TLS trusting only `ca` (no system roots), bounded by timeoutMs. */
export function httpsGet(url: string, ca: string, timeoutMs = 5000): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ca, agent: false, timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/**
 * Start Phoenix's run-step-ca (scripts/run-step-ca.mjs) on `layout`, in its
 * own process group. Returns the daemon without waiting for anything.
 */
export function startRunStepCa(scope: Scope, layout: RealStepCaLayout, options: { binary?: string; lifetimeS?: number } = {}): Daemon {
  return startDaemon(scope, {
    name: 'run-step-ca',
    cmd: process.execPath,
    args: [RUN_STEP_CA_SCRIPT],
    logFile: path.join(layout.dir, 'run-step-ca.log'),
    lifetimeS: options.lifetimeS ?? 120,
    env: childEnv({ STEPPATH: layout.dir, PHOENIX_STEP_CA_BINARY: options.binary ?? REAL_STEP_CA_BINARY, HOME: layout.dir }),
  });
}

/** Poll /health (trusting only the root) until it answers ok; throws with the log after timeoutMs or when the CA exits. */
export async function waitForHealth(url: string, rootPem: string, daemon: Daemon, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    if (!daemon.running()) throw new Error(`step-ca exited before answering /health:\n${tail(daemon.log())}`);
    try {
      const answer = await httpsGet(`${url}/health`, rootPem, 2000);
      if (answer.status === 200) return;
      last = `HTTP ${answer.status}: ${answer.body}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`step-ca did not answer /health within ${timeoutMs} ms (${last}):\n${tail(daemon.log())}`);
    await delay(100);
  }
}

/** Lay out a CA, start it through run-step-ca and wait until /health answers. */
export async function startRealStepCa(options: RealStepCaOptions = {}): Promise<RealStepCa> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-real-step-ca-'));
  const scope = new Scope();
  if (ownDir) scope.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    const layout = await layoutRealStepCa(dir, options.dnsNames);
    options.mutate?.(layout);
    const rootPem = fs.readFileSync(layout.rootFile, 'utf8');
    const daemon = startRunStepCa(scope, layout, { binary: options.binary, lifetimeS: options.lifetimeS });
    const url = `https://127.0.0.1:${layout.port}`;
    await waitForHealth(url, rootPem, daemon, options.startTimeoutMs ?? 20_000);
    return {
      url,
      port: layout.port,
      rootPem,
      rootFile: layout.rootFile,
      intermediate: layout.intermediateFile,
      dir,
      daemon,
      stop: () => scope.close(),
    };
  } catch (error) {
    await scope.close();
    throw error;
  }
}

export async function stopRealStepCa(ca: RealStepCa | undefined): Promise<void> {
  if (ca) await ca.stop();
}
