// A real OpenID Connect provider (panva/oidc-provider) for the identity tests.
// Reads its clients and accounts as JSON on stdin, listens on an ephemeral port on
// 127.0.0.1 and prints {"issuer": "..."} on one line once it is ready.
//
// Setup keys beyond clients and accounts:
// - conform_id_token_claims: true for oidc-provider's default, where the scopes' claims are
//   released from userinfo only; false (the default here) puts them in the ID token too.
// - id_token_overrides: {client_id: {claims, header, corrupt_signature}}: the ID tokens
//   issued to that client are re-signed with the provider's own key after these changes,
//   as a provider that is misconfigured or impersonated would send them.
// GET /__test/jwks answers {"fetches": n}, how often the key set was read; with
// ?max_age=N the key set is served with Cache-Control: max-age=N from then on (?max_age=
// with no value: without Cache-Control again).
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const setup = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'provider-key-1', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: setup.clients,
  jwks: { keys: [signingJwk] },
  // Every client must use PKCE, so a sign-in without it fails here as it would at Entra ID.
  pkce: { required: () => true },
  conformIdTokenClaims: Boolean(setup.conform_id_token_claims),
  scopes: ['openid', 'profile', 'groups'],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups', 'roles'] },
  cookies: { keys: [setup.cookie_key] },
  async findAccount(_ctx, id) {
    const account = setup.accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account }) };
  },
});

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const unb64 = (text) => JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));

function reshape(token, override) {
  const [header, payload] = token.split('.');
  const newHeader = b64({ ...unb64(header), ...(override.header || {}) });
  const newPayload = b64({ ...unb64(payload), ...(override.claims || {}) });
  const input = `${newHeader}.${newPayload}`;
  const signature = crypto.sign('sha256', Buffer.from(input), privateKey);
  if (override.corrupt_signature) signature[10] ^= 0xff;
  return `${input}.${signature.toString('base64url')}`;
}

const overrides = setup.id_token_overrides || {};
const issue = provider.IdToken.prototype.issue;
provider.IdToken.prototype.issue = async function issueWithOverrides(options) {
  const token = await issue.call(this, options);
  const override = overrides[this.client?.clientId];
  return override && options?.use === 'idtoken' ? reshape(token, override) : token;
};

const jwks = { fetches: 0, maxAge: null };
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/jwks') {
    jwks.fetches += 1;
    if (jwks.maxAge !== null) ctx.set('cache-control', `public, max-age=${jwks.maxAge}`);
  }
});
provider.on('server_error', (_ctx, err) => console.error(err));
const callback = provider.callback();
server.on('request', (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname !== '/__test/jwks') return callback(req, res);
  if (url.searchParams.has('max_age')) {
    const value = url.searchParams.get('max_age');
    jwks.maxAge = value === '' ? null : Number(value);
  }
  res.setHeader('content-type', 'application/json');
  return res.end(JSON.stringify({ fetches: jwks.fetches }));
});
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
