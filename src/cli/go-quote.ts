// Go's quoted strings, as etcdctl reads them with fmt's %q and strconv.Unquote: "..." with Go's escapes
// (which may give any bytes, so the result is a Buffer) or `...` raw.

const SIMPLE_ESCAPES: Record<string, number> = {
  a: 0x07,
  b: 0x08,
  f: 0x0c,
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  v: 0x0b,
  '\\': 0x5c,
  "'": 0x27,
  '"': 0x22,
};

export class QuoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuoteError';
  }
}

/** Where a Go quoted string starting at `s[start]` ends (the index after its closing quote), or -1. */
export function quotedEnd(s: string, start: number): number {
  const q = s[start];
  if (q === '`') {
    const end = s.indexOf('`', start + 1);
    return end < 0 ? -1 : end + 1;
  }
  if (q !== '"') return -1;
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i + 1;
  }
  return -1;
}

/** The bytes of a whole Go quoted string (quotes included). Throws QuoteError naming the problem. */
export function unquoteGo(quoted: string): Buffer {
  if (quoted.length >= 2 && quoted[0] === '`' && quoted[quoted.length - 1] === '`') {
    const body = quoted.slice(1, -1);
    if (body.includes('`')) throw new QuoteError(`a backquote inside ${quoted}`);
    return Buffer.from(body.replace(/\r/g, ''), 'utf8');
  }
  if (quoted.length < 2 || quoted[0] !== '"' || quoted[quoted.length - 1] !== '"') {
    throw new QuoteError(`${quoted} is not a quoted string`);
  }
  const body = quoted.slice(1, -1);
  const out: Buffer[] = [];
  let plain = '';
  const flush = (): void => {
    if (plain !== '') out.push(Buffer.from(plain, 'utf8'));
    plain = '';
  };
  const hex = (from: number, n: number): number => {
    const digits = body.slice(from, from + n);
    if (digits.length !== n || !/^[0-9a-fA-F]+$/.test(digits)) {
      throw new QuoteError(`bad escape \\${body[from - 1]}${digits} in ${quoted}`);
    }
    return parseInt(digits, 16);
  };
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '"') throw new QuoteError(`an unescaped quote inside ${quoted}`);
    if (c !== '\\') {
      plain += c;
      continue;
    }
    const e = body[++i];
    if (e === undefined) throw new QuoteError(`a backslash at the end of ${quoted}`);
    if (e in SIMPLE_ESCAPES && e !== "'") {
      flush();
      out.push(Buffer.from([SIMPLE_ESCAPES[e]]));
    } else if (e === 'x') {
      flush();
      out.push(Buffer.from([hex(i + 1, 2)]));
      i += 2;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      const cp = hex(i + 1, n);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) throw new QuoteError(`bad code point \\${e} in ${quoted}`);
      plain += String.fromCodePoint(cp);
      i += n;
    } else if (e >= '0' && e <= '7') {
      const digits = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(digits) || parseInt(digits, 8) > 255) {
        throw new QuoteError(`bad octal escape \\${digits} in ${quoted}`);
      }
      flush();
      out.push(Buffer.from([parseInt(digits, 8)]));
      i += 2;
    } else {
      throw new QuoteError(`unknown escape \\${e} in ${quoted}`);
    }
  }
  flush();
  return Buffer.concat(out);
}
