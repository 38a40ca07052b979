// Passwordless sign-up and sign-in with one-time codes, driven by the official Ory SDK
// (@ory/kratos-client 26.2.0) through native flows. Run by the Rust test `sdk::passwordless`,
// which starts a real SMTP server and a server with `code.passwordless_enabled` and the
// session hook after code registration; codes are read from the delivered mail
// (TESSERA_MAILBOX, JSON lines).
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
const email = (n) => `pl-${run}-${n}@example.org`;

async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    if (!e.response) throw e;
    return e.response;
  }
  throw new Error("expected the call to fail");
}

const codeFor = (to, nth = 1) => mailCodeFor(mailbox, to, nth);

const ids = (flow) => [
  ...(flow.ui.messages ?? []).map((m) => m.id),
  ...flow.ui.nodes.flatMap((n) => n.messages.map((m) => m.id)),
];

test("sign up with an e-mailed code, then sign in with one", async () => {
  const address = email("signup");
  const traits = { email: address };
  const { data: flow } = await frontend.createNativeRegistrationFlow();
  // Step one: the code goes out (400 with the flow asking for it).
  let res = await failure(
    frontend.updateRegistrationFlow({ flow: flow.id, updateRegistrationFlowBody: { method: "code", traits } }),
  );
  assert.equal(res.status, 400);
  assert.equal(res.data.state, "sent_email");
  assert.deepEqual(ids(res.data), [1040005]);
  const code = await codeFor(address);
  // Changed traits: 4000036; a wrong code: 4040003.
  res = await failure(
    frontend.updateRegistrationFlow({
      flow: flow.id,
      updateRegistrationFlowBody: { method: "code", traits: { email: email("other") }, code },
    }),
  );
  assert.deepEqual(ids(res.data), [4000036]);
  res = await failure(
    frontend.updateRegistrationFlow({
      flow: flow.id,
      updateRegistrationFlowBody: { method: "code", traits, code: code === "000000" ? "111111" : "000000" },
    }),
  );
  assert.deepEqual(ids(res.data), [4040003]);
  const { data: done } = await frontend.updateRegistrationFlow({
    flow: flow.id,
    updateRegistrationFlowBody: { method: "code", traits, code },
  });
  assert.ok(done.session_token);
  assert.equal(done.identity.verifiable_addresses[0].verified, true);
  assert.equal(done.session.authentication_methods[0].method, "code");

  // Sign in: identifier, then the code.
  const { data: login } = await frontend.createNativeLoginFlow();
  res = await failure(
    frontend.updateLoginFlow({ flow: login.id, updateLoginFlowBody: { method: "code", identifier: address } }),
  );
  assert.equal(res.status, 400);
  assert.equal(res.data.state, "sent_email");
  assert.deepEqual(ids(res.data), [1010014]);
  const loginCode = await codeFor(address, 2);
  const { data: session } = await frontend.updateLoginFlow({
    flow: login.id,
    updateLoginFlowBody: { method: "code", identifier: address, code: loginCode },
  });
  assert.ok(session.session_token);
  assert.equal(session.session.identity.id, done.identity.id);
  const { data: whoami } = await frontend.toSession({ xSessionToken: session.session_token });
  assert.equal(whoami.authentication_methods[0].method, "code");
});

test("a wrong code keeps the flow usable; resend sends a new one", async () => {
  const address = email("resend");
  await identities.createIdentity({ createIdentityBody: { schema_id: "default", traits: { email: address } } });
  const { data: login } = await frontend.createNativeLoginFlow();
  await failure(frontend.updateLoginFlow({ flow: login.id, updateLoginFlowBody: { method: "code", identifier: address } }));
  const first = await codeFor(address);
  let res = await failure(
    frontend.updateLoginFlow({
      flow: login.id,
      updateLoginFlowBody: { method: "code", identifier: address, code: first === "000000" ? "111111" : "000000" },
    }),
  );
  assert.deepEqual(ids(res.data), [4010008]);
  res = await failure(
    frontend.updateLoginFlow({ flow: login.id, updateLoginFlowBody: { method: "code", identifier: address, resend: "code" } }),
  );
  assert.deepEqual(ids(res.data), [1010014]);
  const second = await codeFor(address, 2);
  const { data } = await frontend.updateLoginFlow({
    flow: login.id,
    updateLoginFlowBody: { method: "code", identifier: address, code: second },
  });
  assert.ok(data.session_token);
});

test("an unknown account cannot ask for a code", async () => {
  const { data: login } = await frontend.createNativeLoginFlow();
  const res = await failure(
    frontend.updateLoginFlow({ flow: login.id, updateLoginFlowBody: { method: "code", identifier: email("nobody") } }),
  );
  assert.equal(res.status, 400);
  assert.deepEqual(ids(res.data), [4000035]);
});
