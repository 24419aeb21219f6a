// A real OpenID Connect provider (panva/oidc-provider) for the identity tests.
// Reads its clients and accounts as JSON on stdin, listens on an ephemeral port on
// 127.0.0.1 and prints {"issuer": "..."} on one line once it is ready.
import http from 'node:http';
import Provider from 'oidc-provider';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const setup = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: setup.clients,
  // Every client must use PKCE, so a sign-in without it fails here as it would at Entra ID.
  pkce: { required: () => true },
  // Put the scopes' claims in the ID token itself: Forewarn reads roles from it.
  conformIdTokenClaims: false,
  scopes: ['openid', 'profile', 'groups'],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups', 'roles'] },
  cookies: { keys: [setup.cookie_key] },
  async findAccount(_ctx, id) {
    const account = setup.accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account }) };
  },
});
provider.on('server_error', (_ctx, err) => console.error(err));
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
