import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { CredentialRequest, Tx } from '../db/database.ts';
import { Conflict, InvalidRequest, NotFound } from '../lib/errors.ts';
import { randomBase62 } from '../lib/random.ts';
import { requestDecidedMessage } from '../mail/messages.ts';
import { assertKeyNameFree, createApiKey, revokeApiKey, type IssuedApiKey } from './api-keys.ts';
import { assertClientNameFree, createClient, createClientInput, revokeClient, type CreatedClient } from './clients.ts';
import { credentialName, NameTaken } from './names.ts';
import { assertGrantableScopes, scopeName } from './scopes.ts';

/**
 * Credential requests: a key or application asking for a scope marked "requires approval"
 * waits here until an operator approves or denies it. Approval issues the credential; its
 * secret is kept encrypted (keyring) until the requester has seen it once.
 */

export type RequestKind = 'api_key' | 'client';
export type RequestStatus = 'pending' | 'approved' | 'denied';
export const REQUEST_STATUSES: readonly RequestStatus[] = ['pending', 'approved', 'denied'];

export const REQUEST_ID = /^lkr_[0-9A-Za-z]{16}$/;

/** The scopes among `scopes` that the catalog marks "requires approval". */
export async function scopesNeedingApproval(deps: Pick<Deps, 'prisma'>, scopes: string[]): Promise<string[]> {
  if (scopes.length === 0) return [];
  const rows = await deps.prisma.scope.findMany({ where: { name: { in: scopes }, requiresApproval: true }, select: { name: true }, orderBy: { name: 'asc' } });
  return rows.map((row) => row.name);
}

export const requestCredentialInput = z.object({
  teamId: z.uuid(),
  kind: z.enum(['api_key', 'client']),
  name: credentialName,
  scopes: z.array(scopeName).min(1),
  audiences: z.array(z.url({ protocol: /^https?$/ })).default([]),
  expiresInSeconds: z.number().int().positive().max(10 * 365 * 86_400).optional(),
  requestedById: z.uuid(),
});

export async function requestCredential(deps: Deps, input: z.input<typeof requestCredentialInput>, actor: Actor): Promise<{ id: string }> {
  const parsed = requestCredentialInput.parse(input);
  const scopes = [...new Set(parsed.scopes)];
  if (parsed.kind === 'client' && parsed.expiresInSeconds !== undefined) throw new InvalidRequest('applications do not expire');
  const id = `lkr_${randomBase62(16)}`;
  const now = deps.now();
  await deps.prisma.$transaction(async (tx) => {
    await assertGrantableScopes(tx, scopes);
    await tx.credentialRequest.create({
      data: {
        id,
        teamId: parsed.teamId,
        kind: parsed.kind,
        name: parsed.name,
        scopes,
        audiences: [...new Set(parsed.audiences)],
        expiresInSeconds: parsed.expiresInSeconds ?? null,
        requestedById: parsed.requestedById,
        status: 'pending',
        createdAt: now,
      },
    });
    await appendAuditEvents(tx, [actorEvent(actor, 'request.created', 'request', id, { kind: parsed.kind, name: parsed.name, scopes, teamId: parsed.teamId })], now);
  });
  return { id };
}

/** A team's new credential, from a page: issued now, or filed as a request when a scope needs approval. */
interface Issue {
  teamId: string;
  /** Who asks: the requester of record if it becomes a request. */
  requestedById: string;
  name: string;
  scopes: string[];
  audiences: string[];
}
export interface ApiKeyIssue extends Issue {
  kind: 'api_key';
  expiresInMs?: number;
}
export interface ClientIssue extends Issue {
  kind: 'client';
  authMethod: 'client_secret_basic' | 'private_key_jwt';
  jwks?: z.input<typeof createClientInput>['jwks'];
}
export type IssueOutcome<T> = { requested: string } | { issued: T };

/** A request carries no key set: a private_key_jwt application that needs approval is set up by an admin. */
export class RequestNeedsClientSecret extends InvalidRequest {
  constructor() {
    super('an application with a scope that requires approval is requested with a client secret; an admin then sets up its keys');
  }
}

/**
 * "Scopes need approval → file a request, else create", for every page that makes a
 * credential. The request path checks the name now too, so nobody waits for an admin only for
 * approval to fail on a name a live credential took (approval checks it again when it issues).
 */
export async function issueOrRequest(deps: Deps, input: ApiKeyIssue, actor: Actor): Promise<IssueOutcome<IssuedApiKey>>;
export async function issueOrRequest(deps: Deps, input: ClientIssue, actor: Actor): Promise<IssueOutcome<CreatedClient>>;
export async function issueOrRequest(deps: Deps, input: ApiKeyIssue | ClientIssue, actor: Actor): Promise<IssueOutcome<IssuedApiKey | CreatedClient>> {
  const { teamId, name, scopes, audiences } = input;
  if ((await scopesNeedingApproval(deps, scopes)).length > 0) {
    if (input.kind === 'client' && input.authMethod === 'private_key_jwt') throw new RequestNeedsClientSecret();
    const trimmed = credentialName.parse(name);
    if (input.kind === 'api_key') await assertKeyNameFree(deps.prisma, teamId, trimmed, deps.now());
    else await assertClientNameFree(deps.prisma, teamId, trimmed);
    const expiresInSeconds = input.kind === 'api_key' && input.expiresInMs ? Math.round(input.expiresInMs / 1000) : undefined;
    const request = await requestCredential(deps, { teamId, kind: input.kind, name, scopes, audiences, expiresInSeconds, requestedById: input.requestedById }, actor);
    return { requested: request.id };
  }
  if (input.kind === 'api_key') return { issued: await createApiKey(deps, { name, scopes, audiences, teamId, expiresInMs: input.expiresInMs }, actor) };
  return { issued: await createClient(deps, { name, scopes, audiences, teamId, authMethod: input.authMethod, jwks: input.jwks }, actor) };
}

export interface RequestView extends CredentialRequest {
  team: { id: string; name: string };
  requestedBy: { id: string; email: string } | null;
}

/** Requests, newest first, with their team and requester (for the CLI and the portal lists). */
export async function listRequests(deps: Pick<Deps, 'prisma'>, filter: { status?: RequestStatus; teamId?: string } = {}): Promise<RequestView[]> {
  const rows = await deps.prisma.credentialRequest.findMany({
    where: { status: filter.status, teamId: filter.teamId },
    include: { team: { select: { id: true, name: true } } },
    orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
    take: 1_000,
  });
  const accounts = await deps.prisma.account.findMany({
    where: { id: { in: [...new Set(rows.map((row) => row.requestedById))] } },
    select: { id: true, email: true },
  });
  const byId = new Map(accounts.map((a) => [a.id, a]));
  return rows.map((row) => ({ ...row, requestedBy: byId.get(row.requestedById) ?? null }));
}

/** One request, or null for an unknown or malformed id (routes authorize what they get). */
export function findRequest(deps: Pick<Deps, 'prisma'>, id: string): Promise<CredentialRequest | null> {
  if (!REQUEST_ID.test(id)) return Promise.resolve(null);
  return deps.prisma.credentialRequest.findUnique({ where: { id } });
}

async function lockRequest(tx: Tx, id: string): Promise<CredentialRequest> {
  if (!REQUEST_ID.test(id)) throw new NotFound('request');
  const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM credential_request WHERE id = ${id} FOR UPDATE`;
  if (rows.length === 0) throw new NotFound('request');
  return tx.credentialRequest.findUniqueOrThrow({ where: { id } });
}

const assertPending = (request: CredentialRequest) => {
  if (request.status !== 'pending') throw new Conflict(`request is already ${request.status}`);
};

const kindLabel = (kind: string) => (kind === 'client' ? 'application' : 'API key');

async function mailOutcome(deps: Deps, request: CredentialRequest, approved: boolean, note: string | null) {
  const account = await deps.prisma.account.findUnique({ where: { id: request.requestedById }, select: { email: true, status: true } });
  if (!account || account.status !== 'active') return;
  deps.mailer.send(
    requestDecidedMessage({
      to: account.email,
      kind: kindLabel(request.kind),
      name: request.name,
      approved,
      note: note ?? undefined,
      link: `${deps.config.LATCHKEY_ISSUER}/portal/requests/${request.id}`,
    }),
  );
}

const noteText = z.string().trim().max(500);

/**
 * Approves a pending request and issues its credential for the request's team, the approver
 * as the actor.
 *
 * createApiKey/createClient commit in their own transactions (changeCredentials), so the
 * credential cannot be created under this request's row lock. The order is therefore:
 *   1. a cheap check that the request is pending (refuses a second approval up front);
 *   2. create the credential (own transaction);
 *   3. a second transaction locks the request row, re-checks that it is still pending, and
 *      stores approved + decidedAt/decidedById + resultId + the encrypted secret, with the
 *      `request.approved` audit event.
 * If step 3 finds the request decided meanwhile (a concurrent approve or deny won), the
 * credential just made is revoked and the caller gets the conflict: exactly one decision and
 * one `request.approved`/`request.denied` event. A crash between 2 and 3 leaves the request
 * pending (it can be approved again) and an unusable credential whose secret nobody ever saw
 * (it was never stored or shown): the failure mode errs towards no access, never towards a
 * request marked approved without a credential.
 */
export async function approveRequest(
  deps: Deps,
  id: string,
  options: { note?: string },
  actor: Actor,
): Promise<{ id: string; status: 'approved'; credential_id: string }> {
  const note = noteText.parse(options.note ?? '') || null;
  const existing = await findRequest(deps, id);
  if (!existing) throw new NotFound('request');
  assertPending(existing);

  const expiresInMs = existing.expiresInSeconds ? existing.expiresInSeconds * 1000 : undefined;
  const common = { name: existing.name, scopes: existing.scopes, audiences: existing.audiences, teamId: existing.teamId };
  const issued = await (
    existing.kind === 'client'
      ? createClient(deps, common, actor).then((c) => ({ id: c.client_id, secret: c.client_secret! }))
      : createApiKey(deps, { ...common, expiresInMs }, actor).then((k) => ({ id: k.id, secret: k.key }))
  ).catch((error: unknown) => (error instanceof NameTaken ? nameTakenOrDecided(deps, id, error) : Promise.reject(error)));

  const now = deps.now();
  let decided: CredentialRequest;
  try {
    decided = await deps.prisma.$transaction(async (tx) => {
      const request = await lockRequest(tx, id);
      assertPending(request);
      const updated = await tx.credentialRequest.update({
        where: { id },
        data: {
          status: 'approved',
          decidedAt: now,
          decidedById: actor.id ?? actor.type,
          note,
          resultId: issued.id,
          resultSecretEncrypted: deps.keyring.encrypt(issued.secret),
        },
      });
      await appendAuditEvents(
        tx,
        [actorEvent(actor, 'request.approved', 'request', id, { kind: request.kind, teamId: request.teamId, credentialId: issued.id, note })],
        now,
      );
      return updated;
    });
  } catch (error) {
    // Lost a race (or failed to record): the credential must not outlive an unrecorded approval.
    const undo = { type: 'system' as const, requestId: actor.requestId };
    if (existing.kind === 'client') await revokeClient(deps, issued.id, undo).catch((e) => deps.log.error({ err: e, request: id }, 'could not revoke an orphan client'));
    else await revokeApiKey(deps, issued.id, { reason: `request ${id} was decided concurrently` }, undo).catch((e) => deps.log.error({ err: e, request: id }, 'could not revoke an orphan key'));
    throw error;
  }
  await mailOutcome(deps, decided, true, note);
  return { id, status: 'approved', credential_id: issued.id };
}

/**
 * A concurrent approval of the same request issues the same name first (step 2), and records
 * its decision a moment later (step 3): the loser's news is "already approved", not the name.
 * So wait briefly for the request to be decided; if it stays pending, the name really is taken.
 */
async function nameTakenOrDecided(deps: Deps, id: string, error: NameTaken): Promise<never> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const request = await findRequest(deps, id);
    if (request) assertPending(request);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw error;
}

export async function denyRequest(deps: Deps, id: string, options: { reason: string }, actor: Actor): Promise<{ id: string; status: 'denied' }> {
  const reason = noteText.min(1, 'a reason is required').parse(options.reason ?? '');
  const now = deps.now();
  const decided = await deps.prisma.$transaction(async (tx) => {
    const request = await lockRequest(tx, id);
    assertPending(request);
    const updated = await tx.credentialRequest.update({
      where: { id },
      data: { status: 'denied', decidedAt: now, decidedById: actor.id ?? actor.type, note: reason },
    });
    await appendAuditEvents(tx, [actorEvent(actor, 'request.denied', 'request', id, { kind: request.kind, teamId: request.teamId, reason })], now);
    return updated;
  });
  await mailOutcome(deps, decided, false, reason);
  return { id, status: 'denied' };
}

export interface RevealedSecret {
  kind: RequestKind;
  credentialId: string;
  secret: string;
}

/**
 * The issued secret of an approved request, once: under the request's row lock, the encrypted
 * copy is read and cleared by a conditional update in one transaction, so of concurrent
 * reveals exactly one gets it; the others (and every later one) get null. Authorization is
 * the caller's (the route's policy check); `accountId` is who saw it, for the audit trail.
 */
export async function revealApprovedSecret(deps: Deps, id: string, accountId: string, actor: Actor): Promise<RevealedSecret | null> {
  if (!REQUEST_ID.test(id)) return null;
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    // The row lock serialises concurrent reveals; the update is conditional on the secret
    // still being there, so only the first of them reads it.
    const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM credential_request WHERE id = ${id} FOR UPDATE`;
    if (locked.length === 0) return null;
    const request = await tx.credentialRequest.findUniqueOrThrow({ where: { id } });
    if (request.status !== 'approved' || !request.resultSecretEncrypted || !request.resultId) return null;
    const cleared = await tx.credentialRequest.updateMany({ where: { id, status: 'approved', resultSecretEncrypted: { not: null } }, data: { resultSecretEncrypted: null } });
    if (cleared.count !== 1) return null;
    await appendAuditEvents(
      tx,
      [actorEvent(actor, 'request.secret_revealed', 'request', id, { kind: request.kind, credentialId: request.resultId, teamId: request.teamId, accountId })],
      now,
    );
    return { kind: request.kind as RequestKind, credentialId: request.resultId, secret: deps.keyring.decrypt(request.resultSecretEncrypted) };
  });
}
