import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { advanceSigningKeys, REMOVAL_LEEWAY_MS } from '../../src/signing/signing-keys.ts';
import { cli, cliJson } from '../helpers/cli.ts';
import { createClient, createScope, type CreatedClient } from '../helpers/factories.ts';
import { accessToken, introspectAs } from '../helpers/oauth.ts';
import { discover, eventually, startTestServer, type Discovery, type TestServer } from '../helpers/server.ts';

const API = 'https://api.example.test';
const TOKEN_TTL_S = 8;

let server: TestServer;
let meta: Discovery;
let scope: string;
let app: CreatedClient;
let resourceServer: CreatedClient;

before(async () => {
  // Short windows instead of sleeping through hours: the JWKS cache window is 2 s.
  server = await startTestServer({ env: { LATCHKEY_JWKS_CACHE_TTL: '2s', LATCHKEY_ACCESS_TOKEN_TTL: `${TOKEN_TTL_S}s` } });
  meta = await discover(server);
  scope = await createScope(server);
  app = await createClient(server, { scopes: [scope], audiences: [API] });
  resourceServer = await createClient(server, { scopes: [scope], audiences: [API] });
});
after(() => server.close());

interface Minted {
  token: string;
  kid: string;
  exp: number;
}
const minted: Minted[] = [];
async function mint(): Promise<Minted> {
  const token = await accessToken(meta.token_endpoint, app);
  const entry = { token, kid: decodeProtectedHeader(token).kid!, exp: decodeJwt(token).exp! };
  minted.push(entry);
  return entry;
}
const jwksKids = async (): Promise<string[]> => {
  const response = await fetch(meta.jwks_uri);
  assert.equal(response.status, 200);
  return ((await response.json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
};
/** JWKS lists the key of every token that has not expired (with a second to spare for the clock). */
async function assertJwksCoversLiveTokens(): Promise<void> {
  const kids = await jwksKids();
  for (const entry of minted) {
    if (entry.exp * 1000 > Date.now() - 1_000) assert.ok(kids.includes(entry.kid), `JWKS lacks ${entry.kid}, which signed a token valid until ${entry.exp}`);
  }
}
const introspect = (token: string) => introspectAs(meta.introspection_endpoint, resourceServer, token);

// A resource server as the JWKS window allows: it keeps its copy for the whole window (2 s),
// and after a fetch it will not fetch again for a minute, even for a kid it does not know.
const remoteJwks = () => createRemoteJWKSet(new URL(meta.jwks_uri), { cacheMaxAge: 2_000, cooldownDuration: 60_000 });

describe('signing-key rotation on a running server', () => {
  it('publishes the next key first, switches without a restart, and never rejects a valid token', async () => {
    const jwks = remoteJwks();
    const asResourceServer = (token: string) => jwtVerify(token, jwks, { issuer: meta.issuer, audience: API, typ: 'at+jwt' });

    const before = await mint();
    await asResourceServer(before.token);
    const first = before.kid;
    assert.deepEqual(await jwksKids(), [first]);

    const rotated = await cliJson(server, ['signing', 'rotate']);
    assert.notEqual(rotated.kid, first);
    assert.equal(rotated.replaces, first);
    const second = rotated.kid as string;

    // Published at once (the node hears it on the bus), but it signs nothing yet.
    await eventually(jwksKids, (kids) => kids.includes(second), 1_000, 'the next key is not in JWKS within 1 s');
    assert.deepEqual((await jwksKids()).sort(), [first, second].sort());
    const during = await mint();
    assert.equal(during.kid, first, 'a next key must not sign');
    await asResourceServer(during.token);
    await assertJwksCoversLiveTokens();

    // After the window, the new key signs: the resource server's copy has aged out by then,
    // so it fetches the JWKS again and finds the key.
    await sleep(Math.max(0, Date.parse(rotated.activates_at) - Date.now()));
    const after = await eventually(mint, (entry) => entry.kid === second, 3_000, 'the new key does not sign 3 s after its activation time');
    await asResourceServer(after.token);
    // Tokens from the retired key still verify, at the resource server and at /introspect.
    await asResourceServer(before.token);
    for (const entry of [before, during, after]) assert.equal((await introspect(entry.token)).body.active, true);
    await assertJwksCoversLiveTokens();
    assert.deepEqual((await jwksKids()).sort(), [first, second].sort());
    const listed = await cliJson(server, ['signing', 'list']);
    assert.deepEqual(
      listed.keys.map((key: { kid: string; state: string }) => [key.kid, key.state]).sort(),
      [
        [first, 'retired'],
        [second, 'current'],
      ].sort(),
    );
    // The rebuilt provider kept the scope catalog in discovery.
    assert.ok(((await discover(server)).scopes_supported as string[]).includes(scope));

    // Until they expire: then they fail as expired, never as signed by an unknown key.
    await sleep(Math.max(0, during.exp * 1000 - Date.now() + 1_100));
    await assertJwksCoversLiveTokens();
    await assert.rejects(asResourceServer(before.token), errors.JWTExpired);
    assert.equal((await introspect(before.token)).text, '{"active":false}');
    assert.equal((await introspect(after.token)).body.active, true);

    // Once every token the first key signed has expired (+ leeway), it leaves JWKS.
    const realNow = server.deps.now;
    server.deps.now = () => new Date(Date.now() + TOKEN_TTL_S * 1000 + REMOVAL_LEEWAY_MS);
    try {
      const { changes } = await advanceSigningKeys(server.deps);
      assert.deepEqual(changes, [{ kid: first, event: 'removed' }]);
    } finally {
      server.deps.now = realNow;
    }
    await eventually(jwksKids, (kids) => !kids.includes(first), 1_000, 'the removed key is still in JWKS after 1 s');
    assert.deepEqual(await jwksKids(), [second]);
    assert.equal((await introspect(after.token)).body.active, true);
    await asResourceServer(after.token);
  });

  it('a second rotation while one is under way is refused with a clear message', async () => {
    const rotated = await cliJson(server, ['signing', 'rotate']);
    const kids = await eventually(jwksKids, (found) => found.includes(rotated.kid), 1_000, 'the next key is not in JWKS within 1 s');
    const again = await cli(server, ['signing', 'rotate', '--json']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`already under way: key ${rotated.kid}`));
    assert.deepEqual(await jwksKids(), kids, 'nothing new was published');
  });
});
