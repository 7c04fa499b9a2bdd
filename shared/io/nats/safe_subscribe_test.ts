import assert from "node:assert/strict";
import { connect, type Msg } from "npm:nats@2.29.3";
import { z } from "npm:zod@4.6.7";
import { decodeMessage, encodeMessage } from "./codec.ts";
import { serve, serveMessages } from "./safe_subscribe.ts";
import { startNatsServer } from "./server.ts";

const Req = z.object({ n: z.int() });

Deno.test("safe subscriptions survive throwing handlers", async (t) => {
  await using server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  try {
    await t.step("a handler that throws does not kill the subscription", async () => {
      const errors: string[] = [];
      await using _service = serve(nc, "flaky", (msg) => {
        const n = decodeMessage(msg.data, Req).header.n;
        if (n === 1) throw new Error("boom on 1");
        if (n === 2) return Promise.reject(new Error("async boom on 2"));
        msg.respond(encodeMessage({ n: n * 10 }));
      }, { onError: (error, msg) => errors.push(`${msg?.subject}: ${(error as Error).message}`) });
      nc.publish("flaky", encodeMessage({ n: 1 }));
      nc.publish("flaky", encodeMessage({ n: 2 }));
      nc.publish("flaky", new Uint8Array([1, 2, 3]));
      const reply = await nc.request("flaky", encodeMessage({ n: 3 }), { timeout: 2000 });
      assert.deepEqual(decodeMessage(reply.data, Req).header, { n: 30 });
      assert.equal(errors.length, 3);
      assert.deepEqual(errors.slice(0, 2), ["flaky: boom on 1", "flaky: async boom on 2"]);
      assert.match(errors[2]!, /at least 16 bytes/);
    });

    await t.step("errorReply answers a failed request at once; a throwing onError is contained", async () => {
      await using _service = serve(nc, "fails", () => {
        throw new Error("no model loaded");
      }, {
        onError: () => {
          throw new Error("reporter broke too");
        },
        errorReply: (error) => encodeMessage({ error: (error as Error).message }),
      });
      const originalError = console.error;
      const logged: unknown[][] = [];
      console.error = (...args: unknown[]) => logged.push(args);
      try {
        const reply = await nc.request("fails", encodeMessage({ n: 0 }), { timeout: 2000 });
        const { header } = decodeMessage(reply.data, z.object({ error: z.string() }));
        assert.equal(header.error, "no model loaded");
      } finally {
        console.error = originalError;
      }
      assert.equal(logged.length, 1);
      assert.match(String(logged[0]![0]), /reporter failed/);
    });

    await t.step("handlers run one at a time in arrival order", async () => {
      const seen: number[] = [];
      let active = 0;
      let maxActive = 0;
      const done = Promise.withResolvers<void>();
      await using _service = serveMessages(nc, "ordered", Req, async ({ header }) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((resolve) => setTimeout(resolve, 2));
        seen.push(header.n);
        active--;
        if (seen.length === 20) done.resolve();
      });
      for (let n = 0; n < 20; n++) nc.publish("ordered", encodeMessage({ n }));
      await done.promise;
      assert.deepEqual(seen, [...Array(20).keys()]);
      assert.equal(maxActive, 1);
    });

    await t.step("stop and abort end the loop", async () => {
      const controller = new AbortController();
      const received: Msg[] = [];
      const service = serve(nc, "stoppable", (msg) => void received.push(msg), { signal: controller.signal });
      nc.publish("stoppable");
      for (let i = 0; i < 200 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      controller.abort();
      await service.done;
      assert.equal(service.subscription.isClosed(), true);
      assert.equal(received.length, 1);
    });
  } finally {
    await nc.close();
  }
});
