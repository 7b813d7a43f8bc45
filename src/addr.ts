/**
 * Address helpers: strict IPv4 parsing/formatting, IPv6 literal detection and
 * OVN's `host[:port]` syntax used in Load_Balancer `vips`.
 */

/** A parsed OVN VIP or backend: address family, address text and port (0 = none). */
export interface HostPort {
  family: 4 | 6;
  addr: string;
  port: number;
}

/**
 * Raised by {@link parseHostPort} and {@link parseIPv4}. `reason` is a predicate
 * phrase that reads after the quoted input, e.g. `is not a valid IPv4 address`,
 * so callers can build their own messages such as `backend "x" <reason>`.
 */
export class AddrParseError extends RangeError {
  /** The text that failed to parse. */
  readonly input: string;
  /** Predicate phrase describing the problem. */
  readonly reason: string;

  /**
   * @param input the text that failed to parse
   * @param reason predicate phrase, e.g. `is not a valid IPv4 address`
   */
  constructor(input: string, reason: string) {
    super(`${JSON.stringify(input)} ${reason}`);
    this.name = 'AddrParseError';
    this.input = input;
    this.reason = reason;
  }
}

const CHAR_0 = 0x30;
const CHAR_DOT = 0x2e;
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** Lowest and highest valid port of a VIP or backend. */
export const MIN_PORT = 1;
/** Highest valid port. */
export const MAX_PORT = 65535;

const CHAR_COLON = 0x3a;

/** Where the last readDecimal() / readIPv4() stopped (scratch: they run for every backend of every VIP and allocate nothing). */
let readEnd = 0;

/**
 * The decimal number of 1..maxDigits digits at s[i..] (no leading zero unless
 * it is 0), or -1; readEnd is left after its last digit.
 */
function readDecimal(s: string, i: number, maxDigits: number): number {
  const len = s.length;
  const start = i;
  let n = 0;
  while (i < len && i - start <= maxDigits) {
    const d = s.charCodeAt(i) - CHAR_0;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
    i++;
  }
  readEnd = i;
  const digits = i - start;
  if (digits === 0 || digits > maxDigits || (digits > 1 && s.charCodeAt(start) === CHAR_0)) return -1;
  return n;
}

/** The strict dotted quad that s starts with (host order), or -1; readEnd is left after it. */
function readIPv4(s: string): number {
  let value = 0;
  let i = 0;
  for (let octets = 0; octets < 4; octets++) {
    if (octets > 0) {
      if (s.charCodeAt(i) !== CHAR_DOT) return -1;
      i++;
    }
    const octet = readDecimal(s, i, 3);
    if (octet < 0 || octet > 255) return -1;
    value = value * 256 + octet;
    i = readEnd;
  }
  readEnd = i;
  return value;
}

/**
 * Parses a strict dotted-quad IPv4 address (no leading zeros, octets 0..255)
 * into a host-order uint32, or returns null.
 */
export function tryParseIPv4(s: string): number | null {
  const value = readIPv4(s);
  return value >= 0 && readEnd === s.length ? value : null;
}

/**
 * "A.B.C.D:PORT" read as parseHostPort reads it (a strict dotted quad, a port
 * in MIN_PORT..MAX_PORT without sign or leading zero): address × 65536 + port,
 * or -1 for any other text (which parseHostPort then reads or refuses). One
 * pass, nothing allocated: compile reads 10⁶ backends at 10⁴ VIPs.
 */
export function tryParseIPv4Port(s: string): number {
  const addr = readIPv4(s);
  if (addr < 0 || s.charCodeAt(readEnd) !== CHAR_COLON) return -1;
  const port = readDecimal(s, readEnd + 1, 5);
  if (port < MIN_PORT || port > MAX_PORT || readEnd !== s.length) return -1;
  return addr * 65536 + port;
}

/**
 * Parses a strict dotted-quad IPv4 address into a host-order uint32.
 * @throws AddrParseError if `s` is not a valid IPv4 address
 */
export function parseIPv4(s: string): number {
  const value = tryParseIPv4(s);
  if (value === null) throw new AddrParseError(s, 'is not a valid IPv4 address');
  return value;
}

/** True if `s` is a strict dotted-quad IPv4 address. */
export function isIPv4(s: string): boolean {
  return tryParseIPv4(s) !== null;
}

/**
 * Formats a host-order uint32 as a dotted quad.
 * @throws RangeError if `n` is not an integer in 0..2^32-1
 */
export function formatIPv4(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new RangeError(`${n} is not a uint32 IPv4 address`);
  }
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** Number of 16-bit groups a run of IPv6 groups stands for, or -1 if malformed. */
function countIPv6Groups(run: string, allowTrailingIPv4: boolean): number {
  if (run === '') return 0;
  const groups = run.split(':');
  let count = 0;
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i] ?? '';
    const isLast = i === groups.length - 1;
    if (HEXTET.test(group)) count += 1;
    else if (isLast && allowTrailingIPv4 && isIPv4(group)) count += 2;
    else return -1;
  }
  return count;
}

/**
 * True if `s` is an IPv6 address literal (RFC 4291 text form, including `::`
 * compression and an embedded trailing IPv4 part; no brackets, no zone id).
 */
export function isIPv6Literal(s: string): boolean {
  if (!s.includes(':')) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  if (halves.length === 1) return countIPv6Groups(s, true) === 8;
  const head = countIPv6Groups(halves[0] ?? '', false);
  const tail = countIPv6Groups(halves[1] ?? '', true);
  return head >= 0 && tail >= 0 && head + tail <= 7;
}

/**
 * Parses a decimal port in 1..65535 (no sign, no leading zeros).
 * @throws AddrParseError naming `whole` (the full host:port text) on failure
 */
function parsePort(text: string, whole: string): number {
  const port = DECIMAL.test(text) ? Number(text) : NaN;
  if (!(port >= MIN_PORT && port <= MAX_PORT)) {
    throw new AddrParseError(whole, `has an invalid port "${text}" (must be ${MIN_PORT}..${MAX_PORT})`);
  }
  return port;
}

/** Parses `[V6]:PORT`. */
function parseBracketed(s: string): HostPort {
  const close = s.indexOf(']');
  if (close < 0) throw new AddrParseError(s, 'has an unterminated "[" (expected "[IPv6]:PORT")');
  const addr = s.slice(1, close);
  if (!isIPv6Literal(addr)) throw new AddrParseError(s, 'is not a valid IPv6 address');
  const rest = s.slice(close + 1);
  if (!rest.startsWith(':')) throw new AddrParseError(s, 'must be "[IPv6]:PORT" (port missing after "]")');
  return { family: 6, addr, port: parsePort(rest.slice(1), s) };
}

/**
 * Parses OVN's VIP/backend syntax: `A.B.C.D:PORT`, `A.B.C.D` (IP-only, port 0),
 * `[V6]:PORT` or `V6` (IP-only, port 0). Ports must be 1..65535.
 * @throws AddrParseError with a `reason` suitable for error messages
 */
export function parseHostPort(s: string): HostPort {
  if (s.startsWith('[')) return parseBracketed(s);
  const colons = s.split(':').length - 1;
  if (colons >= 2) {
    if (!isIPv6Literal(s)) throw new AddrParseError(s, 'is not a valid IPv6 address');
    return { family: 6, addr: s, port: 0 };
  }
  const colon = s.indexOf(':');
  const host = colon < 0 ? s : s.slice(0, colon);
  if (!isIPv4(host)) throw new AddrParseError(s, 'is not a valid IPv4 address');
  const port = colon < 0 ? 0 : parsePort(s.slice(colon + 1), s);
  return { family: 4, addr: host, port };
}

/** Formats a {@link HostPort} back into OVN syntax (inverse of {@link parseHostPort}). */
export function formatHostPort(hp: HostPort): string {
  if (hp.port === 0) return hp.addr;
  return hp.family === 6 ? `[${hp.addr}]:${hp.port}` : `${hp.addr}:${hp.port}`;
}

/**
 * Parses `A.B.C.D/N` (N in 0..32) into its address and prefix length.
 * @throws AddrParseError on malformed input
 */
export function parseIPv4Cidr(s: string): { addr: number; prefix: number } {
  const slash = s.indexOf('/');
  if (slash < 0) throw new AddrParseError(s, 'is not "A.B.C.D/N" (prefix length missing)');
  const addr = tryParseIPv4(s.slice(0, slash));
  if (addr === null) throw new AddrParseError(s, 'is not a valid IPv4 network (bad address)');
  const prefixText = s.slice(slash + 1);
  const prefix = DECIMAL.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= 32)) {
    throw new AddrParseError(s, `has an invalid prefix length "${prefixText}" (must be 0..32)`);
  }
  return { addr, prefix };
}

/**
 * Parses an IPv6 literal (see {@link isIPv6Literal}) into its 16 bytes,
 * network order.
 * @throws AddrParseError if `s` is not a valid IPv6 address
 */
export function parseIPv6(s: string): Buffer {
  if (!isIPv6Literal(s)) throw new AddrParseError(s, 'is not a valid IPv6 address');
  const out = Buffer.alloc(16);
  const words = (run: string): number[] => {
    if (run === '') return [];
    const res: number[] = [];
    for (const g of run.split(':')) {
      if (isIPv4(g)) {
        const v = parseIPv4(g);
        res.push(v >>> 16, v & 0xffff);
      } else res.push(parseInt(g, 16));
    }
    return res;
  };
  const halves = s.split('::');
  const head = words(halves[0] ?? '');
  const tail = halves.length === 2 ? words(halves[1] ?? '') : [];
  const all = halves.length === 2 ? [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head;
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/**
 * Formats 16 bytes as the canonical IPv6 text (RFC 5952: lower case, no
 * leading zeros, the longest run of two or more zero groups as `::`).
 * @throws RangeError if `b` is not 16 bytes
 */
export function formatIPv6(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError(`an IPv6 address has 16 bytes, not ${b.length}`);
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexes = g.map((x) => x.toString(16));
  if (best < 0) return hexes.join(':');
  return `${hexes.slice(0, best).join(':')}::${hexes.slice(best + bestLen).join(':')}`;
}

/** The canonical text of an address: IPv4 as is, IPv6 per RFC 5952. */
export function canonicalAddr(family: 4 | 6, addr: string): string {
  return family === 6 ? formatIPv6(parseIPv6(addr)) : addr;
}

/**
 * Parses "X:X::X/N" into its 16 network-order bytes and prefix length.
 * @throws AddrParseError if `s` is not an IPv6 network
 */
export function parseIPv6Cidr(s: string): { addr: Buffer; prefix: number } {
  const slash = s.indexOf('/');
  if (slash < 0) throw new AddrParseError(s, 'is not "X:X::X/N" (prefix length missing)');
  const addrText = s.slice(0, slash);
  if (!isIPv6Literal(addrText)) throw new AddrParseError(s, 'is not a valid IPv6 network (bad address)');
  const prefixText = s.slice(slash + 1);
  const prefix = /^[0-9]{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= 128)) throw new AddrParseError(s, `has an invalid prefix length "${prefixText}" (must be 0..128)`);
  return { addr: parseIPv6(addrText), prefix };
}
