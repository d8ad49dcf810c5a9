// Proxmox property strings (`a=1,b=2`, or `volume,mp=/x` with a default
// key), read into ordered maps and written back.

/** `a=1,b=2` (or `volume,mp=/x` with a default key) → ordered map. */
export function parseProps(text: string, defaultKey?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (defaultKey !== undefined && out[defaultKey] === undefined) out[defaultKey] = part;
      else out[part] = '';
      continue;
    }
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

export function formatProps(props: Record<string, string | undefined>, defaultKey?: string): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    parts.push(key === defaultKey ? value : `${key}=${value}`);
  }
  return parts.join(',');
}
