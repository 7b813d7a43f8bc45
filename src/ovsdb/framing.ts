/**
 * Incremental splitter for a stream of concatenated JSON values (RFC 7047
 * framing: JSON-RPC messages back to back, no delimiter). Feed it chunks as
 * they arrive; it returns every complete top-level value, parsed.
 *
 * Top-level values must be objects or arrays (JSON-RPC messages are objects);
 * whitespace between values is ignored. Brackets inside strings, escaped
 * quotes and multi-byte UTF-8 split across chunks are handled (a
 * StringDecoder joins split code points; scanning state survives chunks, so
 * nothing is rescanned).
 */
import { StringDecoder } from 'node:string_decoder';

/** A framing problem: not JSON, a non-container top-level value, or a message over the size limit. */
export class JsonFramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonFramingError';
  }
}

/** Default largest accepted message, in characters. */
export const DEFAULT_MAX_MESSAGE_CHARS = 256 * 1024 * 1024;

export class JsonStreamSplitter {
  private readonly decoder = new StringDecoder('utf8');
  /** Unconsumed text; a value in progress starts at index 0. */
  private buf = '';
  /** Next index of `buf` to scan. */
  private pos = 0;
  private depth = 0;
  private inString = false;
  private escape = false;

  constructor(private readonly maxMessageChars: number = DEFAULT_MAX_MESSAGE_CHARS) {}

  /** True when a value has started but is not complete yet. */
  get pending(): boolean {
    return this.buf.length > 0;
  }

  /**
   * Adds a chunk; returns the values it completed, in order.
   * @throws JsonFramingError on invalid framing (the splitter is then reset)
   */
  push(chunk: Buffer | string): unknown[] {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const out: unknown[] = [];
    let i = this.pos;
    const buf = this.buf;
    let start = 0;
    for (; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === 0x5c /* \ */) this.escape = true;
        else if (c === 0x22 /* " */) this.inString = false;
        continue;
      }
      if (this.depth === 0) {
        // Between values: skip whitespace, a value must open with { or [.
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          start = i + 1;
          continue;
        }
        if (c !== 0x7b && c !== 0x5b) {
          this.reset();
          throw new JsonFramingError(`expected "{" or "[" to start a JSON-RPC message, got ${JSON.stringify(buf[i])}`);
        }
        start = i;
        this.depth = 1;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 0) {
          const text = buf.slice(start, i + 1);
          start = i + 1;
          try {
            out.push(JSON.parse(text));
          } catch (err) {
            this.reset();
            throw new JsonFramingError(`invalid JSON message: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
      }
    }
    this.buf = buf.slice(start);
    this.pos = this.buf.length;
    if (this.depth === 0) {
      this.buf = '';
      this.pos = 0;
    } else if (this.buf.length > this.maxMessageChars) {
      this.reset();
      throw new JsonFramingError(`message larger than ${this.maxMessageChars} characters`);
    }
    return out;
  }

  /** Drops any partial value (e.g. after a reconnect). */
  reset(): void {
    this.buf = '';
    this.pos = 0;
    this.depth = 0;
    this.inString = false;
    this.escape = false;
  }
}
