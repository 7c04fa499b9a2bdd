/**
 * The ring over TLS, with real processes: external workers holding a ring certificate reduce on a ring
 * beside a TLS NATS server and a TLS data plane, and a worker without one keeps the job on the star,
 * with an `allreduce` event that names the flags it lacks.
 */
import assert from "node:assert/strict";
import type { Model } from "../coordinator/model.ts";
import { startNatsServer } from "../shared/io/nats/mod.ts";
import { makeCertificates } from "./support/certificates.ts";
import { ExternalWorker } from "./support/external_worker.ts";
import { EventLog } from "./support/pool_events.ts";
import { twoClassModel, twoClassProblem } from "./support/two_class.ts";
import { maxAbsDiff } from "./support/compare.ts";

/** 160 training rows, batch 32, 1 epoch: 5 steps. */
const FIT = { epochs: 1, batchSize: 32, verbose: 0 as const, validationSplit: 0.2 };
const DATA = twoClassProblem(200);

function assertLike(model: Model, local: Model, what: string): void {
  assert.equal(model.lastFit!.steps, 5, what);
  const diff = maxAbsDiff(model.network.params, local.network.params);
  assert.ok(diff <= 1e-5, `${what}: max abs weight difference ${diff} > 1e-5`);
}

Deno.test("ring over TLS: workers with ring certificates reduce on a ring; one without keeps the job on the star, naming the flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-ring-tls-" });
  const workers: ExternalWorker[] = [];
  try {
    const certs = await makeCertificates(dir);
    const local = twoClassModel();
    await local.fit(DATA.x, DATA.y, FIT);
    await using server = await startNatsServer({
      extraConfig: `tls { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}" }`,
    });
    const ca = ["--nats-tls-ca", certs.ca];
    // The certificate is valid for 127.0.0.1, where the workers advertise their ring listeners.
    const ringTls = ["--ring-tls-cert", certs.serverCert, "--ring-tls-key", certs.serverKey];
    for (const name of ["t0", "t1", "t2"]) {
      workers.push(new ExternalWorker(name, server.url, [...ca, ...ringTls]));
    }
    await Promise.all(workers.map((w) => w.waitFor(/connected to/)));
    const distribute = {
      nats: server.url,
      workers: 3,
      allreduce: "ring" as const,
      auth: { tls: { caFile: certs.ca } },
      dataTls: { certFile: certs.serverCert, keyFile: certs.serverKey },
      // TCP only, as between hosts: Unix sockets would carry the ring on this host.
      dataUnix: false,
      dataListen: "127.0.0.1:0",
      transport: "direct" as const,
    };

    const log = new EventLog();
    const model = twoClassModel();
    await model.fit(DATA.x, DATA.y, { ...FIT, distribute: { ...distribute, listeners: log.listeners } });
    const ring = log.find("allreduce", (e) => e.step === 0, "the reduction of the first step");
    assert.equal(ring.use, "ring", log.toString());
    assert.equal(model.lastFit!.timings.ring_steps, 5, `every step reduced on the ring:\n${log}`);
    assert.ok(!log.has("warning", (e) => /ring/.test(e.message)), log.toString());
    assertLike(model, local, "ring over TLS");

    // t2 makes way for p2, a worker without a ring certificate.
    await workers[2]!.stop();
    const plain = new ExternalWorker("p2", server.url, ca);
    workers[2] = plain;
    await plain.waitFor(/connected to/);
    const starLog = new EventLog();
    const star = twoClassModel();
    await star.fit(DATA.x, DATA.y, { ...FIT, distribute: { ...distribute, listeners: starLog.listeners } });
    const choice = starLog.find("allreduce", (e) => e.step === 0, "the reduction of the first step");
    assert.equal(choice.use, "star", starLog.toString());
    assert.match(
      choice.reason,
      /^worker\(s\) p2 cannot take part in a ring over the TLS data plane .*start them with --ring-tls-cert FILE --ring-tls-key FILE/,
    );
    assert.equal(star.lastFit!.timings.ring_steps, 0);
    assert.equal(star.lastFit!.workers, 3);
    await plain.waitFor(/has no ring certificate: it stays on the star\. Start it with --ring-tls-cert FILE/);
    assertLike(star, local, "star for a worker without a ring certificate");
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await Deno.remove(dir, { recursive: true });
  }
});
