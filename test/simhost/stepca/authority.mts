// The CA directory (a STEPPATH): `step ca init`, ca.json and its
// provisioners, and the checks made before signing.

import fs from 'node:fs';
import path from 'node:path';

import { parseDuration } from './durations.mts';
import { fingerprintOf, mkdirMode, writeFileWithMode } from './files.mts';
import { jwkProvisioner, openWithPassword } from './jwk.mts';
import { DEFAULT_MAX_TLS_DURATION_MS, LAYOUT, StepFailure, type CaConfig, type Provisioner } from './layout.mts';
import { encryptedKeyPem, newEcKey, openssl, OPENSSL_CONFIG, subjectArg, withScratch } from './openssl.mts';

const ROOT_VALIDITY_DAYS = 3650;

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
