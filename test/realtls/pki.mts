// A two-tier test PKI made with the real openssl, shaped like Step-CA's:
// root -> intermediate (pathlen 0) -> leaves. Server leaves carry serverAuth,
// client leaves serverAuth+clientAuth (Step-CA's default template), and a
// leaf's chain file holds the leaf and the intermediate, which is what a TLS
// peer needs when it trusts only the root. A second, unrelated root with the
// same subject name makes "another CA" certificates that differ only in keys.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Issued {
  name: string;
  cert: string;
  key: string;
  /** Leaf followed by its intermediate (the root CA's own files: just the cert). */
  chain: string;
}

export interface LeafSpec {
  commonName: string;
  /** DNS names and IP addresses; IPs are recognised by their shape. */
  sans?: string[];
  /** 'server' = serverAuth, 'client' = serverAuth+clientAuth (like Step-CA). */
  usage: 'server' | 'client';
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const CA_EXT = [
  'basicConstraints=critical,CA:TRUE,pathlen:0',
  'keyUsage=critical,keyCertSign,cRLSign',
  'subjectKeyIdentifier=hash',
  'authorityKeyIdentifier=keyid',
];

export class TestCa {
  readonly dir: string;
  readonly root: Issued;
  readonly intermediate: Issued;
  private readonly openssl: string;

  /** A root and an intermediate under `dir`, files prefixed with `prefix`. */
  constructor(dir: string, prefix: string, rootSubject: string, openssl = 'openssl') {
    this.dir = dir;
    this.openssl = openssl;
    fs.mkdirSync(dir, { recursive: true });
    const rootKey = this.key(`${prefix}-root`);
    const rootCert = path.join(dir, `${prefix}-root.crt`);
    this.ssl([
      'req', '-x509', '-new', '-key', rootKey, '-subj', `/CN=${rootSubject}`, '-days', '2', '-sha256', '-out', rootCert,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    this.root = { name: `${prefix}-root`, cert: rootCert, key: rootKey, chain: rootCert };
    this.intermediate = this.sign(`${prefix}-intermediate`, `/CN=${rootSubject} Intermediate`, CA_EXT, this.root);
    this.intermediate.chain = this.intermediate.cert;
  }

  /** A leaf signed by the intermediate. */
  issue(name: string, spec: LeafSpec): Issued {
    const eku = spec.usage === 'client' ? 'serverAuth,clientAuth' : 'serverAuth';
    const ext = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', `extendedKeyUsage=${eku}`, 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid'];
    const sans = spec.sans ?? [spec.commonName];
    if (sans.length > 0) ext.push(`subjectAltName=${sans.map((san) => (IPV4.test(san) ? `IP:${san}` : `DNS:${san}`)).join(',')}`);
    const leaf = this.sign(name, `/CN=${spec.commonName}`, ext, this.intermediate);
    fs.writeFileSync(leaf.chain, fs.readFileSync(leaf.cert, 'utf8') + fs.readFileSync(this.intermediate.cert, 'utf8'));
    return leaf;
  }

  /** `openssl verify` of a leaf against this root through the intermediate. */
  verifies(leaf: Issued): boolean {
    try {
      this.ssl(['verify', '-CAfile', this.root.cert, '-untrusted', this.intermediate.cert, leaf.cert]);
      return true;
    } catch {
      return false;
    }
  }

  private key(name: string): string {
    const file = path.join(this.dir, `${name}.key`);
    this.ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
    fs.chmodSync(file, 0o600);
    return file;
  }

  private sign(name: string, subject: string, ext: string[], issuer: Issued): Issued {
    const key = this.key(name);
    const csr = path.join(this.dir, `${name}.csr`);
    const extFile = path.join(this.dir, `${name}.ext`);
    const cert = path.join(this.dir, `${name}.crt`);
    this.ssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
    fs.writeFileSync(extFile, `${ext.join('\n')}\n`);
    this.ssl(['x509', '-req', '-in', csr, '-CA', issuer.cert, '-CAkey', issuer.key, '-CAcreateserial', '-days', '2', '-sha256', '-extfile', extFile, '-out', cert]);
    return { name, cert, key, chain: path.join(this.dir, `${name}-chain.crt`) };
  }

  private ssl(args: string[]): void {
    execFileSync(this.openssl, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  }
}

/** A self-signed server certificate (pebble's own HTTPS endpoint). */
export function selfSigned(dir: string, name: string, sans: string[], openssl = 'openssl'): { cert: string; key: string } {
  fs.mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    openssl,
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${sans[0] ?? name}`,
      '-addext', `subjectAltName=${sans.map((san) => (IPV4.test(san) ? `IP:${san}` : `DNS:${san}`)).join(',')}`,
      '-keyout', key, '-out', cert,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 },
  );
  return { cert, key };
}

export interface GatewayPki {
  ca: TestCa;
  /** Another CA whose root has the same subject name. */
  rogueCa: TestCa;
  /** The gateway's public certificate (nginx.<domain>, *.<domain>). */
  server: Issued;
  /** The client certificate nginx presents to the mesh. */
  client: Issued;
  /** Traefik's mesh certificate: the DNS name only, no IP SAN. */
  mesh: Issued;
  /** Traefik's websecure certificate for a passed-through service. */
  websecure: Issued;
  /** Same subject names as `client` and `mesh`, issued by `rogueCa`. */
  rogueClient: Issued;
  rogueMesh: Issued;
}

/** Every certificate the gateway tests use, in `dir` (the gateway's ssl directory). */
export function gatewayPki(dir: string, domain: string, openssl = 'openssl'): GatewayPki {
  const ca = new TestCa(dir, 'phoenix', 'Phoenix Test Root CA', openssl);
  const rogueCa = new TestCa(dir, 'rogue', 'Phoenix Test Root CA', openssl);
  return {
    ca,
    rogueCa,
    server: ca.issue('gateway-server', { commonName: `nginx.${domain}`, sans: [`nginx.${domain}`, `*.${domain}`], usage: 'server' }),
    client: ca.issue('gateway-client', { commonName: 'nginx-gateway-client', sans: [], usage: 'client' }),
    mesh: ca.issue('traefik-mesh', { commonName: `traefik.${domain}`, usage: 'server' }),
    websecure: ca.issue('traefik-websecure', { commonName: `whoami.${domain}`, usage: 'server' }),
    rogueClient: rogueCa.issue('rogue-client', { commonName: 'nginx-gateway-client', sans: [], usage: 'client' }),
    rogueMesh: rogueCa.issue('rogue-mesh', { commonName: `traefik.${domain}`, usage: 'server' }),
  };
}
