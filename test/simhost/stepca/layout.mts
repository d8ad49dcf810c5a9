// What the CA is made of: where `step ca init` puts things, the limits
// step-ca applies, the shapes of ca.json and of <state>/stepca.json, and how
// a step failure is reported.

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
