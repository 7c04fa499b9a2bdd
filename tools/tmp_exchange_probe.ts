import { layers, Sequential } from "../mod.ts";
import { Engine, initBackend } from "../shared/model/mod.ts";
import { DistributedPool } from "../coordinator/distributed/pool.ts";
import { toDataset } from "../coordinator/data.ts";
await initBackend("auto");
const units = 268_800;
const model = new Sequential([new layers.Dense(units, { inputShape: [1] })], { seed: 1 });
model.compile({ optimizer: "sgd", loss: "mse" });
model.ensureBuilt?.([[1]]);
const net = model.network;
console.log("params", net.params.length);
const engine = new Engine(net, { loss: "mean_squared_error", metrics: [], seed: 1 });
const n = 4;
const ds = toDataset({ data: new Float32Array(n).fill(1), shape: [n, 1] }, {
  data: new Float32Array(n * units),
  shape: [n, units],
});
for (const transport of (Deno.args[0] ?? "direct,nats").split(",")) {
  for (const workers of [1, 2]) {
    const pool = await DistributedPool.create(engine, {
      workers,
      backend: "auto",
      transport: transport as "direct",
      quiet: true,
      dataUnix: transport !== "tcp",
    });
    await pool.setData("t", ds);
    const times: number[] = [];
    for (let s = 0; s < 40; s++) {
      const t0 = performance.now();
      await pool.trainStep("t", {
        step: s,
        indices: Int32Array.from({ length: workers }, (_, i) => i),
        params: net.params,
        state: net.state,
      });
      if (s >= 5) times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    console.log(
      transport,
      workers,
      "step",
      times[times.length >> 1]!.toFixed(2),
      JSON.stringify(pool.timings()),
    );
    await pool.close();
  }
}
