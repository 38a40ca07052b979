// Verification and recovery driven by the official Ory SDK (@ory/kratos-client 26.2.0):
// native flows, SPA flows (browser flows with JSON and cookies) and the admin recovery
// endpoints. Run by the Rust test `sdk::recovery`, which starts a real SMTP server and a
// server with both flows enabled (code method, link method allowed, continue-with
// transitions on); codes are read from the delivered mail (TESSERA_MAILBOX, JSON lines).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Configuration, FrontendApi, IdentityApi } from "@ory/kratos-client";
import { codeFor as mailCodeFor } from "./mailbox.mjs";

const pub = process.env.TESSERA_PUBLIC_URL;
const admin = process.env.TESSERA_ADMIN_URL;
const mailbox = process.env.TESSERA_MAILBOX;
if (!pub || !admin || !mailbox) throw new Error("TESSERA_PUBLIC_URL, TESSERA_ADMIN_URL and TESSERA_MAILBOX are required");
const frontend = new FrontendApi(new Configuration({ basePath: pub, baseOptions: { timeout: 20000 } }));
const identities = new IdentityApi(new Configuration({ basePath: admin, baseOptions: { timeout: 20000 } }));
const run = Math.random().toString(36).slice(2, 10);
const email = (n) => `rv-${run}-${n}@example.org`;
const password = "sdk-recovery-pw-1";

async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    if (!e.response) throw e;
    return e.response;
  }
  throw new Error("expected the call to fail");
}

async function createIdentity(address) {
  const { data } = await identities.createIdentity({
    createIdentityBody: {
      schema_id: "default",
      traits: { email: address },
      credentials: { password: { config: { password } } },
    },
  });
  return data;
}

const codeFor = (to, nth = 1) => mailCodeFor(mailbox, to, nth);

class Jar {
  constructor() {
    this.cookies = new Map();
  }
  absorb(res) {
    for (const line of res.headers["set-cookie"] ?? []) {
      const [pair, ...attrs] = line.split(";");
      const i = pair.indexOf("=");
      const expired = attrs.some((a) => /max-age=(-|0)/i.test(a.trim()));
      const name = pair.slice(0, i).trim();
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(i + 1).trim());
    }
    return res;
  }
  get header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

const csrfOf = (flow) => flow.ui.nodes.find((n) => n.attributes.name === "csrf_token").attributes.value;

test("native verification with a code from the mail", async () => {
  const identity = await createIdentity(email(1));
  const { data: flow } = await frontend.createNativeVerificationFlow();
  assert.equal(flow.state, "choose_method");
  const { data: sent } = await frontend.updateVerificationFlow({
    flow: flow.id,
    updateVerificationFlowBody: { method: "code", email: email(1) },
  });
  assert.equal(sent.state, "sent_email");
  assert.equal(sent.ui.messages[0].id, 1080003);
  const code = await codeFor(email(1));
  const { data: done } = await frontend.updateVerificationFlow({
    flow: flow.id,
    updateVerificationFlowBody: { method: "code", code },
  });
  assert.equal(done.state, "passed_challenge");
  assert.equal(done.ui.messages[0].id, 1080002);
  const { data: fetched } = await frontend.getVerificationFlow({ id: flow.id });
  assert.equal(fetched.state, "passed_challenge");
  const { data: after } = await identities.getIdentity({ id: identity.id });
  assert.equal(after.verifiable_addresses[0].verified, true);
  assert.equal(after.verifiable_addresses[0].status, "completed");
});

test("native recovery: session token and settings flow through continue_with", async () => {
  const identity = await createIdentity(email(2));
  const { data: flow } = await frontend.createNativeRecoveryFlow();
  const { data: sent } = await frontend.updateRecoveryFlow({
    flow: flow.id,
    updateRecoveryFlowBody: { method: "code", email: email(2) },
  });
  assert.equal(sent.state, "sent_email");
  assert.equal(sent.ui.messages[0].id, 1060003);
  const wrong = await frontend.updateRecoveryFlow({
    flow: flow.id,
    updateRecoveryFlowBody: { method: "code", code: "12345" },
  });
  assert.equal(wrong.data.ui.messages[0].id, 4060006);
  const code = await codeFor(email(2));
  const { data: done } = await frontend.updateRecoveryFlow({
    flow: flow.id,
    updateRecoveryFlowBody: { method: "code", code },
  });
  assert.equal(done.state, "passed_challenge");
  const token = done.continue_with.find((c) => c.action === "set_ory_session_token").ory_session_token;
  const settingsId = done.continue_with.find((c) => c.action === "show_settings_ui").flow.id;
  const { data: session } = await frontend.toSession({ xSessionToken: token });
  assert.equal(session.identity.id, identity.id);
  assert.equal(session.authentication_methods[0].method, "code_recovery");
  const { data: settings } = await frontend.getSettingsFlow({ id: settingsId, xSessionToken: token });
  assert.equal(settings.identity.id, identity.id);
  assert.equal(settings.ui.messages[0].id, 1060001);
  const denied = await failure(frontend.getSettingsFlow({ id: settingsId }));
  assert.equal(denied.status, 401);
  // A new password through the settings flow, then a login with it.
  const { data: saved } = await frontend.updateSettingsFlow({
    flow: settingsId,
    xSessionToken: token,
    updateSettingsFlowBody: { method: "password", password: "sdk-recovered-pw-9" },
  });
  assert.equal(saved.state, "success");
  assert.equal(saved.ui.messages[0].id, 1050001);
  const { data: login } = await frontend.createNativeLoginFlow();
  const { data: signedIn } = await frontend.updateLoginFlow({
    flow: login.id,
    updateLoginFlowBody: { method: "password", identifier: email(2), password: "sdk-recovered-pw-9" },
  });
  assert.match(signedIn.session_token, /^ory_st_/);
});

test("SPA recovery and verification with cookies", async () => {
  await createIdentity(email(3));
  const jar = new Jar();
  const created = jar.absorb(await frontend.createBrowserRecoveryFlow());
  const flow = created.data;
  assert.equal(flow.type, "browser");
  const { data: fetched } = jar.absorb(await frontend.getRecoveryFlow({ id: flow.id, cookie: jar.header }));
  const sent = jar.absorb(
    await frontend.updateRecoveryFlow({
      flow: flow.id,
      cookie: jar.header,
      updateRecoveryFlowBody: { method: "code", email: email(3), csrf_token: csrfOf(fetched) },
    }),
  );
  assert.equal(sent.data.state, "sent_email");
  const code = await codeFor(email(3));
  const done = jar.absorb(
    await frontend.updateRecoveryFlow({
      flow: flow.id,
      cookie: jar.header,
      updateRecoveryFlowBody: { method: "code", code, csrf_token: csrfOf(sent.data) },
    }),
  );
  assert.equal(done.data.continue_with[0].action, "show_settings_ui");
  assert.ok(jar.cookies.has("ory_kratos_session"), "the browser got a session cookie");
  const { data: session } = await frontend.toSession({ cookie: jar.header });
  assert.equal(session.identity.traits.email, email(3));

  // Verification in the same browser (signed in is fine for verification).
  const vcreated = jar.absorb(await frontend.createBrowserVerificationFlow());
  const vsent = jar.absorb(
    await frontend.updateVerificationFlow({
      flow: vcreated.data.id,
      cookie: jar.header,
      updateVerificationFlowBody: { method: "code", email: email(3), csrf_token: csrfOf(vcreated.data) },
    }),
  );
  assert.equal(vsent.data.state, "sent_email");
  const vcode = await codeFor(email(3), 2);
  const { data: vdone } = await frontend.updateVerificationFlow({
    flow: vcreated.data.id,
    cookie: jar.header,
    updateVerificationFlowBody: { method: "code", code: vcode, csrf_token: csrfOf(vsent.data) },
  });
  assert.equal(vdone.state, "passed_challenge");
});

test("admin recovery codes and links", async () => {
  const identity = await createIdentity(email(4));
  const { data: code, status } = await identities.createRecoveryCodeForIdentity({
    createRecoveryCodeForIdentityBody: { identity_id: identity.id, expires_in: "15m", flow_type: "api" },
  });
  assert.equal(status, 201);
  assert.match(code.recovery_code, /^\d{6}$/);
  const flowId = new URL(code.recovery_link).searchParams.get("flow");
  const { data: done } = await frontend.updateRecoveryFlow({
    flow: flowId,
    updateRecoveryFlowBody: { method: "code", code: code.recovery_code },
  });
  assert.equal(done.state, "passed_challenge");
  const { data: link } = await identities.createRecoveryLinkForIdentity({
    createRecoveryLinkForIdentityBody: { identity_id: identity.id },
  });
  assert.match(link.recovery_link, /\/self-service\/recovery\?flow=[0-9a-f-]+&token=\w+$/);
  assert.ok(new Date(link.expires_at) > new Date());
  const missing = await failure(
    identities.createRecoveryCodeForIdentity({
      createRecoveryCodeForIdentityBody: { identity_id: "00000000-0000-4000-8000-000000000000" },
    }),
  );
  assert.equal(missing.status, 404);
});
