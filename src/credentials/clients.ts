import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { OAuthClient, Tx } from '../db/database.ts';
import { changeCredentials } from '../lib/invalidation.ts';
import { Conflict, InvalidRequest, NotFound } from '../lib/errors.ts';
import { randomBase62 } from '../lib/random.ts';
import { resolveOwnerTeam } from '../accounts/owners.ts';
import { OWNER_SUSPENDED_SQL, parseReason, teamGroup } from '../accounts/suspension.ts';
import { credentialName, lockCredentialName, NameTaken } from './names.ts';
import { audiencesFor } from './apis.ts';
import { assertGrantableScopes, grantableOf, scopeName } from './scopes.ts';
import { assertJwksUriAllowed } from '../oauth/jwks-uri.ts';
import { effectiveLimits, planIdByName, planName, type LimitColumns, type Limits } from '../limits/plans.ts';

export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

const jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) });

export const createClientInput = z
  .object({
    name: credentialName,
    // May be empty (see createApiKeyInput).
    scopes: z.array(scopeName),
    audiences: z.array(z.url({ protocol: /^https?$/ })).default([]),
    /** An operator names the owner (CLI): a team id or a person's email. */
    owner: z.string().trim().min(1).max(320).optional(),
    /** A page already knows the team. */
    teamId: z.uuid().optional(),
    authMethod: z.enum(AUTH_METHODS).default('client_secret_basic'),
    jwks: jwks.optional(),
    // Keys fetched over plain HTTP could be swapped by anyone on the path.
    jwksUri: z.url({ protocol: /^https$/ }).optional(),
    /** The plan limiting its requests at the token endpoint. */
    plan: planName.optional(),
  })
  .superRefine((input, ctx) => {
    const hasKeys = input.jwks !== undefined || input.jwksUri !== undefined;
    if (input.authMethod === 'private_key_jwt' && !hasKeys) {
      ctx.addIssue({ code: 'custom', message: 'private_key_jwt needs --jwks or --jwks-uri' });
    }
    if (input.jwks && input.jwksUri) ctx.addIssue({ code: 'custom', message: 'give --jwks or --jwks-uri, not both' });
    if (input.authMethod !== 'private_key_jwt' && hasKeys) {
      ctx.addIssue({ code: 'custom', message: '--jwks/--jwks-uri only apply to private_key_jwt' });
    }
    for (const key of input.jwks?.keys ?? []) {
      if ('d' in key || 'k' in key) ctx.addIssue({ code: 'custom', message: 'jwks must hold public keys only' });
    }
  });

export interface CreatedClient {
  client_id: string;
  client_secret?: string;
  scopes: string[];
  audiences: string[];
}

/** Secrets carry a prefix so that secret scanners recognise them. 256 bits of entropy. */
export const newClientSecret = () => `lks_${randomBase62(43)}`;

/** NameTaken when an application of the team that is not revoked already has this name (see createClient). */
export async function assertClientNameFree(db: Pick<Tx, 'oAuthClient'>, teamId: string, name: string): Promise<void> {
  const taken = await db.oAuthClient.findFirst({ where: { teamId, name, status: { not: 'revoked' } }, select: { id: true } });
  if (taken) throw new NameTaken('application', name);
}

/**
 * Registers a client. As with keys (createApiKey), names are unique among a team's
 * applications that are not revoked: the list, the audit trail and the request mails name
 * them, and two "billing" applications cannot be told apart there. Revoking one frees its name.
 */
export async function createClient(deps: Deps, input: z.input<typeof createClientInput>, actor: Actor): Promise<CreatedClient> {
  const parsed = createClientInput.parse(input);
  const scopes = [...new Set(parsed.scopes)];
  if (parsed.jwksUri) await assertJwksUriAllowed(deps, parsed.jwksUri);
  const id = `lkc_${randomBase62(22)}`;
  const secret = parsed.authMethod === 'private_key_jwt' ? undefined : newClientSecret();
  const now = deps.now();

  const audiences = await changeCredentials(deps, async (tx, invalidate) => {
    await assertGrantableScopes(tx, scopes);
    const audiences = await audiencesFor(deps, tx, scopes, parsed.audiences);
    const teamId = parsed.teamId ?? (parsed.owner ? await resolveOwnerTeam(tx, parsed.owner) : null);
    if (teamId) {
      await lockCredentialName(tx, 'client', teamId, parsed.name);
      await assertClientNameFree(tx, teamId, parsed.name);
    }
    const planId = parsed.plan === undefined ? null : await planIdByName(tx, parsed.plan);
    await tx.oAuthClient.create({
      data: {
        id,
        planId,
        name: parsed.name,
        teamId,
        scopes,
        audiences,
        grantTypes: ['client_credentials'],
        authMethod: parsed.authMethod,
        jwks: parsed.jwks as object | undefined,
        jwksUri: parsed.jwksUri,
        secretDigest: secret ? deps.keyring.digest(secret) : null,
        createdAt: now,
        updatedAt: now,
      },
    });
    await appendAuditEvents(
      tx,
      [actorEvent(actor, 'client.created', 'client', id, { name: parsed.name, scopes, audiences, authMethod: parsed.authMethod, teamId, ...(parsed.plan ? { plan: parsed.plan } : {}) })],
      now,
    );
    await invalidate(`client:${id}`);
    return audiences;
  });
  return { client_id: id, ...(secret ? { client_secret: secret } : {}), scopes, audiences };
}

/** The cached view of a client that every request path reads. */
export interface ClientRecord {
  id: string;
  name: string;
  /**
   * The status every request path obeys: the client's own ('active' | 'revoked'), except that an
   * active client of a suspended team (or person) reads 'suspended'. So the token endpoint, client
   * authentication at /introspect and /revoke, and introspection of its tokens all refuse it
   * without knowing about suspension, and unsuspending restores it exactly.
   */
  status: string;
  /** Its owner is suspended (accounts/suspension.ts). */
  suspended: boolean;
  /** JWTs issued before this instant are inactive (revokeClientTokens). */
  tokensRevokedBefore: Date | null;
  teamId: string | null;
  scopes: string[];
  audiences: string[];
  grantTypes: string[];
  authMethod: AuthMethod;
  jwks: { keys: Record<string, unknown>[] } | null;
  jwksUri: string | null;
  secretDigest: Uint8Array | null;
  previousSecretDigest: Uint8Array | null;
  previousSecretExpiresAt: Date | null;
  secretVersion: number;
  /** Its plan's limits at the token endpoint with its own overrides; null when none apply. */
  limits: Limits | null;
}

const toRecord = (row: OAuthClient & { plan: LimitColumns | null }, suspended: boolean): ClientRecord => ({
  id: row.id,
  name: row.name,
  status: suspended && row.status === 'active' ? 'suspended' : row.status,
  suspended,
  tokensRevokedBefore: row.tokensRevokedBefore,
  teamId: row.teamId,
  scopes: row.scopes,
  audiences: row.audiences,
  grantTypes: row.grantTypes,
  authMethod: row.authMethod as AuthMethod,
  jwks: (row.jwks as ClientRecord['jwks']) ?? null,
  jwksUri: row.jwksUri,
  secretDigest: row.secretDigest,
  previousSecretDigest: row.previousSecretDigest,
  previousSecretExpiresAt: row.previousSecretExpiresAt,
  secretVersion: row.secretVersion,
  limits: effectiveLimits(row, row.plan),
});

// Client ids are ours: anything else is rejected without a database read.
export const CLIENT_ID = /^lkc_[0-9A-Za-z]{22}$/;

const OWNER_SUSPENDED_BY_TEAM_SQL = `
  SELECT ${OWNER_SUSPENDED_SQL} AS suspended FROM team t LEFT JOIN account a ON a.id = t.personal_account_id WHERE t.id = $1::uuid`;

/**
 * Any client, whatever its status (callers decide what a suspended client may do). Cached in
 * its team's group, so that suspending the team drops it on every node with one message.
 */
export function findClient(deps: Pick<Deps, 'prisma' | 'cache'>, id: string): Promise<ClientRecord | null> {
  if (!CLIENT_ID.test(id)) return Promise.resolve(null);
  return deps.cache.get(
    `client:${id}`,
    async () => {
      const row = await deps.prisma.oAuthClient.findUnique({ where: { id }, include: { plan: true } });
      if (!row) return null;
      const owner = row.teamId ? await deps.prisma.$queryRawUnsafe<{ suspended: boolean }[]>(OWNER_SUSPENDED_BY_TEAM_SQL, row.teamId) : [];
      return toRecord(row, owner[0]?.suspended ?? false);
    },
    (client) => (client.teamId ? teamGroup(client.teamId) : null),
  );
}

/** The cached record, synchronously; undefined when it is not cached (use findClient). */
export function cachedClient(deps: Pick<Deps, 'cache'>, id: string): ClientRecord | null | undefined {
  return CLIENT_ID.test(id) ? deps.cache.peek<ClientRecord>(`client:${id}`) : null;
}

/**
 * Constant-time check of a presented secret against the current and (within grace) previous
 * digest. A match of the previous secret is noted with usage (an alert and a reminder may follow:
 * the application has not switched to its new secret yet).
 */
export function clientSecretMatches(deps: Pick<Deps, 'keyring' | 'now' | 'usage'>, client: ClientRecord, presented: string): boolean {
  return clientSecretMatch(deps, client, presented) !== null;
}

/** clientSecretMatches, telling which secret matched. */
export function clientSecretMatch(deps: Pick<Deps, 'keyring' | 'now' | 'usage'>, client: ClientRecord, presented: string): 'current' | 'previous' | null {
  if (client.previousSecretExpiresAt === null || client.previousSecretExpiresAt <= deps.now()) return deps.keyring.matches(presented, client.secretDigest) ? 'current' : null;
  const matched = deps.keyring.matchIndex(presented, client.secretDigest, client.previousSecretDigest);
  if (matched === 1) deps.usage.previousSecretUsed(client.id);
  return matched === 0 ? 'current' : matched === 1 ? 'previous' : null;
}

async function lockClient(tx: Tx, id: string): Promise<OAuthClient> {
  const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM oauth_client WHERE id = ${id} FOR UPDATE`;
  if (rows.length === 0) throw new NotFound('client');
  return tx.oAuthClient.findUniqueOrThrow({ where: { id } });
}

export interface RotatedSecret {
  client_id: string;
  client_secret: string;
  previous_expires_at: string;
  /** Retired scopes the application lost with this rotation (see scopes.ts); omitted when none. */
  dropped_scopes?: string[];
}

/**
 * Issues a new secret; the current one keeps working until `graceMs` from now. While a
 * previous secret is still inside its grace window another graceful rotation is refused, so
 * concurrent rotations (serialised by the row lock) yield exactly one live successor. A
 * rotation with no grace is the emergency path: it always succeeds and leaves only the new
 * secret working. An application is its own successor: a rotation drops the scopes retired
 * since it was granted them, as a key's successor does (see scopes.ts).
 */
export async function rotateClientSecret(deps: Deps, id: string, options: { graceMs: number }, actor: Actor): Promise<RotatedSecret> {
  if (!Number.isFinite(options.graceMs) || options.graceMs < 0) throw new InvalidRequest('grace must be a non-negative duration');
  const secret = newClientSecret();
  const now = deps.now();
  const previousExpiresAt = new Date(now.getTime() + options.graceMs);
  const dropped = await changeCredentials(deps, async (tx, invalidate) => {
    const client = await lockClient(tx, id);
    if (client.status === 'revoked') throw new Conflict('client is revoked');
    if (client.authMethod === 'private_key_jwt') throw new InvalidRequest('client authenticates with private_key_jwt and has no secret');
    const graceful = options.graceMs > 0;
    if (graceful && client.previousSecretExpiresAt && client.previousSecretExpiresAt > now) {
      throw new Conflict(`a previous secret is still valid until ${client.previousSecretExpiresAt.toISOString()}; rotate with --grace 0s to end it now`);
    }
    const { kept, dropped } = await grantableOf(tx, client.scopes);
    await tx.oAuthClient.update({
      where: { id },
      data: {
        secretDigest: deps.keyring.digest(secret),
        previousSecretDigest: graceful ? client.secretDigest : null,
        previousSecretExpiresAt: graceful ? previousExpiresAt : null,
        // A use of the secret rotated out before is not a use of this one (limits/reminders.ts).
        previousSecretUsedAt: null,
        secretVersion: { increment: 1 },
        ...(dropped.length > 0 ? { scopes: kept } : {}),
      },
    });
    await appendAuditEvents(
      tx,
      [actorEvent(actor, 'client.secret_rotated', 'client', id, {
          previousExpiresAt: previousExpiresAt.toISOString(),
          version: client.secretVersion + 1,
          teamId: client.teamId,
          ...(dropped.length > 0 ? { droppedScopes: dropped } : {}),
        })],
      now,
    );
    await invalidate(`client:${id}`);
    return dropped;
  });
  return { client_id: id, client_secret: secret, previous_expires_at: previousExpiresAt.toISOString(), ...(dropped.length > 0 ? { dropped_scopes: dropped } : {}) };
}

/**
 * Revokes a client: its secrets stop working and every token it holds introspects inactive.
 * Already revoked: nothing changes and no second event, and `changed` is false (decided under
 * the client's lock, so of two concurrent revocations exactly one changes it). The reason
 * (admin screens) is audited.
 */
export async function revokeClient(deps: Deps, id: string, actor: Actor, options: { reason?: string } = {}): Promise<{ client_id: string; revoked_at: string; changed: boolean }> {
  const reason = options.reason?.slice(0, 500);
  const now = deps.now();
  const { revokedAt, changed } = await changeCredentials(deps, async (tx, invalidate) => {
    const client = await lockClient(tx, id);
    if (client.status === 'revoked') return { revokedAt: client.revokedAt ?? now, changed: false };
    await tx.oAuthClient.update({ where: { id }, data: { status: 'revoked', revokedAt: now } });
    await tx.oidcPayload.deleteMany({ where: { payload: { path: ['clientId'], equals: id } } });
    await appendAuditEvents(tx, [actorEvent(actor, 'client.revoked', 'client', id, { teamId: client.teamId, ...(reason ? { reason } : {}) })], now);
    await invalidate(`client:${id}`);
    return { revokedAt: now, changed: true };
  });
  return { client_id: id, revoked_at: revokedAt.toISOString(), changed };
}

export interface RevokedClientTokens {
  client_id: string;
  /** Tokens issued before this instant introspect inactive; later ones are unaffected. */
  tokens_revoked_before: string;
}

/**
 * "Revoke all live tokens of an application" (issue 8 §1.2): every JWT the client was issued
 * so far introspects inactive on every node within a second, while the client itself stays as
 * it was, so its next token works. JWTs are not stored, so this is a cutoff on the client
 * (token-cutoff.ts compares it with a token's iat); its opaque tokens, which are stored, are
 * deleted. Refused for a revoked client, whose tokens are already dead; any other repeat is a
 * new cutoff, since tokens may have been issued since the last one.
 */
export async function revokeClientTokens(deps: Deps, actor: Actor, clientId: string, reason: string): Promise<RevokedClientTokens> {
  const why = parseReason(reason);
  if (!CLIENT_ID.test(clientId)) throw new NotFound('client');
  const now = deps.now();
  await changeCredentials(deps, async (tx, invalidate) => {
    const client = await lockClient(tx, clientId);
    if (client.status === 'revoked') throw new Conflict('client is revoked: its tokens are already inactive');
    await tx.oAuthClient.update({ where: { id: clientId }, data: { tokensRevokedBefore: now } });
    await tx.oidcPayload.deleteMany({ where: { model: { in: ['ClientCredentials', 'AccessToken'] }, payload: { path: ['clientId'], equals: clientId } } });
    await appendAuditEvents(tx, [actorEvent(actor, 'client.tokens_revoked', 'client', clientId, { reason: why, teamId: client.teamId, before: now.toISOString() })], now);
    await invalidate(`client:${clientId}`);
  });
  return { client_id: clientId, tokens_revoked_before: now.toISOString() };
}
