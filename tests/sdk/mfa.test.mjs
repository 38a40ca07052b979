// Second factors driven by the official Ory SDK (@ory/kratos-client 26.2.0): TOTP and lookup
// secrets enrolled through native settings flows, then asked for by an aal2 login. Run by the
// Rust test `sdk::mfa`, which starts a server with TOTP and lookup secrets enabled. TOTP codes
// are computed here (RFC 6238, SHA-1, 6 digits, 30 s) from the secret the flow shows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { Configuration, FrontendApi, IdentityApi } from "@ory/kratos-client";

const pub = process.env.TESSERA_PUBLIC_URL;
const admin = process.env.TESSERA_ADMIN_URL;
if (!pub || !admin) throw new Error("TESSERA_PUBLIC_URL / TESSERA_ADMIN_URL are not set");
const frontend = new FrontendApi(new Configuration({ basePath: pub, baseOptions: { timeout: 20000 } }));
const identities = new IdentityApi(new Configuration({ basePath: admin, baseOptions: { timeout: 20000 } }));
const run = Math.random().toString(36).slice(2, 10);
const password = "sdk-second-factor-pw-1";

async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    if (!e.response) throw e;
    return e.response;
  }
  throw new Error("expected the call to fail");
}

function base32(secret) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totp(secret, at = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return value.toString().padStart(6, "0");
}

const byName = (flow, name) =>
  flow.ui.nodes.find((n) => n.attributes.name === name || n.attributes.id === name);

async function signUp(email) {
  const { data: flow } = await frontend.createNativeRegistrationFlow();
  const { data } = await frontend.updateRegistrationFlow({
    flow: flow.id,
    updateRegistrationFlowBody: { method: "password", traits: { email }, password },
  });
  return data.session_token;
}

async function signIn(email) {
  const { data: flow } = await frontend.createNativeLoginFlow();
  const { data } = await frontend.updateLoginFlow({
    flow: flow.id,
    updateLoginFlowBody: { method: "password", identifier: email, password },
  });
  assert.equal(data.session.authenticator_assurance_level, "aal1");
  return data.session_token;
}

test("TOTP: enrol in settings, then sign in with a code at aal2", async () => {
  const email = `totp-${run}@example.org`;
  const token = await signUp(email);
  const { data: flow } = await frontend.createNativeSettingsFlow({ xSessionToken: token });
  const qr = byName(flow, "totp_qr");
  assert.equal(qr.type, "img");
  assert.match(qr.attributes.src, /^data:image\/png;base64,/);
  const secret = byName(flow, "totp_secret_key").attributes.text.context.secret;

  const wrong = await failure(
    frontend.updateSettingsFlow({
      flow: flow.id,
      xSessionToken: token,
      updateSettingsFlowBody: { method: "totp", totp_code: "000000" === totp(secret) ? "111111" : "000000" },
    }),
  );
  assert.equal(wrong.status, 400);
  assert.equal(byName(wrong.data, "totp_code").messages[0].id, 4000008);

  const { data: saved } = await frontend.updateSettingsFlow({
    flow: flow.id,
    xSessionToken: token,
    updateSettingsFlowBody: { method: "totp", totp_code: totp(secret) },
  });
  assert.equal(saved.state, "success");
  assert.ok(byName(saved, "totp_unlink"));

  // A password session is aal1: whoami asks for the second factor.
  const aal1 = await signIn(email);
  const refused = await failure(frontend.toSession({ xSessionToken: aal1 }));
  assert.equal(refused.status, 403);
  assert.equal(refused.data.error.id, "session_aal2_required");

  const { data: login } = await frontend.createNativeLoginFlow({ aal: "aal2", xSessionToken: aal1 });
  assert.equal(login.requested_aal, "aal2");
  assert.deepEqual(
    login.ui.nodes.map((n) => n.attributes.name),
    ["csrf_token", "totp_code", "method"],
  );
  const { data: done } = await frontend.updateLoginFlow({
    flow: login.id,
    xSessionToken: aal1,
    updateLoginFlowBody: { method: "totp", totp_code: totp(secret) },
  });
  assert.equal(done.session.authenticator_assurance_level, "aal2");
  assert.deepEqual(
    done.session.authentication_methods.map((m) => [m.method, m.aal]),
    [
      ["password", "aal1"],
      ["totp", "aal2"],
    ],
  );
  const { data: session } = await frontend.toSession({ xSessionToken: aal1 });
  assert.equal(session.authenticator_assurance_level, "aal2");

  // The admin API shows the key only when asked, in Kratos' shape.
  const { data: ident } = await identities.getIdentity({ id: session.identity.id, includeCredential: ["totp"] });
  assert.match(ident.credentials.totp.config.totp_url, /^otpauth:\/\/totp\//);
});

test("lookup secrets: generate, confirm, spend one at aal2, reveal it as used", async () => {
  const email = `lookup-${run}@example.org`;
  const token = await signUp(email);
  const { data: flow } = await frontend.createNativeSettingsFlow({ xSessionToken: token });
  assert.ok(byName(flow, "lookup_secret_regenerate"));
  const { data: shown } = await frontend.updateSettingsFlow({
    flow: flow.id,
    xSessionToken: token,
    updateSettingsFlowBody: { method: "lookup_secret", lookup_secret_regenerate: true },
  });
  const codes = byName(shown, "lookup_secret_codes").attributes.text.context.secrets.map((s) => s.context.secret);
  assert.equal(codes.length, 12);
  const { data: confirmed } = await frontend.updateSettingsFlow({
    flow: flow.id,
    xSessionToken: token,
    updateSettingsFlowBody: { method: "lookup_secret", lookup_secret_confirm: true },
  });
  assert.equal(confirmed.state, "success");

  const aal1 = await signIn(email);
  const { data: login } = await frontend.createNativeLoginFlow({ aal: "aal2", xSessionToken: aal1 });
  const { data: done } = await frontend.updateLoginFlow({
    flow: login.id,
    xSessionToken: aal1,
    updateLoginFlowBody: { method: "lookup_secret", lookup_secret: codes[0] },
  });
  assert.equal(done.session.authenticator_assurance_level, "aal2");

  const again = await signIn(email);
  const { data: second } = await frontend.createNativeLoginFlow({ aal: "aal2", xSessionToken: again });
  const used = await failure(
    frontend.updateLoginFlow({
      flow: second.id,
      xSessionToken: again,
      updateLoginFlowBody: { method: "lookup_secret", lookup_secret: codes[0] },
    }),
  );
  assert.equal(used.status, 400);
  assert.equal(used.data.ui.messages[0].id, 4000012);

  const { data: settings } = await frontend.createNativeSettingsFlow({ xSessionToken: aal1 });
  const { data: revealed } = await frontend.updateSettingsFlow({
    flow: settings.id,
    xSessionToken: aal1,
    updateSettingsFlowBody: { method: "lookup_secret", lookup_secret_reveal: true },
  });
  const secrets = byName(revealed, "lookup_secret_codes").attributes.text.context.secrets;
  assert.equal(secrets[0].id, 1050014);
  assert.equal(secrets[1].context.secret, codes[1]);
});
