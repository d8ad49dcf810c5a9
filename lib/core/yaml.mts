// The YAML library, loaded on first use: only the scripts that read or write
// YAML (Traefik's files, compose stacks, cloud-init) pay for it.
//
// `yaml` is a CommonJS package under its ESM entry. Imported by Node, the
// namespace carries its named exports; bundled into a chunk, the namespace
// holds the module as its default export. Both are answered here, so callers
// get the same object either way.

type YamlModule = typeof import('yaml');

let loaded: YamlModule | undefined;

export async function loadYaml(): Promise<YamlModule> {
  if (loaded) return loaded;
  const namespace = (await import('yaml')) as YamlModule & { default?: YamlModule };
  loaded = typeof namespace.parse === 'function' ? namespace : (namespace.default as YamlModule);
  return loaded;
}
