// Social sign-in driven by the official Ory SDK (@ory/kratos-client 26.2.0): a native app's
// provider sign-in through the system browser with the session-token exchange, a native
// SDK's ID token submitted directly, FedCM parameters, and the provider link shown to
// admins. Run by the Rust test `sdk::oidc`, which starts a real OpenID Connect provider
// (npm oidc-provider, TESSERA_OIDC_ISSUER) and a server with the provider `op`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Configuration, FrontendApi, IdentityApi } from "@ory/kratos-client";

const pub = process.env.TESSERA_PUBLIC_URL;
const admin = process.env.TESSERA_ADMIN_URL;
const issuer = process.env.TESSERA_OIDC_ISSUER;
if (!pub || !admin || !issuer) throw new Error("TESSERA_PUBLIC_URL, TESSERA_ADMIN_URL and TESSERA_OIDC_ISSUER are required");
const frontend = new FrontendApi(new Configuration({ basePath: pub, baseOptions: { timeout: 20000 } }));
const identities = new IdentityApi(new Configuration({ basePath: admin, baseOptions: { timeout: 20000 } }));
const run = Math.random().toString(36).slice(2, 10);
const email = (n) => `sdk-${run}-${n}@example.org`;

async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    if (!e.response) throw e;
    return e.response;
  }
  throw new Error("expected the call to fail");
}

// A browser: follows redirects by hand and keeps cookies (all on 127.0.0.1, as a browser would).
function browser() {
  const jar = new Map();
  return async function go(url, until) {
    for (let i = 0; i < 12; i++) {
      if (until && url.startsWith(until)) return url;
      const res = await fetch(url, {
        redirect: "manual",
        headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") },
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(";");
        const at = pair.indexOf("=");
        jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
      }
      const next = res.headers.get("location");
      if (!next) return { status: res.status, url };
      url = new URL(next, url).toString();
    }
    throw new Error("too many redirects");
  };
}

async function nativeIdToken(account, nonce) {
  const auth = new URL(`${issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: "native-app",
    response_type: "code",
    redirect_uri: "http://127.0.0.1/native-callback",
    scope: "openid email profile",
    login_hint: account,
    nonce,
  }).toString();
  const back = await browser()(auth.toString(), "http://127.0.0.1/native-callback");
  const code = new URL(back).searchParams.get("code");
  const res = await fetch(`${issuer}/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: "http://127.0.0.1/native-callback",
      client_id: "native-app",
    }),
  });
  return (await res.json()).id_token;
}

test("a native app signs up through the system browser and exchanges the code for a session token", async () => {
  const account = email("native");
  const { data: flow } = await frontend.createNativeRegistrationFlow({
    returnSessionTokenExchangeCode: true,
    returnTo: "https://app.example/native",
  });
  assert.equal(flow.session_token_exchange_code.length, 64);
  const button = flow.ui.nodes.find((n) => n.group === "oidc");
  assert.equal(button.attributes.value, "op");
  assert.equal(button.meta.label.id, 1040002);
  const res = await failure(
    frontend.updateRegistrationFlow({
      flow: flow.id,
      updateRegistrationFlowBody: { method: "oidc", provider: "op", upstream_parameters: { login_hint: account } },
    }),
  );
  assert.equal(res.status, 422);
  assert.equal(res.data.error.id, "browser_location_change_required");
  const done = await browser()(res.data.redirect_browser_to, "https://app.example/native");
  const returnToCode = new URL(done).searchParams.get("code");
  assert.ok(returnToCode);
  const { data: exchanged } = await frontend.exchangeSessionToken({
    initCode: flow.session_token_exchange_code,
    returnToCode,
  });
  assert.equal(exchanged.session.identity.traits.email, account);
  const { data: session } = await frontend.toSession({ xSessionToken: exchanged.session_token });
  assert.deepEqual(
    session.authentication_methods.map((m) => [m.method, m.provider]),
    [["oidc", "op"]],
  );
  const again = await failure(
    frontend.exchangeSessionToken({ initCode: flow.session_token_exchange_code, returnToCode }),
  );
  assert.equal(again.status, 404);

  const { data: shown } = await identities.getIdentity({ id: session.identity.id, includeCredential: ["oidc"] });
  const link = shown.credentials.oidc.config.providers[0];
  assert.equal(link.provider, "op");
  assert.equal(link.initial_id_token.split(".").length, 3);
});

test("a native SDK's ID token signs up and in without a browser", async () => {
  const account = email("idtoken");
  const { data: reg } = await frontend.createNativeRegistrationFlow();
  const { data: registered } = await frontend.updateRegistrationFlow({
    flow: reg.id,
    updateRegistrationFlowBody: {
      method: "oidc",
      provider: "op",
      id_token: await nativeIdToken(account, "n-1"),
      id_token_nonce: "n-1",
    },
  });
  assert.equal(registered.identity.traits.email, account);
  assert.ok(registered.session_token);
  const { data: login } = await frontend.createNativeLoginFlow();
  const { data: signedIn } = await frontend.updateLoginFlow({
    flow: login.id,
    updateLoginFlowBody: { method: "oidc", provider: "op", id_token: await nativeIdToken(account, "n-2"), id_token_nonce: "n-2" },
  });
  assert.equal(signedIn.session.identity.id, registered.identity.id);
  const { data: login2 } = await frontend.createNativeLoginFlow();
  const res = await failure(
    frontend.updateLoginFlow({
      flow: login2.id,
      updateLoginFlowBody: { method: "oidc", provider: "nope", id_token: "x" },
    }),
  );
  assert.equal(res.status, 404);
});

test("FedCM parameters name the providers with a FedCM configuration", async () => {
  const { data } = await frontend.createFedcmFlow();
  assert.equal(data.providers.length, 1);
  assert.equal(data.providers[0].client_id, "tessera");
  assert.equal(data.providers[0].config_url, `${issuer}/fedcm.json`);
  assert.ok(data.providers[0].nonce);
  assert.ok(data.csrf_token);
});
