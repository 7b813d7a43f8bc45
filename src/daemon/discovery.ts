/**
 * How clients find a running daemon: it writes daemon.json (pid, API socket,
 * TCP listener) into its state directory and removes it on a clean stop.
 * Kept free of heavy imports so that the client loads quickly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Same as DEFAULT_STATE_DIR of xlb.ts (not imported: that module loads the native addon). */
const STATE_DIR = '/run/xlb';

/** Where a running daemon says where its API is (in the state dir). */
export const DAEMON_FILE = 'daemon.json';

/** The API socket used when none is given: STATE_DIR/api.sock (/run/xlb/api.sock by default). */
export const defaultApiSocket = (stateDir: string = STATE_DIR): string => join(stateDir, 'api.sock');

/** What daemon.json holds. */
export interface DaemonInfo {
  pid: number;
  apiSocket: string;
  /** `HOST:PORT` of the TCP listener, or null. */
  apiTcp: string | null;
  pinRoot: string;
  stateDir: string;
  startedAt: string;
}

/** Reads daemon.json of a state dir (null when absent or unreadable). */
export function readDaemonInfo(stateDir: string = STATE_DIR): DaemonInfo | null {
  try {
    return JSON.parse(readFileSync(join(stateDir, DAEMON_FILE), 'utf8')) as DaemonInfo;
  } catch {
    return null;
  }
}

/** The local Open_vSwitch database the daemon reads by default. */
export const DEFAULT_OVS_DB = 'unix:/var/run/openvswitch/db.sock';
