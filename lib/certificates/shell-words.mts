// A post-renewal command is written in the manifest as one line, the way an
// operator types it, but Phoenix runs it as an argument vector without a
// shell (the bash `eval`ed it). This reads the line into words with
// the quoting rules a shell user expects (single quotes, double quotes,
// backslash) and refuses everything a shell would have interpreted: pipes,
// lists, redirections, substitutions, globs, comments. The command stays
// trusted input (it runs as root), but it can no longer mean more than it
// shows: `pct exec 101 -- sh -c '…'` still works, because the shell text is
// a quoted argument run inside the guest.

export class ShellWordsError extends Error {}

/** Characters a shell would act on when they appear unquoted. */
const UNQUOTED_SPECIAL = new Set(['|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', ']', '{', '}', '#', '!', '~']);

const NAMES: Record<string, string> = {
  '|': 'a pipe (|)',
  '&': 'a background or list operator (&)',
  ';': 'a command separator (;)',
  '<': 'a redirection (<)',
  '>': 'a redirection (>)',
  '(': 'a subshell or grouping ( ( )',
  ')': 'a subshell or grouping ( ) )',
  $: 'an expansion ($)',
  '`': 'a command substitution (`)',
  '*': 'a glob (*)',
  '?': 'a glob (?)',
  '[': 'a glob ([)',
  ']': 'a glob (])',
  '{': 'a brace expansion ({)',
  '}': 'a brace expansion (})',
  '#': 'a comment (#)',
  '!': 'a history or negation operator (!)',
  '~': 'a home-directory expansion (~)',
};

/**
 * Split a command line into words. Throws ShellWordsError naming the first
 * construct that needs a shell, with its column.
 */
export function splitShellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const fail = (message: string, at: number): never => {
    throw new ShellWordsError(`${message} at column ${at + 1}`);
  };
  while (i < line.length) {
    const c = line[i] as string;
    if (c === ' ' || c === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
      continue;
    }
    if (c === '\n' || c === '\r') fail('a line break (a second command)', i);
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) fail('an unterminated single quote', i);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= line.length) fail('an unterminated double quote', i);
        const d = line[j] as string;
        if (d === '"') break;
        if (d === '$' || d === '`') fail(`${NAMES[d]} inside double quotes (a shell would expand it; use single quotes for literal text)`, j);
        if (d === '\\') {
          const next = line[j + 1];
          if (next === undefined) fail('a backslash at the end of the line', j);
          // Inside double quotes a backslash only escapes these; elsewhere it stays.
          if (next === '"' || next === '\\' || next === '$' || next === '`') {
            word += next;
            j += 2;
            continue;
          }
          if (next === '\n') fail('a line break (a second command)', j + 1);
        }
        word += d;
        j++;
      }
      inWord = true;
      i = j + 1;
      continue;
    }
    if (c === '\\') {
      const next = line[i + 1];
      if (next === undefined) fail('a backslash at the end of the line', i);
      if (next === '\n') fail('a line break (a second command)', i + 1);
      word += next;
      inWord = true;
      i += 2;
      continue;
    }
    if (UNQUOTED_SPECIAL.has(c)) {
      // `~` and `#` only mean something at the start of a word; `=` and the rest are ordinary.
      if ((c === '~' || c === '#') && inWord) {
        word += c;
        i++;
        continue;
      }
      if (c === '!' && inWord) {
        word += c;
        i++;
        continue;
      }
      fail(`${NAMES[c]} outside quotes; post_renewal_command runs without a shell`, i);
    }
    word += c;
    inWord = true;
    i++;
  }
  if (inWord) words.push(word);
  return words;
}
