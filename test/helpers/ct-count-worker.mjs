// One side of the counting race test (test/ct-count.test.ts), a process of its own (the test
// pins it to one CPU): opens the pinned data plane and either sends `count` packets of one
// established flow (mode "send": client:sport -> vip:80, through xlb_xdp_ingress, one test run
// each), or `count` new flows (mode "sendnew": a SYN each from a fresh source, counted through the
// flow log), or folds the established tier's counts into the rows (mode "fold": Dataplane.ctFold) or
// only the flow log's rings (mode "foldlog": Dataplane.flowLogFold) until `count` folds or `seconds`
// have passed. Prints a JSON summary.
import { Dataplane } from '../../dist/src/dataplane.js';
import { parseIPv4 } from '../../dist/src/addr.js';
import { tcpFrame } from '../../dist/bench/common.js';

const [pinRoot, mode, countS, clientS, vipS, sportS, secondsS] = process.argv.slice(2);
const dp = Dataplane.open({ pinRoot });
const out = { runs: 0, folded: 0, rewritten: 0 };
try {
  if (mode === 'send' || mode === 'sendnew') {
    const client = parseIPv4(clientS);
    const vip = parseIPv4(vipS);
    const established = tcpFrame(client, vip, Number(sportS), 80, 0x10);
    // sendnew: a SYN each, from client + (i >> 15), source port 1024 + (i & 0x7fff).
    const frame = mode === 'send' ? () => established : (i) => tcpFrame(client + (i >>> 15), vip, 1024 + (i & 0x7fff), 80, 0x02);
    for (let i = 0; i < Number(countS); i++) {
      const r = dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data: frame(i), ifindex: 1, repeat: 1 });
      out.runs++;
      if (r.data.readUInt32BE(14 + 16) !== vip) out.rewritten++;
    }
  } else {
    const fold = mode === 'foldlog' ? () => dp.flowLogFold() : () => dp.ctFold();
    const until = Date.now() + Number(secondsS) * 1000;
    for (let i = 0; i < Number(countS) && Date.now() < until; i++) {
      out.folded += fold();
      out.runs++;
    }
  }
} finally {
  dp.close();
}
console.log(JSON.stringify(out));
