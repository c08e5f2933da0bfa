// A real OpenID Connect provider for the single sign-on tests: panva's oidc-provider,
// configured (not written) here. Started by tests/support/oidc.py with one argument, a
// JSON file: {"issuer", "port", "client": {...oidc-provider client metadata},
// "accounts": {"<login>": {claims...}}}. Prints "ready <issuer>" when it listens.
//
// Sign-in uses the library's own development login pages (devInteractions: any password
// is accepted for a known login). Consent is skipped for the first-party client
// (loadExistingGrant, the library's documented recipe). PKCE is required for every client,
// back-channel logout and RP-initiated logout are on.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), use: "sig", alg: "RS256", kid: "test-key-1" };

const provider = new Provider(config.issuer, {
  clients: [config.client],
  jwks: { keys: [signingKey] },
  cookies: { keys: ["hrcase-test-oidc-provider-cookie-key"] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // Groups, the employee id and the address in the ID token (as Keycloak or Entra can be
  // set to do), not only at the userinfo endpoint.
  conformIdTokenClaims: false,
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "employee_id"],
    groups: ["groups"],
  },
  async findAccount(_ctx, id) {
    const account = config.accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account }) };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid email profile groups");
    await grant.save();
    return grant;
  },
  // The provider guards its outgoing requests (back-channel logout) against special-use
  // addresses; the portal under test listens on loopback, so this test provider allows it.
  fetch(url, options) {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  renderError(ctx, out) {
    ctx.type = "html";
    ctx.body = `<!DOCTYPE html><title>Error</title><h1>${out.error}</h1><p>${out.error_description ?? ""}</p>`;
  },
});
provider.proxy = false;
provider.on("backchannel.error", (_ctx, err, client) => {
  console.error(`backchannel logout to ${client.clientId} failed: ${err} ${err.cause ?? ""}`);
});
provider.on("backchannel.success", (_ctx, client) => {
  console.log(`backchannel logout sent to ${client.clientId}`);
});

provider.listen(config.port, config.host ?? "127.0.0.1", () => {
  console.log(`ready ${config.issuer}`);
});
