// A real OpenID Connect provider for tessera's tests: npm `oidc-provider` (a certified
// implementation) on loopback, with an interaction step that signs in without a form.
//
//   node oidc-provider.mjs PORT REDIRECT_URI[,REDIRECT_URI…]
//
// Accounts are e-mail addresses. The account that signs in is the authorization request's
// `login_hint`, else the one set with `POST /_control/next {"account": …}`, else
// `alice@example.org`. `POST /_control/account {"account", "claims"}` sets extra claims;
// `POST /_control/next {"deny": true}` makes the next interaction end with `access_denied`.
// Two clients: `tessera` (confidential, client_secret_basic) and `native-app` (public, PKCE),
// whose ID tokens native tests submit. Prints `ready <issuer>` once it listens.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const redirectUris = (process.argv[3] || '').split(',').filter(Boolean);
const issuer = `http://127.0.0.1:${port}`;

const extra = new Map();
let next = { account: null, deny: false };

function subjectOf(account) {
  return crypto.createHash('sha256').update(account).digest('hex').slice(0, 24);
}
const accounts = new Map();

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'tessera',
      client_secret: 'tessera-client-secret-0123456789abcdef',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'native-app',
      redirect_uris: ['http://127.0.0.1/native-callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'website'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  // The ID token carries the claims (Kratos reads them from there by default).
  conformIdTokenClaims: false,
  pkce: { required: () => false },
  features: { devInteractions: { enabled: false } },
  ttl: { Session: 60, Interaction: 300, Grant: 600 },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: account,
          email_verified: true,
          name: account.split('@')[0],
          given_name: account.split('@')[0],
          family_name: 'Tester',
          ...(extra.get(account) || {}),
        };
      },
    };
  },
});
provider.proxy = false;

function readJson(req) {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { try { resolve(JSON.parse(body || '{}')); } catch { resolve({}); } });
  });
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (req.method === 'POST' && url.pathname === '/_control/next') {
      const body = await readJson(req);
      next = { account: body.account || null, deny: Boolean(body.deny) };
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/_control/account') {
      const body = await readJson(req);
      extra.set(body.account, body.claims || {});
      res.writeHead(204).end();
      return;
    }
    if (url.pathname.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      if (next.deny) {
        next = { account: null, deny: false };
        await provider.interactionFinished(req, res, {
          error: 'access_denied',
          error_description: 'The user said no.',
        }, { mergeWithLastSubmission: false });
        return;
      }
      if (details.prompt.name === 'login') {
        const account = details.params.login_hint || next.account || 'alice@example.org';
        next.account = null;
        const id = subjectOf(account);
        accounts.set(id, account);
        await provider.interactionFinished(req, res, { login: { accountId: id } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      if (missing.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    callback(req, res);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e && e.stack || e));
  }
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
