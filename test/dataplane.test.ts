/**
 * Loading, re-adopting and refusing pinned state (the real kernel, a private
 * pin root): maps survive a reload of changed programs, and maps of another
 * layout version are refused with a clear error instead of being misread.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dataplane, defaultObjectPath } from '../src/dataplane.js';
import { LayoutError } from '../src/errors.js';
import { encodeU32 } from '../src/layout.js';

const PIN = `/sys/fs/bpf/xlb-test-dp-${process.pid}`;

afterEach(() => Dataplane.removePins(PIN));

function ids(dp: Dataplane): { maps: number[]; progs: number[] } {
  return {
    maps: Object.values(dp.maps).map((fd) => dp.native.mapInfo(fd).id),
    progs: Object.values(dp.progs).map((fd) => dp.native.progInfo(fd).id),
  };
}

describe('Dataplane.open', () => {
  it('loads once, then re-adopts the same maps and programs from the pins', () => {
    const a = Dataplane.open({ pinRoot: PIN });
    const first = ids(a);
    expect(a.loaded).toBe(true);
    a.close();
    const b = Dataplane.open({ pinRoot: PIN });
    expect(b.loaded).toBe(false);
    expect(ids(b)).toEqual(first);
    b.close();
  });

  it('a changed object loads new programs but keeps the pinned maps (and their contents)', () => {
    const a = Dataplane.open({ pinRoot: PIN });
    const first = ids(a);
    a.native.mapUpdate(a.maps.xlb_backends, encodeU32(7), Buffer.from([10, 0, 0, 7, 0x1f, 0x90, 0, 0]));
    a.close();
    const dir = mkdtempSync(join(tmpdir(), 'xlb-obj-'));
    try {
      const changed = join(dir, 'xlb.bpf.o');
      execFileSync('llvm-objcopy', ['--add-section', '.note.xlbtest=/dev/null', defaultObjectPath(), changed]);
      const b = Dataplane.open({ pinRoot: PIN, objectPath: changed });
      expect(b.loaded).toBe(true);
      const second = ids(b);
      expect(second.maps).toEqual(first.maps);
      expect(second.progs.some((id, i) => id !== first.progs[i])).toBe(true);
      expect(b.native.mapLookup(b.maps.xlb_backends, encodeU32(7), 8)?.toString('hex')).toBe('0a0000071f900000');
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses maps pinned with another layout version, naming the pin root and both versions', () => {
    Dataplane.open({ pinRoot: PIN }).close();
    const dp = Dataplane.open({ pinRoot: PIN });
    const fd = dp.native.objGet(join(PIN, 'xlb_meta'));
    const v = dp.native.mapLookup(fd, encodeU32(0), 36)!;
    v.writeUInt32LE(999, 0);
    dp.native.mapUpdate(fd, encodeU32(0), v);
    dp.native.closeFd(fd);
    dp.close();
    let err: unknown;
    try {
      Dataplane.open({ pinRoot: PIN });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LayoutError);
    const le = err as LayoutError;
    expect(le.code).toBe('XLB_LAYOUT');
    expect(le.found).toBe(999);
    expect(le.message).toContain(PIN);
    expect(le.message).toContain('version 999');
  });

  it('refuses pinned maps that carry no layout version', () => {
    Dataplane.open({ pinRoot: PIN }).close();
    rmSync(join(PIN, 'xlb_meta'));
    expect(() => Dataplane.open({ pinRoot: PIN })).toThrow(/layout version unknown/);
  });
});
