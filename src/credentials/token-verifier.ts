import { createLocalJWKSet, errors, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type Provider from 'oidc-provider';
import type { Deps } from '../context.ts';

/** What Latchkey needs to recognise tokens it issued: its JWT keys and its opaque-token store. */
export interface TokenVerifier {
  verifyJwt(token: string): Promise<JwtVerification>;
  findOpaque(token: string): Promise<OpaqueToken | null>;
}

/**
 * A verified JWT's claims, or why it failed: EXPIRED carries the claims too (the signature
 * held), INVALID nothing (bad signature, unknown key, wrong type or issuer, missing claims).
 */
export type JwtVerification = { claims: JWTPayload; failure?: undefined } | { failure: 'EXPIRED'; claims: JWTPayload } | { failure: 'INVALID'; claims?: undefined };

export interface OpaqueToken {
  /** oidc-provider's model name: the token's row is (model, jti) in oidc_payload. */
  model: string;
  jti: string;
  clientId: string;
  accountId?: string;
  scope?: string;
  aud: string[];
  iat: number;
  exp: number;
}

const OPAQUE_TOKEN = /^[\w-]{43}$/;

/** Clock and rounding slack on a token's lifetime. */
const LIFETIME_LEEWAY_S = 60;
/** Tokens whose signature and claims checked out, remembered (about 1 KiB each). */
const VERIFIED_MAX = 10_000;

export function createTokenVerifier(deps: Pick<Deps, 'config' | 'now'>, publicJwks: { keys: JWK[] }, provider: Provider): TokenVerifier {
  // Keys are chosen by kid among our own only; jku/x5u/embedded jwk headers are never consulted,
  // and each key's `alg` pins the algorithm a token may claim for it.
  const keys = createLocalJWKSet(publicJwks);
  const algorithms = [...new Set(publicJwks.keys.map((key) => key.alg).filter((alg): alg is string => !!alg))];
  // Latchkey never issues a token that lives longer than LATCHKEY_ACCESS_TOKEN_TTL: one that
  // claims to (exp 10 years after iat) was not minted by this configuration (issue 9 §1.11).
  const maxLifetime = deps.config.LATCHKEY_ACCESS_TOKEN_TTL / 1000 + LIFETIME_LEEWAY_S;
  // A resource server introspects the same token on every call it serves, and an ES256
  // signature check costs more than the rest of the answer. The same bytes under the same keys
  // (this verifier lives as long as its key set) verify the same way, so a token that checked
  // out is remembered; only the clock is checked again on each use. Revocation is looked up
  // by the caller every time, as before.
  const verified = new LRUCache<string, JWTPayload>({ max: VERIFIED_MAX });
  return {
    async verifyJwt(token) {
      const known = verified.get(token);
      if (known) {
        const now = Math.floor(deps.now().getTime() / 1000);
        // jose's own tests, without tolerance: expired at exp, not valid before nbf.
        if (known.exp! <= now) return { failure: 'EXPIRED', claims: known };
        if (known.nbf === undefined || known.nbf <= now) return { claims: known };
      }
      try {
        const { payload } = await jwtVerify(token, keys, { algorithms, issuer: deps.config.LATCHKEY_ISSUER, typ: 'at+jwt', requiredClaims: ['exp', 'iat', 'jti', 'client_id'], currentDate: deps.now() });
        if (payload.exp! - payload.iat! > maxLifetime) return { failure: 'INVALID' };
        verified.set(token, payload);
        return { claims: payload };
      } catch (error) {
        // jose checks the signature before the claims: an expired token's claims are genuine.
        return error instanceof errors.JWTExpired ? { failure: 'EXPIRED', claims: error.payload } : { failure: 'INVALID' };
      }
    },
    async findOpaque(token) {
      // oidc-provider's opaque values are 43-character nanoids: anything else is not one of
      // ours, and not worth two database reads.
      if (!OPAQUE_TOKEN.test(token)) return null;
      type Found = { kind: string; jti: string; clientId?: string; scope?: string; iat?: number; exp?: number; isExpired: boolean };
      const models = [provider.ClientCredentials, provider.AccessToken] as unknown as { find(value: string): Promise<Found | undefined> }[];
      for (const Model of models) {
        const found = await Model.find(token).catch(() => undefined);
        if (found && !found.isExpired) {
          const aud = (found as { aud?: string | string[] }).aud;
          return {
            model: found.kind,
            jti: found.jti,
            clientId: found.clientId!,
            accountId: (found as { accountId?: string }).accountId,
            scope: found.scope,
            aud: aud === undefined ? [] : Array.isArray(aud) ? aud : [aud],
            iat: found.iat!,
            exp: found.exp!,
          };
        }
      }
      return null;
    },
  };
}
