/**
 * One epoch on the npz shards in a directory, in a process of its own so that its memory is its own:
 * `deno run -A tests/support/big_dataset_fit.ts <dir> <workers>`. Prints one JSON line: samples
 * trained, the peak RSS (VmHWM) of this process and of each worker process, and the final weights.
 */
import { datasets, layers, optimizers, Sequential } from "../../mod.ts";

const [dir, workersArg] = Deno.args;
const workers = Number(workersArg);

/** VmHWM (peak resident set) of a process, in bytes; 0 once it is gone. */
function peakRss(pid: number | "self"): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Worker processes this process started, by pid. */
function workerPids(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (ppid === Deno.pid && cmd.includes("worker")) pids.push(Number(entry.name));
    } catch {
      // Exited while listing.
    }
  }
  return pids;
}

const workerPeaks = new Map<number, number>();
const timer = setInterval(() => {
  for (const pid of workerPids()) workerPeaks.set(pid, Math.max(workerPeaks.get(pid) ?? 0, peakRss(pid)));
}, 100);

const train = await datasets.fromNpz(`${dir}/*.npz`, { x: "x", y: "y" });
const width = train.element.inputs[0]![0]!;
const model = new Sequential([new layers.Dense(2, { activation: "softmax", inputShape: [width] })], {
  seed: 7,
});
model.compile({
  optimizer: new optimizers.Adam({ learningRate: 0.001 }),
  loss: "sparse_categorical_crossentropy",
});
const started = performance.now();
await model.fit(train, {
  epochs: 1,
  batchSize: 256,
  verbose: 0,
  ...(workers > 0 ? { distribute: { workers } } : {}),
});
clearInterval(timer);
console.log(JSON.stringify({
  rows: train.length,
  samples: model.lastFit!.samplesProcessed,
  workers: model.lastFit!.workers,
  seconds: (performance.now() - started) / 1000,
  coordinatorPeak: peakRss("self"),
  workerPeaks: [...workerPeaks.values()],
  params: [...model.network.params],
}));
