// The shapes of the stacks manifest and the certificate manifest.

// ---------------------------------------------------------------- stacks

export interface StackVariable {
  name: string;
  value: string;
}

export interface StackEnvironment {
  variables?: StackVariable[];
  files?: { source: string; destination_in_container: string }[];
  services?: Record<string, { traefik_labels?: string[] }>;
}

export interface StackConfig {
  description?: string;
  /** The compose template, relative to this manifest's directory (default stacks/<name>/docker-compose.yml; see lib/stacks/render.mts). */
  compose_file_path?: string;
  nginx_proxy?: { hostname?: string };
  environments: Record<string, StackEnvironment>;
}

export interface StacksManifest {
  $schema?: string;
  docker_stacks: Record<string, StackConfig>;
}

// ---------------------------------------------------------------- certificates

export interface CertificateEntry {
  common_name: string;
  sans?: string[];
  guest_id?: number;
  guest_type?: 'lxc' | 'vm';
  cert_type?: 'server' | 'client';
  cert_path: string;
  key_path: string;
  owner?: string;
  permissions?: string;
  include_ca?: boolean;
  /**
   * A command run on the host after the certificate changed: trusted input,
   * split into words and run without a shell (certificate-renewal-manager).
   */
  post_renewal_command?: string;
  /** Lifetime requested from the CA, a Go duration (default 24h). */
  not_after?: string;
  /** Renew when less than this is left, a Go duration (default 12h). */
  renew_before?: string;
  /** Where copies of the certificate, the key and the root CA go inside the guest. */
  guest_cert_path?: string;
  guest_key_path?: string;
  guest_ca_path?: string;
}

export type CertificateManifest = CertificateEntry[];
