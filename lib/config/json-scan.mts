// A strict JSON reader that keeps positions, for the errors JSON.parse cannot
// give: where a syntax error is, which keys repeat, and nesting too deep.

import { MAX_MANIFEST_DEPTH } from './files.mts';
import { escapePointer } from './json-values.mts';

export interface DuplicateKey {
  pointer: string;
  key: string;
  offset: number;
  firstOffset: number;
}

export interface JsonScan {
  error?: { offset: number; message: string; pointer: string; tooDeep: boolean };
  duplicates: DuplicateKey[];
}

class JsonSyntaxError {
  readonly offset: number;
  readonly message: string;
  readonly pointer: string;
  readonly tooDeep: boolean;
  constructor(offset: number, message: string, pointer: string, tooDeep = false) {
    this.offset = offset;
    this.message = message;
    this.pointer = pointer;
    this.tooDeep = tooDeep;
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STRING_RUN = /[^"\\\u0000-\u001f]*/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * A strict JSON reader that keeps positions: where a syntax error is, and
 * which keys repeat (JSON.parse reports neither usefully). Nesting deeper
 * than MAX_MANIFEST_DEPTH is an error, so the recursion here (and in every
 * later walk of the document) stays small.
 */
export function scanJson(text: string): JsonScan {
  const duplicates: DuplicateKey[] = [];
  const length = text.length;
  let pos = 0;
  let depth = 0;
  // The pointer of the value being read, for the error message.
  let where = '';
  const fail = (message: string, at: number = pos): never => {
    throw new JsonSyntaxError(at, message, where);
  };
  const unexpected = (what: string): never => {
    if (pos >= length) return fail(`unexpected end of file, expected ${what}`);
    const c = text[pos] as string;
    if (c === '/') return fail('comments are not allowed in JSON');
    if (c === "'") return fail('strings must use double quotes');
    return fail(`expected ${what}, found ${JSON.stringify(c)}`);
  };
  const space = (): void => {
    while (pos < length) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
  };
  // Only keys are decoded; values are just stepped over.
  const string = (decode: boolean): string => {
    const start = pos;
    pos++;
    let out = '';
    for (;;) {
      STRING_RUN.lastIndex = pos;
      STRING_RUN.test(text);
      if (decode) out += text.slice(pos, STRING_RUN.lastIndex);
      pos = STRING_RUN.lastIndex;
      if (pos >= length) return fail('unterminated string', start);
      const c = text[pos] as string;
      if (c === '"') {
        pos++;
        return out;
      }
      if (c === '\\') {
        const e = text[pos + 1] ?? '';
        if (e === 'u') {
          const hex = text.slice(pos + 2, pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape in a string');
          out += String.fromCharCode(parseInt(hex, 16));
          pos += 6;
        } else if (Object.hasOwn(ESCAPES, e)) {
          out += ESCAPES[e];
          pos += 2;
        } else {
          fail(`invalid escape \\${e} in a string`);
        }
        continue;
      }
      if (c === '\n') return fail('line break inside a string (missing closing quote?)', start);
      return fail('control character inside a string');
    }
  };
  const value = (pointer: string): void => {
    where = pointer;
    space();
    const c = text[pos];
    if (c === '{' || c === '[') {
      if (++depth > MAX_MANIFEST_DEPTH) throw new JsonSyntaxError(pos, `nested more than ${MAX_MANIFEST_DEPTH} levels deep`, pointer, true);
      if (c === '{') object(pointer);
      else array(pointer);
      depth--;
      where = pointer;
      return;
    }
    if (c === '"') {
      string(false);
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return;
      }
    }
    NUMBER.lastIndex = pos;
    if (NUMBER.test(text)) {
      pos = NUMBER.lastIndex;
      return;
    }
    unexpected('a value');
  };
  const object = (pointer: string): void => {
    pos++;
    const seen = new Map<string, number>();
    space();
    if (text[pos] === '}') {
      pos++;
      return;
    }
    for (;;) {
      space();
      if (text[pos] === '}') fail('trailing comma before "}"');
      if (text[pos] !== '"') unexpected('a key in double quotes');
      const at = pos;
      const key = string(true);
      space();
      if (text[pos] !== ':') unexpected(`":" after key ${JSON.stringify(key)}`);
      pos++;
      const child = `${pointer}/${escapePointer(key)}`;
      const first = seen.get(key);
      if (first === undefined) seen.set(key, at);
      else duplicates.push({ pointer: child, key, offset: at, firstOffset: first });
      value(child);
      where = pointer;
      space();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === '}') {
        pos++;
        return;
      }
      unexpected('"," or "}" after a value');
    }
  };
  const array = (pointer: string): void => {
    pos++;
    space();
    if (text[pos] === ']') {
      pos++;
      return;
    }
    for (let index = 0; ; index++) {
      space();
      if (text[pos] === ']') fail('trailing comma before "]"');
      value(`${pointer}/${index}`);
      where = pointer;
      space();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === ']') {
        pos++;
        return;
      }
      unexpected('"," or "]" after a value');
    }
  };
  try {
    value('');
    space();
    if (pos < length) fail('unexpected text after the end of the JSON document');
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { error: { offset: err.offset, message: err.message, pointer: err.pointer, tooDeep: err.tooDeep }, duplicates };
    throw err;
  }
  return { duplicates };
}

export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
