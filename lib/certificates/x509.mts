// Reading a certificate to decide whether it must be renewed. The decision
// comes from the files themselves: the certificate parses, its key matches,
// it is not about to expire, it names exactly the wanted DNS and IP SANs
// (as sets: the bash compared DNS names only, so any certificate with an IP
// SAN was reissued on every run), it carries the chain (leaf and
// intermediate) and that chain ends at the current root CA (after a CA
// rebuild every old certificate is worthless even if it has not expired).

import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import net from 'node:net';

export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface Expectation {
  commonName: string;
  /** DNS names and IP addresses the certificate must name, nothing more. */
  sans: readonly string[];
  certType: 'server' | 'client';
  /** Renew when fewer than this many ms of validity are left. */
  renewBeforeMs: number;
}

export interface Inspection {
  /** Why the certificate must be renewed; empty when it is fine. */
  reasons: string[];
  /** When the leaf expires (when it could be read). */
  notAfter?: Date;
  /** SHA-256 of the leaf, colon-free lower-case hex. */
  fingerprint?: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, in file order. Throws when one does not parse. */
export function parseBundle(pem: string): X509Certificate[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => new X509Certificate(block));
}

/** A SAN as Phoenix compares it: `DNS:name` lower-cased, `IP:address` in canonical form. */
export function sanKey(value: string): string {
  const ip = canonicalIp(value);
  return ip === undefined ? `DNS:${value.toLowerCase()}` : `IP:${ip}`;
}

/** IPv4 as is; IPv6 expanded to eight lower-case groups; undefined for a name. */
export function canonicalIp(value: string): string | undefined {
  const kind = net.isIP(value);
  if (kind === 4) return value;
  if (kind !== 6) return undefined;
  let text = value.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => g.padStart(4, '0')).join(':');
}

/**
 * The DNS and IP SANs of a certificate, as sanKey()s. Node prints them as
 * `DNS:a, IP Address:1.2.3.4`; values with unusual characters come quoted.
 * Other kinds (email, URI) are kept under their own label so they count as
 * a difference.
 */
export function certificateSans(cert: X509Certificate): string[] {
  const text = cert.subjectAltName;
  if (!text) return [];
  const out: string[] = [];
  for (const item of splitSanList(text)) {
    const colon = item.indexOf(':');
    if (colon === -1) continue;
    const label = item.slice(0, colon);
    let value = item.slice(colon + 1);
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        // keep the raw text; it will simply not match
      }
    }
    if (label === 'DNS') out.push(`DNS:${value.toLowerCase()}`);
    else if (label === 'IP Address') out.push(`IP:${canonicalIp(value) ?? value.toLowerCase()}`);
    else out.push(`${label}:${value}`);
  }
  return out;
}

function splitSanList(text: string): string[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '"' && text[i - 1] !== '\\') quoted = !quoted;
    if (c === ',' && !quoted) {
      items.push(current.trim());
      current = '';
      continue;
    }
    current += c;
  }
  if (current.trim() !== '') items.push(current.trim());
  return items;
}

export function commonNameOf(cert: X509Certificate): string | undefined {
  for (const line of cert.subject.split('\n')) {
    if (line.startsWith('CN=')) return line.slice(3);
  }
  return undefined;
}

/** Compare two SAN sets; the text names what is missing and what is extra. */
export function sanDifference(wanted: readonly string[], actual: readonly string[]): string | undefined {
  const want = new Set(wanted.map(sanKey));
  const have = new Set(actual);
  const missing = [...want].filter((s) => !have.has(s)).sort();
  const extra = [...have].filter((s) => !want.has(s)).sort();
  if (missing.length === 0 && extra.length === 0) return undefined;
  const parts: string[] = [];
  if (missing.length > 0) parts.push(`missing ${missing.join(', ')}`);
  if (extra.length > 0) parts.push(`not wanted ${extra.join(', ')}`);
  return `SANs differ from the manifest: ${parts.join('; ')}`;
}

export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 120_000) return `${Math.round(ms / 1000)}s`;
  if (abs < 2 * 3_600_000) return `${Math.round(ms / 60_000)}m`;
  if (abs < 2 * 86_400_000) return `${Math.round((ms / 3_600_000) * 10) / 10}h`;
  return `${Math.round((ms / 86_400_000) * 10) / 10}d`;
}

function keyMatches(cert: X509Certificate, key: KeyObject): boolean {
  const a = cert.publicKey.export({ type: 'spki', format: 'der' });
  const b = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return a.equals(b);
}

/** Whether `child` was issued and signed by `parent`. */
export function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/**
 * Everything that makes this certificate unfit. `certPem`/`keyPem` undefined
 * mean the file is missing; `root` is the current root CA.
 */
export function inspect(certPem: string | undefined, keyPem: string | undefined, root: X509Certificate, expect: Expectation, now = new Date()): Inspection {
  if (certPem === undefined) return { reasons: ['the certificate file does not exist'] };
  let chain: X509Certificate[];
  try {
    chain = parseBundle(certPem);
  } catch (err) {
    return { reasons: [`the certificate file does not parse: ${(err as Error).message}`] };
  }
  const leaf = chain[0];
  if (!leaf) return { reasons: ['the certificate file holds no PEM certificate'] };
  const reasons: string[] = [];
  const notAfter = new Date(leaf.validTo);
  const notBefore = new Date(leaf.validFrom);
  const left = notAfter.getTime() - now.getTime();
  if (left <= 0) reasons.push(`it expired ${formatDuration(-left)} ago (${notAfter.toISOString()})`);
  else if (left < expect.renewBeforeMs) reasons.push(`it expires in ${formatDuration(left)}, within the renewal window of ${formatDuration(expect.renewBeforeMs)}`);
  if (notBefore.getTime() > now.getTime() + 300_000) reasons.push(`it is not valid before ${notBefore.toISOString()}`);

  const cn = commonNameOf(leaf);
  if (cn !== expect.commonName) reasons.push(`its subject is CN=${cn ?? '(none)'}, the manifest wants ${expect.commonName}`);
  const sanProblem = sanDifference(expect.sans, certificateSans(leaf));
  if (sanProblem) reasons.push(sanProblem);
  const usage = leaf.keyUsage ?? [];
  const wantedUsage = expect.certType === 'client' ? OID_CLIENT_AUTH : OID_SERVER_AUTH;
  if (usage.length > 0 && !usage.includes(wantedUsage)) reasons.push(`it lacks the ${expect.certType === 'client' ? 'clientAuth' : 'serverAuth'} extended key usage`);

  const intermediates = chain.slice(1);
  if (intermediates.length === 0) reasons.push('the file holds the leaf only; the intermediate CA certificate must follow it');
  else if (!chainEndsAt(leaf, intermediates, root)) reasons.push('it does not chain to the current root CA (was the CA rebuilt?)');

  if (keyPem === undefined) reasons.push('the key file does not exist');
  else {
    try {
      if (!keyMatches(leaf, createPrivateKey(keyPem))) reasons.push('the key file does not hold the key of this certificate');
    } catch (err) {
      reasons.push(`the key file does not parse: ${(err as Error).message}`);
    }
  }
  return { reasons, notAfter, fingerprint: leaf.fingerprint256.replace(/:/g, '').toLowerCase() };
}

/** leaf ← intermediates[0] ← … ← root, each link signed by the next. */
function chainEndsAt(leaf: X509Certificate, intermediates: readonly X509Certificate[], root: X509Certificate): boolean {
  let child = leaf;
  for (const parent of intermediates) {
    if (!issuedBy(child, parent)) return false;
    child = parent;
  }
  return issuedBy(child, root);
}
