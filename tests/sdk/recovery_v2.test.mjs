// Recovery v2 (`feature_flags.choose_recovery_address`) driven by the official Ory SDK
// (@ory/kratos-client 26.2.0): native flows, the address typed (in any case), the code from
// the mail, unknown addresses answered alike. Run by the Rust test `sdk::recovery_v2`, which
// starts a real SMTP server and a server with the flag and continue-with transitions on.
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
const codeFor = (to, nth = 1) => mailCodeFor(mailbox, to, nth);
const ids = (flow) => [
  ...(flow.ui.messages ?? []).map((m) => m.id),
  ...flow.ui.nodes.flatMap((n) => n.messages.map((m) => m.id)),
];

test("recover by typing the address; the code signs in and opens settings", async () => {
  const address = `v2-${run}@example.org`;
  await identities.createIdentity({ createIdentityBody: { schema_id: "default", traits: { email: address } } });
  const { data: flow } = await frontend.createNativeRecoveryFlow();
  assert.equal(flow.state, "recovery_awaiting_address");
  let { data } = await frontend.updateRecoveryFlow({
    flow: flow.id,
    updateRecoveryFlowBody: { method: "code", recovery_address: address },
  });
  assert.equal(data.state, "recovery_awaiting_code");
  assert.deepEqual(ids(data), [1060004]);
  const code = await codeFor(address);
  ({ data } = await frontend.updateRecoveryFlow({ flow: flow.id, updateRecoveryFlowBody: { method: "code", code } }));
  assert.equal(data.state, "passed_challenge");
  const actions = data.continue_with.map((c) => c.action);
  assert.deepEqual(actions, ["set_ory_session_token", "show_settings_ui"]);
  const token = data.continue_with[0].ory_session_token;
  const { data: session } = await frontend.toSession({ xSessionToken: token });
  assert.equal(session.authentication_methods[0].method, "code_recovery");
});

test("the address typed in another case reaches the account (no choice to make)", async () => {
  const address = `v2case-${run}@example.org`;
  await identities.createIdentity({ createIdentityBody: { schema_id: "default", traits: { email: address } } });
  const { data: flow } = await frontend.createNativeRecoveryFlow();
  const { data } = await frontend.updateRecoveryFlow({
    flow: flow.id,
    updateRecoveryFlowBody: { method: "code", recovery_address: address.toUpperCase() },
  });
  assert.equal(data.state, "recovery_awaiting_code");
  assert.equal(data.ui.messages[0].context.masked_address, "v2****@example.org");
  const resend = data.ui.nodes.find((n) => n.attributes.name === "recovery_confirm_address");
  assert.equal(resend.attributes.value, address);
  assert.ok(await codeFor(address));
  // An address no account uses.
  const { data: other } = await frontend.createNativeRecoveryFlow();
  const two = `v2two-${run}@example.org`;
  const res = await frontend
    .updateRecoveryFlow({
      flow: other.id,
      updateRecoveryFlowBody: { method: "code", recovery_address: two },
    })
    .catch((e) => e.response);
  assert.equal(res.data.state, "recovery_awaiting_code", "an unknown address looks like a known one");
});
