/** The authenticated client at /introspect or /revoke (a resource server, or the token's own client). */
export interface TokenCaller {
  readonly id: string;
  readonly audiences: readonly string[];
}

/** What the rules need of a presented credential: whom it is for, and the client it was issued to (an API key has none). */
export interface PresentedCredential {
  readonly audiences: readonly string[];
  readonly clientId?: string | undefined;
}

/**
 * A credential presented at a revocation endpoint: a token issued to a client, or an API key
 * presented in full (PRESENTED_API_KEY).
 */
export type RevocableCredential = { readonly kind: 'api_key' } | { readonly kind: 'token'; readonly clientId: string };

export const PRESENTED_API_KEY: RevocableCredential = Object.freeze({ kind: 'api_key' });

/**
 * Who may learn about, or revoke, a credential presented at the token endpoints. Plain
 * functions over cached records: introspection of a cached API key runs them per request
 * without allocating (no closures, no iterators).
 */
export const tokenPolicy = {
  /**
   * RFC 7662 §2.1/§4: a resource server sees a credential only if it is meant for it: one of
   * the credential's audiences is one of the caller's, or the caller is the client the token
   * was issued to. Anything else is answered `{active:false}` and nothing more.
   */
  introspect(caller: TokenCaller, credential: PresentedCredential): boolean {
    if (credential.clientId === caller.id) return true;
    const { audiences } = credential;
    for (let i = 0; i < audiences.length; i++) if (caller.audiences.includes(audiences[i]!)) return true;
    return false;
  },

  /**
   * RFC 7009 §2.1: a client revokes only the tokens issued to it. An API key is revoked by
   * whoever presents it in full: holding the whole key is the strongest proof there is.
   */
  revoke(caller: TokenCaller, credential: RevocableCredential): boolean {
    return credential.kind === 'api_key' || credential.clientId === caller.id;
  },
};
