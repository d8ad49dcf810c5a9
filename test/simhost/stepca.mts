// The certificate authority behind the simulated `step` (the program emulated
// inside guests and the host stand-in bin/step). A CA is a STEPPATH-like
// directory laid out as `step ca init` leaves it, holding real material:
// EC P-256 keys from node:crypto (the CA keys encrypted with the CA password,
// as step writes them), X.509 certificates made by openssl (root, then an
// intermediate signed by it, then leaves signed by the intermediate), and a
// JWK provisioner whose private key is a real PBES2 JWE sealed with the
// provisioner password, so a wrong password is refused by decryption, not
// by comparing strings.
//
// The simulated host has one CA; <state>/stepca.json says where it lives:
// {"guest","steppath","ca_dir","provisioners":[{"name","type","password_sha256"}],
//  "dns":[…],"root_fingerprint"}. `ca_dir` is the host directory with the
// files (the guest tree, or the host directory a bind mount maps it to).
//
// openssl is spawned only to make certificates; everything else (keys,
// fingerprints, the JWE) is node:crypto in-process.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import { atomicWrite, loadRuntime, paths, readJson, withStateLock } from './state.mts';

const require = createRequire(import.meta.url);

/** A `step` failure: what step prints on stderr, and its exit status (1 for every step error). */
export class StepFailure extends Error {
  readonly code: number;
  constructor(message: string, code = 1) {
    super(message);
    this.code = code;
  }
}

/** Where `step ca init` puts things, relative to STEPPATH. */
export const LAYOUT = {
  rootCert: 'certs/root_ca.crt',
  intermediateCert: 'certs/intermediate_ca.crt',
  rootKey: 'secrets/root_ca_key',
  intermediateKey: 'secrets/intermediate_ca_key',
  caConfig: 'config/ca.json',
  defaults: 'config/defaults.json',
  db: 'db',
  /** Not written by `step ca init`: the file step-ca.service reads its password from. */
  caPassword: 'ca_password.txt',
} as const;

export const RECORD_FILE = 'stepca.json';

/** step-ca's default maximum for an X.509 leaf (claims.maxTLSCertDuration) when ca.json sets none. */
export const DEFAULT_MAX_TLS_DURATION_MS = 24 * 3600_000;
/** step-ca backdates a leaf's notBefore by this much (authority.backdate, default 1m). */
export const BACKDATE_MS = 60_000;
const ROOT_VALIDITY_DAYS = 3650;
/** PBES2 iterations of the provisioner key's JWE (what step used before raising it to 600000). */
const PBES2_ITERATIONS = 100_000;

export interface ProvisionerRecord {
  name: string;
  type: string;
  /** SHA-256 of the password a JWK provisioner's key is sealed with (hex). */
  password_sha256?: string;
}

export interface CaRecord {
  guest: string;
  steppath: string;
  ca_dir: string;
  provisioners: ProvisionerRecord[];
  dns: string[];
  root_fingerprint: string;
}

export interface Provisioner {
  type: string;
  name: string;
  key?: Record<string, string>;
  encryptedKey?: string;
  [other: string]: unknown;
}

export interface CaConfig {
  root: string;
  crt: string;
  key: string;
  address: string;
  dnsNames: string[];
  authority: { provisioners?: Provisioner[]; claims?: Record<string, unknown>; [other: string]: unknown };
  [other: string]: unknown;
}

// ---------------------------------------------------------------- small helpers

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

export function sha256Hex(data: string | Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** The first PEM certificate in a text, as DER. */
function firstCertificateDer(pem: string, shown: string): Buffer {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new StepFailure(`error parsing ${shown}: no PEM certificate found`);
  return Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64');
}

/** What `step certificate fingerprint` prints: SHA-256 of the DER, lower-case hex. */
export function fingerprintOf(pem: string, shown = 'certificate'): string {
  return sha256Hex(firstCertificateDer(pem, shown));
}

/** The PEM blocks of the certificates in a file, each ending with a newline. */
export function pemCertificates(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => `${m[0]}\n`);
}

/** A password file as step reads it: trailing line breaks dropped. */
export function readPasswordFile(file: string, shown = file): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StepFailure(`error reading ${shown}: open ${shown}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EISDIR' ? 'is a directory' : 'permission denied'}`);
  }
  const password = text.replace(/[\r\n]+$/, '');
  if (password === '') throw new StepFailure(`error reading ${shown}: the password file is empty`);
  return password;
}

/** Write a file through a temp file and rename, with its mode set before the rename. */
export function writeFileWithMode(file: string, data: string | Buffer, mode: number): void {
  const tmp = `${file}.tmp.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, data, { mode });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

function mkdirMode(dir: string, mode: number): void {
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode });
    fs.chmodSync(dir, mode);
  }
}

// ---------------------------------------------------------------- openssl

/** Escape a value for openssl's -subj syntax (/K=V/…). */
function subjectValue(value: string): string {
  if (/[\0\r\n]/.test(value)) throw new StepFailure(`invalid subject '${value}'`);
  return value.replace(/[\\/+=,]/g, (c) => `\\${c}`);
}

function subjectArg(fields: ReadonlyArray<[string, string]>): string {
  return fields.map(([k, v]) => `/${k}=${subjectValue(v)}`).join('');
}

/** Run openssl in `cwd` with the password (if any) on stdin; throw its stderr on failure. */
function openssl(args: string[], cwd: string, password?: string): void {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const result = spawnSync('openssl', args, { cwd, input: password === undefined ? '' : `${password}\n`, encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw new StepFailure(`openssl: ${result.error.message}`);
  if (result.status !== 0) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join('; ');
    throw new StepFailure(`openssl ${args[0]} failed (exit ${result.status}): ${detail}`);
  }
}

const OPENSSL_CONFIG = `# made by the Phoenix simulator for one signing
[req]
distinguished_name = dn
[dn]
[ca]
default_ca = sim
[sim]
database = ./index.txt
new_certs_dir = ./issued
rand_serial = yes
unique_subject = no
default_md = sha256
policy = anything
copy_extensions = none
[anything]
commonName = optional
organizationName = optional
[root]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf]
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = @sans
`;

/** A private scratch directory for one openssl job, removed afterwards. */
function withScratch<T>(fn: (dir: string) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simhost-step-'));
  try {
    return fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function newEcKey(): crypto.KeyObject {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

/** An EC key as step writes a CA key: SEC1 PEM, encrypted (Proc-Type/DEK-Info) with the password. */
function encryptedKeyPem(key: crypto.KeyObject, password: string): string {
  return key.export({ type: 'sec1', format: 'pem', cipher: 'aes-256-cbc', passphrase: password }) as string;
}

/** asn1 time for openssl ca -startdate/-enddate. */
function opensslTime(date: Date): string {
  const iso = date.toISOString();
  const year = date.getUTCFullYear();
  const digits = `${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return year >= 1950 && year < 2050 ? `${String(year).slice(2)}${digits}` : `${year}${digits}`;
}

// ---------------------------------------------------------------- the JWK provisioner

interface Jwk {
  kty: string;
  crv: string;
  x: string;
  y: string;
  d?: string;
}

function thumbprint(jwk: Jwk): string {
  return b64url(crypto.createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest());
}

const KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

function pbes2Key(password: string, alg: string, p2s: Buffer, p2c: number): Buffer {
  const salt = Buffer.concat([Buffer.from(alg), Buffer.from([0]), p2s]);
  return crypto.pbkdf2Sync(password, salt, p2c, 16, 'sha256');
}

/** A compact JWE (PBES2-HS256+A128KW, A256GCM) of `plaintext`, sealed with `password`. */
export function sealWithPassword(plaintext: string, password: string): string {
  const alg = 'PBES2-HS256+A128KW';
  const p2s = crypto.randomBytes(16);
  const header = b64url(JSON.stringify({ alg, cty: 'jwk+json', enc: 'A256GCM', p2c: PBES2_ITERATIONS, p2s: b64url(p2s) }));
  const cek = crypto.randomBytes(32);
  const wrap = crypto.createCipheriv('id-aes128-wrap', pbes2Key(password, alg, p2s, PBES2_ITERATIONS), KW_IV);
  const wrapped = Buffer.concat([wrap.update(cek), wrap.final()]);
  const iv = crypto.randomBytes(12);
  const gcm = crypto.createCipheriv('aes-256-gcm', cek, iv);
  gcm.setAAD(Buffer.from(header));
  const ciphertext = Buffer.concat([gcm.update(plaintext, 'utf8'), gcm.final()]);
  return [header, b64url(wrapped), b64url(iv), b64url(ciphertext), b64url(gcm.getAuthTag())].join('.');
}

/** Open a JWE made by sealWithPassword; undefined when the password is wrong (or the JWE damaged). */
export function openWithPassword(jwe: string, password: string): string | undefined {
  try {
    const [header, wrapped, iv, ciphertext, tag] = jwe.split('.') as [string, string, string, string, string];
    const h = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg: string; p2c: number; p2s: string };
    const unwrap = crypto.createDecipheriv('id-aes128-wrap', pbes2Key(password, h.alg, Buffer.from(h.p2s, 'base64url'), h.p2c), KW_IV);
    const cek = Buffer.concat([unwrap.update(Buffer.from(wrapped, 'base64url')), unwrap.final()]);
    const gcm = crypto.createDecipheriv('aes-256-gcm', cek, Buffer.from(iv, 'base64url'));
    gcm.setAAD(Buffer.from(header));
    gcm.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([gcm.update(Buffer.from(ciphertext, 'base64url')), gcm.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

function jwkProvisioner(name: string, password: string): Provisioner {
  const jwk = newEcKey().export({ format: 'jwk' }) as unknown as Jwk;
  const kid = thumbprint(jwk);
  const publicKey = { use: 'sig', kty: jwk.kty, kid, crv: jwk.crv, alg: 'ES256', x: jwk.x, y: jwk.y };
  const encryptedKey = sealWithPassword(JSON.stringify({ ...publicKey, d: jwk.d }), password);
  return { type: 'JWK', name, key: publicKey, encryptedKey };
}

// ---------------------------------------------------------------- the CA directory

export interface InitOptions {
  name: string;
  dns: string[];
  address: string;
  provisioner: string;
  password: string;
  provisionerPassword: string;
  /** STEPPATH as the CA's own host sees it (what ca.json and defaults.json name). */
  steppath: string;
  caUrl?: string;
}

export interface InitResult {
  rootPem: string;
  fingerprint: string;
}

export function caConfigPath(dir: string): string {
  return path.join(dir, LAYOUT.caConfig);
}

export function isInitialised(dir: string): boolean {
  return fs.existsSync(caConfigPath(dir));
}

/** `step ca init` into `dir` (a STEPPATH): refuses when config/ca.json exists. */
export function initCa(dir: string, options: InitOptions): InitResult {
  const shown = (rel: string) => path.posix.join(options.steppath, rel);
  if (isInitialised(dir)) throw new StepFailure(`open ${shown(LAYOUT.caConfig)}: file already exists`);
  mkdirMode(dir, 0o700);
  for (const sub of ['certs', 'config', LAYOUT.db]) mkdirMode(path.join(dir, sub), 0o700);
  mkdirMode(path.join(dir, 'secrets'), 0o700);

  const rootKey = newEcKey();
  const intermediateKey = newEcKey();
  const { rootPem, intermediatePem } = withScratch((scratch) => {
    fs.writeFileSync(path.join(scratch, 'openssl.cnf'), OPENSSL_CONFIG);
    fs.writeFileSync(path.join(scratch, 'root.key'), encryptedKeyPem(rootKey, options.password), { mode: 0o600 });
    fs.writeFileSync(path.join(scratch, 'intermediate.key'), encryptedKeyPem(intermediateKey, options.password), { mode: 0o600 });
    const common = ['-config', 'openssl.cnf', '-sha256', '-days', String(ROOT_VALIDITY_DAYS), '-passin', 'stdin'];
    openssl(['req', '-new', '-x509', '-key', 'root.key', '-subj', subjectArg([['O', options.name], ['CN', `${options.name} Root CA`]]), '-extensions', 'root', '-out', 'root.crt', ...common], scratch, options.password);
    openssl(
      ['req', '-new', '-x509', '-key', 'intermediate.key', '-CA', 'root.crt', '-CAkey', 'root.key', '-subj', subjectArg([['O', options.name], ['CN', `${options.name} Intermediate CA`]]), '-extensions', 'intermediate', '-out', 'intermediate.crt', ...common],
      scratch,
      options.password,
    );
    return { rootPem: fs.readFileSync(path.join(scratch, 'root.crt'), 'utf8'), intermediatePem: fs.readFileSync(path.join(scratch, 'intermediate.crt'), 'utf8') };
  });

  writeFileWithMode(path.join(dir, LAYOUT.rootKey), encryptedKeyPem(rootKey, options.password), 0o600);
  writeFileWithMode(path.join(dir, LAYOUT.intermediateKey), encryptedKeyPem(intermediateKey, options.password), 0o600);
  writeFileWithMode(path.join(dir, LAYOUT.rootCert), rootPem, 0o600);
  writeFileWithMode(path.join(dir, LAYOUT.intermediateCert), intermediatePem, 0o600);

  const fingerprint = fingerprintOf(rootPem);
  const config: CaConfig = {
    root: shown(LAYOUT.rootCert),
    federatedRoots: null,
    crt: shown(LAYOUT.intermediateCert),
    key: shown(LAYOUT.intermediateKey),
    address: options.address,
    insecureAddress: '',
    dnsNames: options.dns,
    logger: { format: 'text' },
    db: { type: 'badgerv2', dataSource: shown(LAYOUT.db), badgerFileLoadingMode: '' },
    authority: { provisioners: [jwkProvisioner(options.provisioner, options.provisionerPassword)] },
    tls: {
      cipherSuites: ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
      minVersion: 1.2,
      maxVersion: 1.3,
      renegotiation: false,
    },
    commonName: 'Step Online CA',
  };
  writeCaConfig(dir, config);
  const defaults: Record<string, string> = {
    'ca-url': options.caUrl ?? `https://${options.dns[0] ?? 'localhost'}${options.address.startsWith(':') ? options.address : `:${options.address.split(':').pop()}`}`,
    'ca-config': shown(LAYOUT.caConfig),
    fingerprint,
    root: shown(LAYOUT.rootCert),
  };
  writeFileWithMode(path.join(dir, LAYOUT.defaults), `${JSON.stringify(defaults, null, '\t')}\n`, 0o644);
  return { rootPem, fingerprint };
}

export function readCaConfig(dir: string, shown = caConfigPath(dir)): CaConfig {
  let text: string;
  try {
    text = fs.readFileSync(caConfigPath(dir), 'utf8');
  } catch {
    throw new StepFailure(`open ${shown}: no such file or directory`);
  }
  try {
    return JSON.parse(text) as CaConfig;
  } catch (error) {
    throw new StepFailure(`error parsing ${shown}: ${(error as Error).message}`);
  }
}

export function writeCaConfig(dir: string, config: CaConfig): void {
  let mode = 0o600;
  try {
    mode = fs.statSync(caConfigPath(dir)).mode & 0o777;
  } catch {
    // new file
  }
  writeFileWithMode(caConfigPath(dir), `${JSON.stringify(config, null, '\t')}\n`, mode);
}

export function provisioners(dir: string): Provisioner[] {
  return readCaConfig(dir).authority.provisioners ?? [];
}

/** Add a provisioner to ca.json; refuses a name already there (as step does). */
export function addProvisioner(dir: string, provisioner: Provisioner, shown?: string): void {
  const config = readCaConfig(dir, shown);
  const list = config.authority.provisioners ?? [];
  if (list.some((p) => p.name === provisioner.name)) throw new StepFailure(`provisioner with name ${provisioner.name} already exists`);
  config.authority.provisioners = [...list, provisioner];
  writeCaConfig(dir, config);
}

export function rootPemOf(dir: string): string {
  try {
    return fs.readFileSync(path.join(dir, LAYOUT.rootCert), 'utf8');
  } catch {
    throw new StepFailure(`the CA at ${dir} has no root certificate`);
  }
}

/** The JWK provisioner `name`, checked against the password its key is sealed with. */
export function authorizeProvisioner(dir: string, name: string | undefined, password: string): Provisioner {
  const jwks = provisioners(dir).filter((p) => p.type === 'JWK');
  let provisioner: Provisioner | undefined;
  if (name === undefined) {
    if (jwks.length !== 1) throw new StepFailure(`the CA has ${jwks.length} JWK provisioners; select one with '--provisioner'`);
    provisioner = jwks[0];
  } else {
    provisioner = jwks.find((p) => p.name === name);
  }
  if (!provisioner) throw new StepFailure(`provisioner not found: no JWK provisioner named '${name}'`);
  if (!provisioner.encryptedKey || openWithPassword(provisioner.encryptedKey, password) === undefined) {
    throw new StepFailure(`error decrypting the key of provisioner '${provisioner.name}': invalid password`);
  }
  return provisioner;
}

/** The longest X.509 leaf the provisioner may ask for (its claims, the authority's, else step-ca's 24h). */
export function maxLeafDurationMs(dir: string, provisioner: Provisioner): number {
  const config = readCaConfig(dir);
  const claim = ((provisioner.claims as Record<string, unknown> | undefined)?.maxTLSCertDuration ?? config.authority.claims?.maxTLSCertDuration) as string | undefined;
  const parsed = claim === undefined ? undefined : parseDuration(claim);
  return parsed ?? DEFAULT_MAX_TLS_DURATION_MS;
}

export type SanKind = 'DNS' | 'IP' | 'email' | 'URI';

/** How a SAN value lands in the certificate: by its syntax, as step decides. */
export function sanKind(value: string): SanKind {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(value) || (value.includes(':') && /^[0-9a-fA-F:.]+$/.test(value))) return 'IP';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return 'URI';
  if (value.includes('@')) return 'email';
  return 'DNS';
}

export interface LeafRequest {
  subject: string;
  sans: string[];
  notBefore: Date;
  notAfter: Date;
}

export interface Leaf {
  /** Leaf then intermediate, PEM. */
  bundle: string;
  /** SEC1 PEM, unencrypted (what `step ca certificate` writes). */
  keyPem: string;
}

/**
 * Sign a leaf with the CA's intermediate, as the running step-ca would: it
 * unlocks its key with $STEPPATH/ca_password.txt (the file its unit passes).
 */
export function issueLeaf(dir: string, request: LeafRequest): Leaf {
  const passwordFile = path.join(dir, LAYOUT.caPassword);
  if (!fs.existsSync(passwordFile)) throw new StepFailure(`the CA is not running: step-ca cannot start without ${LAYOUT.caPassword}`);
  const caPassword = readPasswordFile(passwordFile, LAYOUT.caPassword);
  const sans = request.sans.length > 0 ? request.sans : [request.subject];
  for (const san of sans) if (/[,\s]/.test(san) || san === '') throw new StepFailure(`invalid SAN '${san}'`);
  const key = newEcKey();
  const keyPem = key.export({ type: 'sec1', format: 'pem' }) as string;
  const intermediatePem = fs.readFileSync(path.join(dir, LAYOUT.intermediateCert), 'utf8');
  const leafPem = withScratch((scratch) => {
    const sanLines = sans.map((san, i) => `${sanKind(san)}.${i + 1} = ${san}`).join('\n');
    fs.writeFileSync(path.join(scratch, 'openssl.cnf'), `${OPENSSL_CONFIG}[sans]\n${sanLines}\n`);
    fs.writeFileSync(path.join(scratch, 'index.txt'), '');
    fs.mkdirSync(path.join(scratch, 'issued'));
    fs.writeFileSync(path.join(scratch, 'leaf.key'), keyPem, { mode: 0o600 });
    const subject = subjectArg([['CN', request.subject]]);
    openssl(['req', '-new', '-config', 'openssl.cnf', '-key', 'leaf.key', '-subj', subject, '-out', 'leaf.csr'], scratch);
    openssl(
      [
        'ca', '-batch', '-config', 'openssl.cnf', '-in', 'leaf.csr', '-out', 'leaf.crt', '-notext', '-subj', subject,
        '-cert', path.join(dir, LAYOUT.intermediateCert), '-keyfile', path.join(dir, LAYOUT.intermediateKey), '-passin', 'stdin',
        '-startdate', opensslTime(request.notBefore), '-enddate', opensslTime(request.notAfter), '-extensions', 'leaf',
      ],
      scratch,
      caPassword,
    );
    return fs.readFileSync(path.join(scratch, 'leaf.crt'), 'utf8');
  });
  return { bundle: `${pemCertificates(leafPem)[0]}${pemCertificates(intermediatePem)[0]}`, keyPem };
}

// ---------------------------------------------------------------- times

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3600_000 };

/** A Go duration (`24h`, `1h30m`, `-5m`, `90s`) in ms; undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^([+-])?((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(text.trim());
  if (!m) return text.trim() === '0' ? 0 : undefined;
  let total = 0;
  for (const part of m[2]!.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(part[1]) * UNIT_MS[part[2]!]!;
  return m[1] === '-' ? -total : total;
}

/** A --not-before/--not-after value: a duration from `now`, or an RFC 3339 time. */
export function parseTimeFlag(flag: string, text: string, now: number): Date {
  const duration = parseDuration(text);
  if (duration !== undefined) return new Date(now + duration);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    const at = new Date(text);
    if (!Number.isNaN(at.getTime())) return at;
  }
  throw new StepFailure(`flag '--${flag}' value '${text}' is not a valid time or duration (e.g. 24h, 90m, 2026-12-01T00:00:00Z)`);
}

export function formatDuration(ms: number): string {
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}

// ---------------------------------------------------------------- the record

export function recordPath(root: string): string {
  return path.join(root, RECORD_FILE);
}

export function readRecord(root: string): CaRecord | undefined {
  return readJson<CaRecord | undefined>(recordPath(root), undefined);
}

export function writeRecord(root: string, record: CaRecord): void {
  withStateLock(root, () => atomicWrite(recordPath(root), `${JSON.stringify(record, null, 2)}\n`));
}

/** The record's view of the provisioners in ca.json (password digests kept for those it already knew). */
export function refreshRecordProvisioners(root: string, dir: string, known: ProvisionerRecord[] = []): void {
  const record = readRecord(root);
  if (!record || path.resolve(record.ca_dir) !== path.resolve(dir)) return;
  record.provisioners = provisioners(dir).map((p) => {
    const before = [...known, ...record.provisioners].find((k) => k.name === p.name && k.type === p.type);
    return before?.password_sha256 ? { name: p.name, type: p.type, password_sha256: before.password_sha256 } : { name: p.name, type: p.type };
  });
  writeRecord(root, record);
}

/** Whether the guest holding the CA exists and runs in the simulator's state. */
export function guestRunning(root: string, guest: string): boolean {
  const p = paths(root);
  const configured = fs.existsSync(path.join(p.lxcDir, `${guest}.conf`)) || fs.existsSync(path.join(p.qemuDir, `${guest}.conf`));
  return configured && loadRuntime(root).guests[guest]?.status === 'running';
}
