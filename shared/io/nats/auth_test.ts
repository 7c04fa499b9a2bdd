import assert from "node:assert/strict";
import { connectOptions, describeNatsAuth, natsAuthFromEnvAndFlags, redactNatsUrl } from "./auth.ts";
import { natsServerConfig, ROLE_PERMISSIONS } from "./server_config.ts";

const files: Record<string, string> = { "/s/pw": "p4ss\n", "/s/tok": "t0k", "/s/empty": "\n" };
const read = (path: string) => {
  const text = files[path];
  if (text === undefined) throw new Deno.errors.NotFound(`No such file: ${path}`);
  return text;
};

Deno.test("natsAuthFromEnvAndFlags: flags win over env, files lose one trailing newline", () => {
  const env = { SHOAL_NATS_USER: "envuser", SHOAL_NATS_PASSWORD: "envpw", SHOAL_NATS_TLS_CA: "/env/ca.pem" };
  assert.deepEqual(natsAuthFromEnvAndFlags({ user: "worker", passwordFile: "/s/pw" }, env, read), {
    user: "worker",
    password: "p4ss",
    tls: { caFile: "/env/ca.pem" },
  });
  assert.deepEqual(natsAuthFromEnvAndFlags({}, { SHOAL_NATS_TOKEN: "t" }, read), { token: "t" });
  assert.equal(natsAuthFromEnvAndFlags({}, {}, read), undefined);
});

Deno.test("natsAuthFromEnvAndFlags: contradictions and bad files are errors without secrets", () => {
  assert.throws(
    () =>
      natsAuthFromEnvAndFlags(
        { tokenFile: "/s/tok" },
        { SHOAL_NATS_USER: "u", SHOAL_NATS_PASSWORD: "envpw" },
        read,
      ),
    (e: Error) =>
      /more than one method/.test(e.message) && !e.message.includes("envpw") && !e.message.includes("t0k"),
  );
  assert.throws(() => natsAuthFromEnvAndFlags({ user: "u" }, {}, read), /without a password/);
  assert.throws(
    () => natsAuthFromEnvAndFlags({ passwordFile: "/s/missing", user: "u" }, {}, read),
    /\/s\/missing/,
  );
  assert.throws(() => natsAuthFromEnvAndFlags({ passwordFile: "/s/empty", user: "u" }, {}, read), /is empty/);
  assert.throws(() => natsAuthFromEnvAndFlags({ tlsCert: "/c.pem" }, {}, read), /--nats-tls-key/);
});

Deno.test("redactNatsUrl hides passwords and connectOptions maps each method", () => {
  assert.equal(redactNatsUrl("nats://u:secret@h:4222"), "nats://u:***@h:4222");
  assert.equal(redactNatsUrl("nats://a:x@h1,nats://h2"), "nats://a:***@h1,nats://h2");
  assert.equal(redactNatsUrl("nats://h:4222"), "nats://h:4222");
  const o = connectOptions({ user: "u", password: "p", tls: { caFile: "/ca" } }, {
    servers: "nats://h",
    name: "n",
  });
  assert.deepEqual(o, { servers: "nats://h", name: "n", user: "u", pass: "p", tls: { caFile: "/ca" } });
  assert.equal(connectOptions({ token: "t" }).token, "t");
  assert.equal(describeNatsAuth({ user: "u", password: "p" }), "user u with a password");
});

Deno.test("natsServerConfig renders role permissions, env secrets and TLS", () => {
  const text = natsServerConfig({
    maxPayload: 1024,
    users: [
      { role: "coordinator", user: "coordinator", password: 'c"p' },
      { role: "worker", user: "worker", password: { env: "WORKER_PASSWORD" } },
    ],
    tls: { certFile: "/s.pem", keyFile: "/s.key", caFile: "/ca.pem", verify: true },
  });
  assert.match(text, /max_payload: 1024/);
  assert.match(text, /user: "coordinator", password: "c\\"p"/);
  assert.match(text, /user: "worker", password: \$WORKER_PASSWORD/);
  assert.match(text, /verify: true/);
  assert.ok(text.includes(JSON.stringify(ROLE_PERMISSIONS.worker.publish).replaceAll(",", ", ")));
  assert.throws(() => natsServerConfig({ maxPayload: 1024, token: "t", users: [] }), /both users and token/);
  assert.throws(() => natsServerConfig({ maxPayload: 0 }), /maxPayload must be an integer/);
  assert.throws(
    () => natsServerConfig({ maxPayload: 1, users: [{ role: "worker", nkey: "nope" }] }),
    /user public key/,
  );
});
