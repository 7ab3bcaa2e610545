// The comparison server for scripts/mcp-wrk.sh: the official TypeScript MCP SDK's Streamable HTTP
// server with one trivial tool, sessions on (one transport per `Mcp-Session-Id`), no auth. It is
// the floor an MCP server pays for the protocol alone, so central's figures are read against it.
//
// node mcp-wrk-ts-server.mjs PORT   (run from a directory where `@modelcontextprotocol/sdk` is
// installed; mcp-wrk.sh copies it next to its node_modules)

import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

const port = Number(process.argv[2] ?? 0);
const transports = new Map();

function newSession() {
  const server = new McpServer({ name: "ts-baseline", version: "1.0.0" });
  // The same name as central's tool so one wrk script drives both; the answer is a constant.
  server.registerTool("mttrly_list_servers", { description: "a trivial tool" }, async () => ({
    content: [{ type: "text", text: '{"servers":[]}' }],
  }));
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (id) => transports.set(id, transport),
  });
  transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
  return server.connect(transport).then(() => transport);
}

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    try {
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
      const id = req.headers["mcp-session-id"];
      const transport = id ? transports.get(id) : await newSession();
      if (!transport) {
        res.writeHead(404).end("no such session");
        return;
      }
      await transport.handleRequest(req, res, body);
    } catch (e) {
      res.writeHead(400).end(String(e));
    }
  });
}).listen(port, "127.0.0.1", function () {
  console.log(`listening ${this.address().port}`);
});
