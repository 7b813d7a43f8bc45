/**
 * OVSDB remotes as ovn-nbctl/ovs-vsctl write them: `unix:PATH`,
 * `tcp:HOST:PORT` (IPv6 hosts in brackets: `tcp:[::1]:6641`), and a
 * comma-separated list of them (cluster members, tried in turn).
 */
import net from 'node:net';

/** One parsed remote. */
export type OvsdbRemote =
  | { kind: 'unix'; path: string; text: string }
  | { kind: 'tcp'; host: string; port: number; text: string };

/** A remote string that cannot be used. */
export class OvsdbRemoteError extends Error {
  constructor(
    readonly remote: string,
    reason: string,
  ) {
    super(`OVSDB remote "${remote}": ${reason}`);
    this.name = 'OvsdbRemoteError';
  }
}

/** Parses one remote. @throws OvsdbRemoteError */
export function parseRemote(text: string): OvsdbRemote {
  const t = text.trim();
  if (t.startsWith('unix:')) {
    const path = t.slice('unix:'.length);
    if (path === '') throw new OvsdbRemoteError(t, 'unix socket path is empty');
    return { kind: 'unix', path, text: t };
  }
  if (t.startsWith('tcp:')) {
    const rest = t.slice('tcp:'.length);
    let host: string;
    let portText: string;
    if (rest.startsWith('[')) {
      const close = rest.indexOf(']');
      if (close < 0 || rest[close + 1] !== ':') throw new OvsdbRemoteError(t, 'expected tcp:[IPV6]:PORT');
      host = rest.slice(1, close);
      portText = rest.slice(close + 2);
    } else {
      const colon = rest.lastIndexOf(':');
      if (colon < 0) throw new OvsdbRemoteError(t, 'expected tcp:HOST:PORT (the port is required)');
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
      if (host.includes(':')) throw new OvsdbRemoteError(t, 'an IPv6 host must be written in brackets: tcp:[IPV6]:PORT');
    }
    const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (host === '') throw new OvsdbRemoteError(t, 'host is empty');
    if (!(port >= 1 && port <= 65535)) throw new OvsdbRemoteError(t, `port "${portText}" must be 1..65535`);
    return { kind: 'tcp', host, port, text: t };
  }
  if (t.startsWith('ssl:')) throw new OvsdbRemoteError(t, 'ssl: remotes are not supported yet (use unix: or tcp:)');
  throw new OvsdbRemoteError(t, 'must be unix:PATH or tcp:HOST:PORT');
}

/** Parses a comma-separated list of remotes (at least one). @throws OvsdbRemoteError */
export function parseRemoteList(text: string): OvsdbRemote[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) {
    throw new OvsdbRemoteError(text, 'must be one or more comma-separated remotes (empty entry)');
  }
  return parts.map(parseRemote);
}

/** Opens a stream socket to a remote (connect timeout not included). */
export function connectRemote(remote: OvsdbRemote): net.Socket {
  return remote.kind === 'unix' ? net.createConnection({ path: remote.path }) : net.createConnection({ host: remote.host, port: remote.port });
}
