// Admin identity API driven by the official Ory SDK (@ory/kratos-client 26.2.0).
// Run by the Rust integration test `sdk::identities`, which starts a server and sets
// TESSERA_ADMIN_URL; `node --test` runs it standalone against any running server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Configuration, IdentityApi } from "@ory/kratos-client";

const admin = process.env.TESSERA_ADMIN_URL;
if (!admin) throw new Error("TESSERA_ADMIN_URL is not set");
const api = new IdentityApi(new Configuration({ basePath: admin, baseOptions: { timeout: 20000 } }));
const run = Math.random().toString(36).slice(2, 10);
const email = (n) => `sdk-${run}-${n}@example.org`;

async function status(promise) {
  try {
    const res = await promise;
    return res.status;
  } catch (e) {
    if (!e.response) throw e;
    return e.response.status;
  }
}

test("create, get, get by external id", async () => {
  const { data: created, status: code, headers } = await api.createIdentity({
    createIdentityBody: {
      schema_id: "default",
      traits: { email: email(1) },
      external_id: `ext-${run}`,
      metadata_public: { tier: 1 },
      credentials: { password: { config: { password: "sdk-password-123" } } },
    },
  });
  assert.equal(code, 201);
  assert.match(headers["location"], new RegExp(`/identities/${created.id}$`));
  assert.equal(created.state, "active");
  assert.deepEqual(created.credentials.password.identifiers, [email(1)]);
  assert.equal(created.verifiable_addresses[0].status, "pending");

  const { data: got } = await api.getIdentity({ id: created.id, includeCredential: ["password"] });
  assert.equal(got.id, created.id);
  assert.match(got.credentials.password.config.hashed_password, /^\$argon2id\$/);
  const { data: byExt } = await api.getIdentityByExternalID({ externalID: `ext-${run}` });
  assert.equal(byExt.id, created.id);
  assert.equal(await status(api.getIdentity({ id: "00000000-0000-0000-0000-000000000001" })), 404);
  const dup = await status(api.createIdentity({ createIdentityBody: { schema_id: "default", traits: { email: email(1) } } }));
  assert.equal(dup, 409);
});

test("list with filters and keyset pages", async () => {
  const ids = [];
  for (const n of [2, 3, 4]) {
    const { data } = await api.createIdentity({ createIdentityBody: { schema_id: "default", traits: { email: email(n) } } });
    ids.push(data.id);
  }
  const { data: one } = await api.listIdentities({ credentialsIdentifier: email(3).toUpperCase() });
  assert.equal(one.length, 1);
  assert.equal(one[0].id, ids[1]);
  const { data: byIds } = await api.listIdentities({ ids: [ids[0], ids[2]] });
  assert.deepEqual(byIds.map((i) => i.id).sort(), [ids[0], ids[2]].sort());
  const first = await api.listIdentities({ pageSize: 1 });
  assert.equal(first.data.length, 1);
  assert.match(first.headers["link"], /rel="next"/);
  const token = /page_token=([^&>]+)>; rel="next"/.exec(first.headers["link"])[1];
  const second = await api.listIdentities({ pageSize: 1, pageToken: token });
  assert.notEqual(second.data[0].id, first.data[0].id);
});

test("update, patch, batch, delete credentials, delete", async () => {
  const { data: created } = await api.createIdentity({
    createIdentityBody: {
      schema_id: "default",
      traits: { email: email(5) },
      credentials: {
        password: { config: { hashed_password: "$2a$04$ujIuzPKuqVFjxOj0jyaKouVA./Yyb/9dXsyVAK29fimgVTD0GRhde" } },
        oidc: { config: { providers: [{ provider: "github", subject: `s-${run}` }] } },
      },
    },
  });
  const { data: updated } = await api.updateIdentity({
    id: created.id,
    updateIdentityBody: { schema_id: "default", state: "inactive", traits: { email: email(6) } },
  });
  assert.equal(updated.state, "inactive");
  assert.deepEqual(updated.credentials.password.identifiers, [email(6)]);

  const { data: patched } = await api.patchIdentity({
    id: created.id,
    jsonPatch: [
      { op: "replace", path: "/state", value: "active" },
      { op: "add", path: "/metadata_admin", value: { reviewed: true } },
    ],
  });
  assert.equal(patched.state, "active");
  assert.deepEqual(patched.metadata_admin, { reviewed: true });
  assert.equal(await status(api.patchIdentity({ id: created.id, jsonPatch: [{ op: "remove", path: "/id" }] })), 400);

  const { data: batch } = await api.batchPatchIdentities({
    patchIdentitiesBody: {
      identities: [
        { create: { schema_id: "default", traits: { email: email(7) } }, patch_id: "00000000-0000-0000-0000-000000000007" },
        { create: { schema_id: "default", traits: { email: email(6) } } },
      ],
    },
  });
  assert.equal(batch.identities[0].action, "create");
  assert.equal(batch.identities[0].patch_id, "00000000-0000-0000-0000-000000000007");
  assert.equal(batch.identities[1].action, "error");
  assert.equal(batch.identities[1].error.code, 409);

  const del = await api.deleteIdentityCredentials({ id: created.id, type: "oidc", identifier: `github:s-${run}` });
  assert.equal(del.status, 204);
  assert.equal(await status(api.deleteIdentityCredentials({ id: created.id, type: "password" })), 400);
  assert.equal((await api.deleteIdentity({ id: created.id })).status, 204);
  assert.equal(await status(api.getIdentity({ id: created.id })), 404);
  assert.equal(await status(api.deleteIdentity({ id: created.id })), 404);
});
