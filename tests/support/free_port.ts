/** A TCP port on 127.0.0.1 that nothing listened on a moment ago, for listeners a test must name first. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
