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
//
// The pieces are in stepca/: layout, files, openssl, jwk, authority, leaf,
// durations, record.

export {
  BACKDATE_MS,
  DEFAULT_MAX_TLS_DURATION_MS,
  LAYOUT,
  RECORD_FILE,
  StepFailure,
  type CaConfig,
  type CaRecord,
  type Provisioner,
  type ProvisionerRecord,
} from './stepca/layout.mts';
export { fingerprintOf, pemCertificates, readPasswordFile, sha256Hex, writeFileWithMode } from './stepca/files.mts';
export { openWithPassword, sealWithPassword } from './stepca/jwk.mts';
export {
  addProvisioner,
  authorizeProvisioner,
  caConfigPath,
  initCa,
  isInitialised,
  maxLeafDurationMs,
  provisioners,
  readCaConfig,
  rootPemOf,
  writeCaConfig,
  type InitOptions,
  type InitResult,
} from './stepca/authority.mts';
export { issueLeaf, sanKind, type Leaf, type LeafRequest, type SanKind } from './stepca/leaf.mts';
export { formatDuration, parseDuration, parseTimeFlag } from './stepca/durations.mts';
export { guestRunning, readRecord, recordPath, refreshRecordProvisioners, writeRecord } from './stepca/record.mts';
