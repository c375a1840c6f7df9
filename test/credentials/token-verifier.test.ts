import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type Provider from 'oidc-provider';
import { createTokenVerifier } from '../../src/credentials/token-verifier.ts';

const ISSUER = 'https://auth.example.test';
const TTL_MS = 600_000;

async function setup() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), alg: 'ES256', kid: 'k1', use: 'sig' };
  let clock = new Date('2027-03-01T10:00:00Z');
  const deps = { config: { LATCHKEY_ISSUER: ISSUER, LATCHKEY_ACCESS_TOKEN_TTL: TTL_MS }, now: () => clock } as never;
  const verifier = createTokenVerifier(deps, { keys: [jwk] }, {} as Provider);
  const sign = (claims: Record<string, unknown> = {}) => {
    const iat = Math.floor(clock.getTime() / 1000);
    return new SignJWT({ client_id: 'app', jti: `j-${Math.random()}`, ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setIssuedAt(iat)
      .setExpirationTime(iat + TTL_MS / 1000)
      .sign(privateKey);
  };
  return { verifier, sign, setClock: (at: Date) => void (clock = at), clock: () => clock };
}

describe('JWT verification, remembered between uses', () => {
  it('answers a token verified before as expired once its exp has passed (the clock is checked on every use)', async () => {
    const { verifier, sign, setClock, clock } = await setup();
    const token = await sign();
    assert.equal((await verifier.verifyJwt(token)).failure, undefined);
    assert.equal((await verifier.verifyJwt(token)).failure, undefined, 'again, from memory');
    const exp = Math.floor(clock().getTime() / 1000) + TTL_MS / 1000;
    setClock(new Date((exp - 1) * 1000));
    assert.equal((await verifier.verifyJwt(token)).failure, undefined, 'a second before exp');
    setClock(new Date(exp * 1000));
    const expired = await verifier.verifyJwt(token);
    assert.equal(expired.failure, 'EXPIRED', 'at exp, as jose says');
    assert.equal(expired.claims?.client_id, 'app');
  });

  it('does not let a remembered token vouch for another: a changed signature or payload is invalid', async () => {
    const { verifier, sign } = await setup();
    const token = await sign();
    assert.equal((await verifier.verifyJwt(token)).failure, undefined);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const flipped = `${header}.${payload}.${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BA' : 'AA'}`;
    assert.equal((await verifier.verifyJwt(flipped)).failure, 'INVALID');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), scope: 'admin' })).toString('base64url');
    assert.equal((await verifier.verifyJwt(`${header}.${forged}.${signature}`)).failure, 'INVALID');
  });

  it('never remembers a refusal: a token not yet valid (nbf) is refused until it is', async () => {
    const { verifier, sign, setClock, clock } = await setup();
    const now = Math.floor(clock().getTime() / 1000);
    const token = await sign({ nbf: now + 30 });
    assert.equal((await verifier.verifyJwt(token)).failure, 'INVALID');
    setClock(new Date((now + 31) * 1000));
    assert.equal((await verifier.verifyJwt(token)).failure, undefined);
  });
});
