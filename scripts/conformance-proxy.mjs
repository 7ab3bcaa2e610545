// Dev tool, not part of the product: a tiny HTTP proxy that adds `Authorization: Bearer TOKEN`
// to requests that carry none, so the MCP conformance suite (which sends no token) can reach
// central's /mcp. Everything else, Host and Origin included, passes through unchanged, so
// central still judges DNS-rebinding and origin checks itself.
//
// node conformance-proxy.mjs LISTEN_PORT TARGET_BASE_URL TOKEN
import http from "node:http";

const [port, target, token] = process.argv.slice(2);
if (!port || !target || !token) {
  console.error("usage: node conformance-proxy.mjs LISTEN_PORT TARGET_BASE_URL TOKEN");
  process.exit(2);
}
const base = new URL(target);

http
  .createServer((req, res) => {
    const headers = { ...req.headers };
    if (!headers.authorization) headers.authorization = `Bearer ${token}`;
    const upstream = http.request(
      { hostname: base.hostname, port: base.port, path: req.url, method: req.method, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", (e) => {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(`proxy: ${e.message}`);
    });
    req.pipe(upstream);
    res.on("close", () => upstream.destroy());
  })
  .listen(Number(port), "127.0.0.1", () => console.error(`conformance proxy on :${port} -> ${target}`));
