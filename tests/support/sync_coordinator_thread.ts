/**
 * A stand-in coordinator for slice-exchange tests, in a thread of its own (the test's thread blocks
 * in the exchange): it answers each part of a two-slice step with the gathered parts, the other
 * slice's part being this one's times ten, and aborts attempt 9. Posts its addresses when listening.
 */
/// <reference lib="deno.worker" />
import { listenDataPlane } from "../../shared/io/data_plane/mod.ts";
import { DataFrame, encodeGathered } from "../../shared/io/protocol/mod.ts";

self.onmessage = async (e: MessageEvent<{ job: string; secret: string }>) => {
  let connections = 0;
  const listener = await listenDataPlane({
    job: e.data.job,
    secret: e.data.secret,
    unix: true,
    maxBodyBytes: 1 << 20,
    onChannel: (channel, { role }) => {
      connections++;
      self.postMessage({ connections, role });
      void (async () => {
        for (let frame = await channel.next(); frame; frame = await channel.next()) {
          const f = DataFrame.parse(frame.header);
          if (f.t !== "part") continue;
          if (f.version === 9) {
            await channel.send({ t: "abort", version: 9, reason: "a worker was lost" });
            continue;
          }
          const mine = new Float32Array(frame.body.buffer);
          const other = Float32Array.from(mine, (v) => v * 10);
          const parts = f.slice === 0 ? [mine, other] : [other, mine];
          await channel.send(
            { t: "gathered", version: f.version, slices: 2, call: f.call },
            encodeGathered(parts),
          );
        }
      })().catch(() => {});
    },
    onRefused: (_peer, reason) => self.postMessage({ refused: reason }),
  });
  self.postMessage({ addresses: listener.addresses });
};
