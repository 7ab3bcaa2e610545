// A real OpenID Provider for mttrly's SSO tests: panva's oidc-provider (OpenID Certified), run on
// loopback with the users and the one client a test passes in. Interactions use the library's own
// development login and consent pages (any password; the login field is the account id), which a
// test drives over plain HTTP or in Chromium.
//
// Usage: node provider.mjs CONFIG.json
//   CONFIG: { "port": 0, "client_id": "...", "client_secret": "...", "redirect_uris": ["..."],
//             "accounts": [{ "sub": "...", "email": "...", "email_verified": true, "groups": ["..."] }] }
// Prints one line `listening ISSUER` on stdout once it accepts connections.

import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const accounts = new Map(config.accounts.map((a) => [a.sub, a]));

const server = createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.client_id,
      client_secret: config.client_secret,
      redirect_uris: config.redirect_uris,
      response_types: ["code"],
      grant_types: ["authorization_code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
  scopes: ["openid", "email", "profile", "groups"],
  pkce: { required: () => true },
  // Put every claim in the ID token: mttrly validates the ID token and reads claims from it.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["mttrly-test-oidc-cookie-key"] },
  async findAccount(_ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, ...account };
      },
    };
  },
});
// Loopback over plain HTTP: tell the provider no proxy is in front.
provider.proxy = false;
server.on("request", provider.callback());
console.log(`listening ${issuer}`);
