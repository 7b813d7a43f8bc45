/**
 * A veth of a test's own (its name from the test's tag and pid, the peer up
 * too) and the pin root and state directory of an Xlb instance serving it;
 * remove() closes the instance and takes all of it away, even after a failure.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { Dataplane } from '../../src/dataplane.js';
import { Xlb } from '../../src/xlb.js';

export interface VethInstance {
  /** the veth the instance serves (`<tag><pid>`) */
  link: string;
  ifindex: number;
  instance: { pinRoot: string; stateDir: string };
  /** Closes `x` (if given), resets the instance and deletes the veth. */
  remove(x?: Xlb): void;
}

/** `tag` is 5 letters at most (interface names are 15 characters); the peer's ends in a `q`. */
export function vethInstance(tag: string): VethInstance {
  const link = `${tag}${process.pid}`;
  const peer = `${tag}q${process.pid}`;
  const instance = { pinRoot: `/sys/fs/bpf/xlb-${tag}-${process.pid}`, stateDir: `/run/xlb-${tag}-${process.pid}` };
  execFileSync('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', peer]);
  execFileSync('ip', ['link', 'set', link, 'up']);
  execFileSync('ip', ['link', 'set', peer, 'up']);
  Dataplane.removePins(instance.pinRoot);
  return {
    link,
    ifindex: Number(readFileSync(`/sys/class/net/${link}/ifindex`, 'utf8')),
    instance,
    remove(x?: Xlb): void {
      try {
        x?.close();
        Xlb.reset(instance);
      } finally {
        rmSync(instance.stateDir, { recursive: true, force: true });
        Dataplane.removePins(instance.pinRoot);
        execFileSync('ip', ['link', 'del', link], { stdio: 'ignore' });
      }
    },
  };
}
