// Self-service login, registration and logout driven by the official Ory SDK
// (@ory/kratos-client 26.2.0): native (API) flows with session tokens, and SPA flows
// (browser flows with JSON and cookies). Run by the Rust test `sdk::selfservice`, which
// starts a server with the `session` hook after password registration.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Configuration, FrontendApi } from "@ory/kratos-client";

const pub = process.env.TESSERA_PUBLIC_URL;
if (!pub) throw new Error("TESSERA_PUBLIC_URL is not set");
const frontend = new FrontendApi(new Configuration({ basePath: pub, baseOptions: { timeout: 20000 } }));
const run = Math.random().toString(36).slice(2, 10);
const email = (n) => `ss-${run}-${n}@example.org`;
const password = "sdk-self-service-pw-1";

async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    if (!e.response) throw e;
    return e.response;
  }
  throw new Error("expected the call to fail");
}

// A tiny cookie jar for the SPA tests.
class Jar {
  constructor() {
    this.cookies = new Map();
  }
  absorb(res) {
    for (const line of res.headers["set-cookie"] ?? []) {
      const [pair, ...attrs] = line.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /max-age=(-|0)/i.test(a.trim()));
      if (expired || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }
  get header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

const csrfOf = (flow) => flow.ui.nodes.find((n) => n.attributes.name === "csrf_token").attributes.value;

test("native registration in two steps, then login, whoami and logout", async () => {
  const { data: flow } = await frontend.createNativeRegistrationFlow();
  assert.equal(flow.type, "api");
  // Step one answers 400 with the credential step.
  const step = await failure(
    frontend.updateRegistrationFlow({
      flow: flow.id,
      updateRegistrationFlowBody: { method: "profile", traits: { email: email(1) } },
    }),
  );
  assert.equal(step.status, 400);
  assert.equal(step.data.ui.messages[0].id, 1040009);
  const { data: done } = await frontend.updateRegistrationFlow({
    flow: flow.id,
    updateRegistrationFlowBody: { method: "password", password, traits: { email: email(1) } },
  });
  assert.match(done.session_token, /^ory_st_/);
  assert.equal(done.identity.traits.email, email(1));
  assert.equal(done.continue_with[0].action, "set_ory_session_token");

  const { data: login } = await frontend.createNativeLoginFlow();
  const { data: fetched } = await frontend.getLoginFlow({ id: login.id });
  assert.equal(fetched.id, login.id);
  const wrong = await failure(
    frontend.updateLoginFlow({
      flow: login.id,
      updateLoginFlowBody: { method: "password", identifier: email(1), password: "not-the-password" },
    }),
  );
  assert.equal(wrong.status, 400);
  assert.equal(wrong.data.ui.messages[0].id, 4000006);
  const { data: ok } = await frontend.updateLoginFlow({
    flow: login.id,
    updateLoginFlowBody: { method: "password", identifier: email(1), password },
  });
  assert.match(ok.session_token, /^ory_st_/);
  assert.equal(ok.session.identity.traits.email, email(1));

  const { data: me } = await frontend.toSession({ xSessionToken: ok.session_token });
  assert.equal(me.id, ok.session.id);
  const { status } = await frontend.performNativeLogout({ performNativeLogoutBody: { session_token: ok.session_token } });
  assert.equal(status, 204);
  const after = await failure(frontend.toSession({ xSessionToken: ok.session_token }));
  assert.equal(after.status, 401);
});

test("native flows report validation errors and expired or unknown flows", async () => {
  const { data: flow } = await frontend.createNativeRegistrationFlow();
  const res = await failure(
    frontend.updateRegistrationFlow({
      flow: flow.id,
      updateRegistrationFlowBody: { method: "password", password: "short", traits: { email: email(2) } },
    }),
  );
  assert.equal(res.status, 400);
  const pw = res.data.ui.nodes.find((n) => n.attributes.name === "password");
  assert.equal(pw.messages[0].id, 4000032);
  const missing = await failure(frontend.getRegistrationFlow({ id: "00000000-0000-0000-0000-000000000001" }));
  assert.equal(missing.status, 404);
});

test("SPA registration and login with cookies", async () => {
  const jar = new Jar();
  const init = jar.absorb(await frontend.createBrowserRegistrationFlow());
  assert.equal(init.status, 200);
  assert.ok([...jar.cookies.keys()].some((k) => k.startsWith("csrf_token_")));
  const flow = init.data;
  assert.equal(flow.type, "browser");
  // Without the CSRF token: 403.
  const denied = await failure(
    frontend.updateRegistrationFlow({
      flow: flow.id,
      cookie: jar.header,
      updateRegistrationFlowBody: { method: "password", password, traits: { email: email(3) } },
    }),
  );
  assert.equal(denied.status, 403);
  assert.equal(denied.data.error.id, "security_csrf_violation");
  const { data: fetched } = jar.absorb(await frontend.getRegistrationFlow({ id: flow.id, cookie: jar.header }));
  const done = jar.absorb(
    await frontend.updateRegistrationFlow({
      flow: flow.id,
      cookie: jar.header,
      updateRegistrationFlowBody: { method: "password", password, traits: { email: email(3) }, csrf_token: csrfOf(fetched) },
    }),
  );
  assert.equal(done.status, 200);
  assert.equal(done.data.session_token, undefined);
  assert.equal(done.data.continue_with[0].action, "redirect_browser_to");
  assert.ok(jar.cookies.has("ory_kratos_session"));
  const { data: me } = await frontend.toSession({ cookie: jar.header });
  assert.equal(me.identity.traits.email, email(3));

  // Logout through the browser logout flow (JSON: 204).
  const { data: logout } = await frontend.createBrowserLogoutFlow({ cookie: jar.header });
  assert.match(logout.logout_token, /^ory_lo_/);
  const out = jar.absorb(
    await frontend.updateLogoutFlow({ token: logout.logout_token }, { headers: { Cookie: jar.header, Accept: "application/json" } }),
  );
  assert.equal(out.status, 204);
  assert.ok(!jar.cookies.has("ory_kratos_session"));

  // SPA login.
  const { data: login } = jar.absorb(await frontend.createBrowserLoginFlow({ cookie: jar.header }));
  const signedIn = jar.absorb(
    await frontend.updateLoginFlow({
      flow: login.id,
      cookie: jar.header,
      updateLoginFlowBody: { method: "password", identifier: email(3), password, csrf_token: csrfOf(login) },
    }),
  );
  assert.equal(signedIn.status, 200);
  assert.equal(signedIn.data.session.identity.traits.email, email(3));
  const again = await failure(frontend.createBrowserLoginFlow({ cookie: jar.header }));
  assert.equal(again.status, 400);
  assert.equal(again.data.error.id, "session_already_available");
});
