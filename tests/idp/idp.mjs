// A real OpenID Connect provider for tests (npm `oidc-provider`), on loopback only.
//
//   node idp.mjs [--port N]          (or IDP_PORT; 0 or nothing: a free port)
//
// Prints one line `IDP_ISSUER=http://127.0.0.1:<port>` on stdout once it listens.
//
// Environment:
//   IDP_PASSWORD              password of every test user (default "wonderland")
//   IDP_ACCESS_TOKEN_TTL      seconds an access token lives (default 300)
//   IDP_SHORT_TTL             seconds for the client "infinstor-lab-short" (default 4)
//   IDP_REFRESH_TOKEN_TTL     seconds a refresh token lives (default 86400)
//   IDP_REDIRECT_URIS         extra redirect URIs for the lab clients, comma-separated. Loopback
//                             http URIs match on any port (RFC 8252: the clients are "native").
//   IDP_AUDIENCE              the resource (JWT `aud`) of access tokens (default urn:infinstor:tracking)
//   IDP_AUTOMATION_SECRET     client_secret of "infinstor-automation" (default automation-secret)
//
// Login page (for browser tests): form#login-form, input[name="username"],
// input[name="password"], button[type="submit"]; a wrong password re-renders it with
// p.error. Consent is implied for the first-party clients below (no consent page).

import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({ options: { port: { type: 'string' } }, strict: false });
const PORT = Number(args.port ?? process.env.IDP_PORT ?? 0);
const HOST = '127.0.0.1';
const PASSWORD = process.env.IDP_PASSWORD || 'wonderland';
const AUDIENCE = process.env.IDP_AUDIENCE || 'urn:infinstor:tracking';
const ACCESS_TTL = Number(process.env.IDP_ACCESS_TOKEN_TTL || 300);
const SHORT_TTL = Number(process.env.IDP_SHORT_TTL || 4);
const REFRESH_TTL = Number(process.env.IDP_REFRESH_TOKEN_TTL || 86400);
const AUTOMATION_SECRET = process.env.IDP_AUTOMATION_SECRET || 'automation-secret';
const CALLBACK = '/infinstor/api/auth/callback';

const USERS = {
  alice: { name: 'Alice Liddell', org: 'acme', groups: ['vision'] },
  bob: { name: 'Bob Builder', org: 'acme', groups: ['vision'] },
  carol: { name: 'Carol Danvers', org: 'acme', groups: ['nlp'] },
  dave: { name: 'Dave Lister', org: 'globex', groups: ['research'] },
  // For the company service's tests: another group of acme, and an acme organisation admin.
  erin: { name: 'Erin Hannon', org: 'acme', groups: ['sales'] },
  frank: { name: 'Frank Admin', org: 'acme', groups: ['acme-admins'] },
  // In more groups than fit in a token: Entra ID leaves them out ("group overage").
  olivia: { name: 'Olivia Overage', org: 'acme', groups: ['vision', ...Array.from({ length: 210 }, (_, i) => `team-${i}`)] },
  // Users without an organisation, or without groups, for the service check's token analysis.
  nora: { name: 'Nora Noorg', org: null, groups: ['vision'] },
  gus: { name: 'Gus Nogroups', org: 'acme', groups: [] },
};

// Each client `layout-<provider>` gets access tokens laid out like that provider's (see
// docs/identity-providers.md); the service reads each through configuration only.
// A stable UUID-shaped id for a name, like Entra ID's object and tenant ids.
function objectId(kind, name) {
  const hex = crypto.createHash('sha1').update(`${kind}:${name}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const LAYOUTS = {
  // Entra ID v2 access token: UPN in preferred_username, tenant in tid, group object ids; overage.
  entra: (id, user) => ({
    preferred_username: `${id}@${user.org || 'none'}.example`, name: user.name, oid: objectId('user', id),
    ...(user.org ? { tid: objectId('tenant', user.org) } : {}),
    ...(user.groups.length > 200
      ? { _claim_names: { groups: 'src1' },
          _claim_sources: { src1: { endpoint: `https://graph.microsoft.com/v1.0/users/${objectId('user', id)}/getMemberObjects` } } }
      : user.groups.length ? { groups: user.groups.map((g) => objectId('group', g)) } : {}),
  }),
  // Okta custom authorization server: sub is the login (email), groups by a claim rule, the
  // organisation from a profile attribute by a custom claim.
  okta: (id, user) => ({
    sub: `${id}@${user.org || 'none'}.example`, uid: objectId('user', id).replace(/-/g, '').slice(0, 20),
    ...(user.groups.length ? { groups: user.groups } : {}), ...(user.org ? { company: user.org.toUpperCase() } : {}),
  }),
  // Keycloak 26: the Group Membership mapper's groups with their full path (its default), realm
  // roles nested in realm_access (default roles that every user has), the organizations list.
  keycloak: (id, user) => ({
    preferred_username: id, email: `${id}@${user.org || 'none'}.example`,
    groups: user.groups.map((g) => `/${g}`),
    realm_access: { roles: ['offline_access', 'default-roles-acme', ...user.groups.map((g) => `role-${g}`)] },
    ...(user.org ? { organization: [user.org] } : {}),
  }),
  // Auth0: custom claims namespaced by an Action; Organizations' org_id.
  auth0: (id, user) => ({
    sub: `auth0|${objectId('user', id).slice(0, 24)}`,
    'https://infinstor.example/email': `${id}@${user.org || 'none'}.example`,
    'https://infinstor.example/groups': user.groups,
    ...(user.org ? { org_id: `org_${objectId('org', user.org).replace(/-/g, '').slice(0, 16)}` } : {}),
  }),
  // Amazon Cognito access token: username, cognito:groups, client_id (its audience), token_use;
  // the organisation added by a pre-token-generation trigger.
  cognito: (id, user) => ({
    username: id, token_use: 'access', 'cognito:groups': user.groups, ...(user.org ? { 'custom:org': user.org } : {}),
  }),
  // Google Workspace through a broker: the hosted domain (hd) names the organisation; Google
  // sends no groups (they come from SCIM or an admin).
  google: (id, user) => ({ email: `${id}@${user.org || 'none'}.example`, email_verified: true, ...(user.org ? { hd: `${user.org}.example` } : {}) }),
};

function claimsOf(id) {
  const user = USERS[id];
  return {
    sub: id,
    name: user.name,
    preferred_username: id,
    email: `${id}@${user.org || 'none'}.example`,
    email_verified: true,
    ...(user.groups.length ? { groups: user.groups } : {}),
    ...(user.org ? { org: user.org } : {}),
  };
}

const redirectUris = [
  `http://127.0.0.1${CALLBACK}`,
  `http://localhost${CALLBACK}`,
  ...(process.env.IDP_REDIRECT_URIS || '').split(',').map((s) => s.trim()).filter(Boolean),
];

const labClient = (clientId) => ({
  client_id: clientId,
  client_name: 'InfinStor for JupyterLab',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
  response_types: ['code'],
  redirect_uris: redirectUris,
});

const LAYOUT_CLIENTS = Object.keys(LAYOUTS).map((name) => `layout-${name}`);
// An opaque (non-JWT) access token, as some providers issue by default.
const OPAQUE_CLIENT = 'layout-opaque';
const FIRST_PARTY = new Set(['infinstor-lab', 'infinstor-lab-short', 'infinstor-automation', ...LAYOUT_CLIENTS, OPAQUE_CLIENT]);

// A fresh signing key per run; the service under test must fetch it from the JWKS.
const jwk = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
jwk.kid = crypto.randomBytes(8).toString('hex');
jwk.alg = 'RS256';
jwk.use = 'sig';

const server = http.createServer();
await new Promise((resolve) => server.listen(PORT, HOST, resolve));
const issuer = `http://${HOST}:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    labClient('infinstor-lab'),
    labClient('infinstor-lab-short'),
    ...LAYOUT_CLIENTS.map(labClient),
    labClient(OPAQUE_CLIENT),
    {
      client_id: 'infinstor-automation',
      client_secret: AUTOMATION_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    org: ['org'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', 'org'],
  pkce: { required: (ctx, client) => client.clientAuthMethod === 'none' },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => AUDIENCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => {
        if (resource !== AUDIENCE) throw new errors.InvalidTarget();
        return {
          scope: 'mlflow',
          audience: AUDIENCE,
          accessTokenTTL: client.clientId === 'infinstor-lab-short' ? SHORT_TTL : ACCESS_TTL,
          accessTokenFormat: client.clientId === OPAQUE_CLIENT ? 'opaque' : 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || ACCESS_TTL,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || ACCESS_TTL,
    RefreshToken: REFRESH_TTL,
    DeviceCode: 600,
    Grant: REFRESH_TTL,
    Interaction: 600,
    Session: REFRESH_TTL,
    IdToken: 3600,
    AuthorizationCode: 60,
  },
  issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: () => false,
  rotateRefreshToken: true,
  async findAccount(ctx, sub) {
    if (!USERS[sub]) return undefined;
    return { accountId: sub, claims: async () => claimsOf(sub) };
  },
  // Identity travels in the access token too, so the tracking service needs no userinfo call.
  async extraTokenClaims(ctx, token) {
    if (!token.accountId || !USERS[token.accountId]) return undefined;
    const layout = LAYOUTS[(token.clientId || '').replace(/^layout-/, '')];
    if (layout) return layout(token.accountId, USERS[token.accountId]);
    const { preferred_username, email, groups, org, name } = claimsOf(token.accountId);
    return { preferred_username, email, groups, org, name };
  },
  // First-party clients: consent is implied (the grant covers what they ask for).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const found = await ctx.oidc.provider.Grant.find(grantId);
      if (found) return found;
    }
    if (!FIRST_PARTY.has(ctx.oidc.client.clientId) || !ctx.oidc.session.accountId) return undefined;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params?.scope || 'openid');
    grant.addOIDCClaims(['name', 'preferred_username', 'email', 'email_verified', 'groups', 'org']);
    grant.addResourceScope(AUDIENCE, 'mlflow');
    await grant.save();
    return grant;
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<p class="error">${escape(out.error)}: ${escape(out.error_description || '')}</p>`);
  },
});
provider.proxy = false;

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginForm(uid, error, loginHint) {
  return page('Sign in to the test IdP', `
${error ? `<p class="error">${escape(error)}</p>` : ''}
<form id="login-form" method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <label>Username <input type="text" name="username" required autofocus value="${escape(loginHint || '')}"></label>
  <label>Password <input type="password" name="password" required></label>
  <button type="submit">Sign in</button>
</form>
<p><a id="abort" href="/interaction/${escape(uid)}/abort">Cancel</a></p>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 65536) throw new Error('body too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

function send(res, status, html) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page('Error', '<p class="error">Unknown sign-in request</p>'));
  const { prompt, params } = details;
  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'The user cancelled the sign-in',
    }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'login') {
    if (req.method === 'GET' && !action) return send(res, 200, loginForm(uid, '', params.login_hint));
    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      const username = (form.username || '').trim().toLowerCase();
      if (!USERS[username] || form.password !== PASSWORD) {
        return send(res, 200, loginForm(uid, 'Unknown user or wrong password.', form.username));
      }
      return provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
    }
  }
  if (prompt.name === 'consent') {
    // Only reached for clients that are not first-party: grant what was asked.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    if (prompt.details.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return send(res, 400, page('Error', `<p class="error">Unexpected step ${escape(prompt.name)}</p>`));
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  const match = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|abort))?$/);
  if (!match) return callback(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    send(res, 400, page('Error', `<p class="error">${escape(err.message)}</p>`));
  }
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => server.close(() => process.exit(0)));
console.log(`IDP_ISSUER=${issuer}`);
