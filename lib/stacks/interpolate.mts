// Compose-style variable substitution for a stack's manifest variables, done
// on the host before `docker stack deploy` sees the file.
//
// The bash ran `sed "s|\${NAME}|value|g"` over the file: a value holding `|`,
// `&` or `\` corrupted the file or the sed expression, only the `${NAME}`
// form was replaced, and every value was logged. Here
// the template is parsed YAML and this function works on one string scalar
// at a time, with the forms the compose format defines:
//
//   $NAME  ${NAME}  ${NAME:-default}  ${NAME-default}
//   ${NAME:?message}  ${NAME?message}  ${NAME:+alt}  ${NAME+alt}  $$
//
// Docker interpolates the file again when it deploys it, so a substituted
// value has each `$` doubled: the value reaches the container as written in
// the manifest, never re-read as a variable. Names the manifest does not
// define are left for docker to resolve (and reported).

export interface Interpolation {
  text: string;
  /** Manifest variables this string used. */
  used: string[];
  /** Names referenced without a manifest value and without a default. */
  unresolved: string[];
}

const REFERENCE = /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** A value made literal for docker's own interpolation pass. */
export function escapeForCompose(value: string): string {
  return value.replace(/\$/g, '$$$$');
}

export function interpolate(input: string, variables: ReadonlyMap<string, string>): Interpolation {
  const used = new Set<string>();
  const unresolved = new Set<string>();
  const text = input.replace(REFERENCE, (whole, dollar: string | undefined, braced: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
    if (dollar !== undefined) return whole; // `$$` stays an escaped dollar for docker
    const name = (braced ?? bare) as string;
    const value = variables.get(name);
    if (value === undefined) {
      // Docker applies a default itself; anything else would reach it unset.
      if (op !== '-' && op !== ':-' && op !== '+' && op !== ':+') unresolved.add(name);
      return whole;
    }
    used.add(name);
    switch (op) {
      case undefined:
      case '?':
      case '-':
        return escapeForCompose(value);
      case ':?':
        if (value === '') {
          unresolved.add(name);
          return whole;
        }
        return escapeForCompose(value);
      case ':-':
        return value === '' ? (arg ?? '') : escapeForCompose(value);
      case '+':
        return arg ?? '';
      case ':+':
        return value === '' ? '' : (arg ?? '');
      default:
        return whole;
    }
  });
  return { text, used: [...used], unresolved: [...unresolved] };
}
