/**
 * OVSDB (RFC 7047) values → plain JS values.
 *
 * Wire forms: an atom (string, number, boolean, `["uuid", U]`,
 * `["named-uuid", N]`), a set (`["set", [atom…]]`, or a bare atom for a set
 * of one), a map (`["map", [[k, v]…]]`). Decoded: uuids become their string,
 * sets become arrays, maps become records keyed by the key's string form.
 * With the column's schema type, the shape is made exact: a set column is
 * always an array (even of one or none), an optional scalar (`min 0, max 1`)
 * is the value or null, a map column is always a record.
 */

/** A decoded atom. */
export type OvsdbAtom = string | number | boolean;
/** A decoded column value. */
export type OvsdbValue = OvsdbAtom | null | OvsdbAtom[] | Record<string, OvsdbAtom>;
/** A decoded row: column → value, plus `_uuid` (and `_version` when monitored). */
export type OvsdbRow = Record<string, OvsdbValue>;

/** An RFC 7047 `<base-type>` (only what decoding needs). */
export type OvsdbBaseType = string | { type: string; [k: string]: unknown };

/** An RFC 7047 `<type>` of a column. */
export type OvsdbColumnType =
  | string
  | { key: OvsdbBaseType; value?: OvsdbBaseType; min?: number; max?: number | 'unlimited' };

/** A database schema as returned by get_schema (only what the client uses). */
export interface OvsdbSchema {
  name: string;
  version?: string;
  tables: Record<string, { columns: Record<string, { type: OvsdbColumnType }>; isRoot?: boolean; indexes?: string[][] }>;
}

/** A malformed OVSDB value. */
export class OvsdbDatumError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OvsdbDatumError';
  }
}

/** The decoded shape a column type calls for. */
export type ColumnShape = 'scalar' | 'optional' | 'set' | 'map';

/** The decoded shape of a column type. */
export function columnShape(type: OvsdbColumnType): ColumnShape {
  if (typeof type === 'string') return 'scalar';
  if (type.value !== undefined) return 'map';
  const min = type.min ?? 1;
  const max = type.max ?? 1;
  if (max === 1) return min === 0 ? 'optional' : 'scalar';
  return 'set';
}

/** Decodes one atom. */
export function decodeAtom(raw: unknown): OvsdbAtom {
  if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') return raw;
  if (Array.isArray(raw) && raw.length === 2 && (raw[0] === 'uuid' || raw[0] === 'named-uuid') && typeof raw[1] === 'string') {
    return raw[1];
  }
  throw new OvsdbDatumError(`not an OVSDB atom: ${JSON.stringify(raw)}`);
}

function isTagged(raw: unknown, tag: string): raw is [string, unknown[]] {
  return Array.isArray(raw) && raw.length === 2 && raw[0] === tag && Array.isArray(raw[1]);
}

function decodeSet(raw: unknown): OvsdbAtom[] {
  if (isTagged(raw, 'set')) return raw[1].map(decodeAtom);
  return [decodeAtom(raw)];
}

function decodeMap(raw: unknown): Record<string, OvsdbAtom> {
  if (!isTagged(raw, 'map')) throw new OvsdbDatumError(`not an OVSDB map: ${JSON.stringify(raw)}`);
  const out: Record<string, OvsdbAtom> = {};
  for (const pair of raw[1]) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new OvsdbDatumError(`not an OVSDB map pair: ${JSON.stringify(pair)}`);
    out[String(decodeAtom(pair[0]))] = decodeAtom(pair[1]);
  }
  return out;
}

/**
 * Decodes a value. Without a type, the wire form decides (a bare atom stays an
 * atom, a set an array, a map a record); with one, the column's shape does.
 * @throws OvsdbDatumError for malformed values
 */
export function decodeDatum(raw: unknown, type?: OvsdbColumnType): OvsdbValue {
  if (type === undefined) {
    if (isTagged(raw, 'set')) return decodeSet(raw);
    if (isTagged(raw, 'map')) return decodeMap(raw);
    return decodeAtom(raw);
  }
  switch (columnShape(type)) {
    case 'map':
      return decodeMap(raw);
    case 'set':
      return decodeSet(raw);
    case 'optional': {
      const items = decodeSet(raw);
      if (items.length > 1) throw new OvsdbDatumError(`expected at most one value, got ${JSON.stringify(raw)}`);
      return items[0] ?? null;
    }
    case 'scalar':
      if (isTagged(raw, 'set')) {
        const items = decodeSet(raw);
        if (items.length !== 1) throw new OvsdbDatumError(`expected exactly one value, got ${JSON.stringify(raw)}`);
        return items[0] as OvsdbAtom;
      }
      return decodeAtom(raw);
  }
}

/** Decodes a wire row (`<row>`) using the table's column types when known. */
export function decodeRow(raw: unknown, columns?: Record<string, { type: OvsdbColumnType }>): OvsdbRow {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new OvsdbDatumError(`not an OVSDB row: ${JSON.stringify(raw)}`);
  }
  const out: OvsdbRow = {};
  for (const [col, value] of Object.entries(raw)) {
    out[col] = decodeDatum(value, columns?.[col]?.type);
  }
  return out;
}

/** Convenience readers for decoded values (tolerant of absent columns). */
export const val = {
  str(v: OvsdbValue | undefined): string {
    return typeof v === 'string' ? v : '';
  },
  optStr(v: OvsdbValue | undefined): string | null {
    return typeof v === 'string' ? v : null;
  },
  strs(v: OvsdbValue | undefined): string[] {
    if (Array.isArray(v)) return v.map(String);
    if (typeof v === 'string') return [v];
    return [];
  },
  map(v: OvsdbValue | undefined): Record<string, string> {
    if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) return {};
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) out[k] = String(x);
    return out;
  },
};
