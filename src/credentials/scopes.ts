import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import { changeCredentials } from '../lib/invalidation.ts';
import { Conflict, LatchkeyError, NotFound } from '../lib/errors.ts';

/**
 * The scope catalog. A scope may be described, marked "requires approval" and retired. A
 * retired scope is never granted again (new keys, applications, requests and approvals refuse
 * it), but credentials that already hold it keep it, and keep working, until they are rotated:
 * a key's successor and an application after a secret rotation drop it (see grantableOf).
 * Retired scopes stay known to the token endpoint for that reason. Scopes are never deleted:
 * the audit trail and old credentials still name them.
 */

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); we keep to a readable subset.
export const scopeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9:._/-]{0,127}$/, 'scope names are 1-128 of A-Z a-z 0-9 : . _ / -');
export const scopeDescription = z.string().trim().min(1).max(500);

export const createScopeInput = z.object({
  name: scopeName,
  description: scopeDescription,
  requiresApproval: z.boolean().default(false),
});

export const updateScopeInput = z.object({
  description: scopeDescription.optional(),
  requiresApproval: z.boolean().optional(),
});

/** A scope as the catalog shows it (CLI, portal, admin). */
export interface ScopeView {
  name: string;
  description: string;
  requiresApproval: boolean;
  api: { id: string; name: string; audience: string } | null;
  retiredAt: Date | null;
  createdAt: Date;
}

const SCOPE_VIEW_SELECT = {
  name: true,
  description: true,
  requiresApproval: true,
  retiredAt: true,
  createdAt: true,
  api: { select: { id: true, name: true, audience: true } },
} as const;

/** The JSON form of a scope (CLI `--json`). */
export const presentScope = (scope: ScopeView) => ({
  name: scope.name,
  description: scope.description,
  requires_approval: scope.requiresApproval,
  api: scope.api?.name ?? null,
  retired_at: scope.retiredAt?.toISOString() ?? null,
});

export async function createScope(deps: Deps, input: z.input<typeof createScopeInput>, actor: Actor) {
  const scope = createScopeInput.parse(input);
  return changeCredentials(deps, async (tx, invalidate) => {
    const existing = await tx.scope.findUnique({ where: { name: scope.name } });
    if (existing) throw new Conflict(existing.retiredAt ? `scope ${scope.name} already exists (retired); retired names are not reused` : `scope ${scope.name} already exists`);
    const now = deps.now();
    const created = await tx.scope.create({ data: { ...scope, createdAt: now } });
    await appendAuditEvents(tx, [actorEvent(actor, 'scope.created', 'scope', scope.name, { requiresApproval: scope.requiresApproval })], now);
    await invalidate('scopes');
    return created;
  });
}

async function lockScope(tx: Tx, name: string) {
  if (!scopeName.safeParse(name).success) throw new NotFound('scope');
  const rows = await tx.$queryRaw<{ name: string }[]>`SELECT name FROM scope WHERE name = ${name} FOR UPDATE`;
  if (rows.length === 0) throw new NotFound('scope');
  return tx.scope.findUniqueOrThrow({ where: { name }, select: SCOPE_VIEW_SELECT });
}

/**
 * Changes a scope's description or its "requires approval" mark. Only what changes is written
 * and audited; a change to nothing is no change and leaves no event.
 */
export async function updateScope(deps: Deps, name: string, input: z.input<typeof updateScopeInput>, actor: Actor): Promise<ScopeView> {
  const changes = updateScopeInput.parse(input);
  return changeCredentials(deps, async (tx, invalidate) => {
    const scope = await lockScope(tx, name);
    const data: { description?: string; requiresApproval?: boolean } = {};
    if (changes.description !== undefined && changes.description !== scope.description) data.description = changes.description;
    if (changes.requiresApproval !== undefined && changes.requiresApproval !== scope.requiresApproval) data.requiresApproval = changes.requiresApproval;
    if (Object.keys(data).length === 0) return scope;
    const now = deps.now();
    const updated = await tx.scope.update({ where: { name }, data, select: SCOPE_VIEW_SELECT });
    await appendAuditEvents(tx, [actorEvent(actor, 'scope.updated', 'scope', name, data)], now);
    await invalidate('scopes');
    return updated;
  });
}

/** Retires a scope (see the top of this file). Retiring a retired scope is a conflict, with no second event. */
export async function retireScope(deps: Deps, name: string, options: { reason?: string }, actor: Actor): Promise<ScopeView> {
  const reason = options.reason?.trim().slice(0, 500) || null;
  return changeCredentials(deps, async (tx, invalidate) => {
    const scope = await lockScope(tx, name);
    if (scope.retiredAt) throw new Conflict(`scope ${name} is already retired`);
    const now = deps.now();
    const retired = await tx.scope.update({ where: { name }, data: { retiredAt: now }, select: SCOPE_VIEW_SELECT });
    await appendAuditEvents(tx, [actorEvent(actor, 'scope.retired', 'scope', name, { api: scope.api?.name ?? null, reason })], now);
    await invalidate('scopes');
    return retired;
  });
}

/** Every scope, retired ones included, by name. */
export function listScopes(deps: Pick<Deps, 'prisma'>): Promise<ScopeView[]> {
  return deps.prisma.scope.findMany({ select: SCOPE_VIEW_SELECT, orderBy: { name: 'asc' } });
}

export function findScope(deps: Pick<Deps, 'prisma'>, name: string): Promise<ScopeView | null> {
  if (!scopeName.safeParse(name).success) return Promise.resolve(null);
  return deps.prisma.scope.findUnique({ where: { name }, select: SCOPE_VIEW_SELECT });
}

/** Every scope the token endpoint knows: retired ones too, since credentials holding them keep working. */
export async function listScopeNames(deps: Pick<Deps, 'prisma'>): Promise<string[]> {
  const rows = await deps.prisma.scope.findMany({ select: { name: true }, orderBy: { name: 'asc' } });
  return rows.map((row) => row.name);
}

/** Scope names among `scopes` that are retired. */
export async function retiredAmong(db: Pick<Tx, 'scope'>, scopes: string[]): Promise<string[]> {
  if (scopes.length === 0) return [];
  const rows = await db.scope.findMany({ where: { name: { in: scopes }, retiredAt: { not: null } }, select: { name: true }, orderBy: { name: 'asc' } });
  return rows.map((row) => row.name);
}

/** What a credential keeps when it is rotated: its scopes without the retired ones. */
export async function grantableOf(tx: Tx, scopes: string[]): Promise<{ kept: string[]; dropped: string[] }> {
  const dropped = await retiredAmong(tx, scopes);
  return { kept: scopes.filter((s) => !dropped.includes(s)), dropped };
}

/**
 * Every requested scope must be in the catalog and not retired. Run inside the transaction
 * that grants them: the rows are share-locked, so a concurrent retirement waits for the grant
 * to commit (and then the credential holds the scope like any older one) or wins and the
 * grant is refused — never a grant of a scope retired before it.
 */
export async function assertGrantableScopes(tx: Tx, scopes: string[]): Promise<void> {
  if (scopes.length === 0) return;
  const rows = await tx.$queryRaw<{ name: string; retired: boolean }[]>`
    SELECT name, retired_at IS NOT NULL AS retired FROM scope WHERE name = ANY(${scopes}::text[]) ORDER BY name FOR SHARE`;
  const unknown = scopes.filter((s) => !rows.some((row) => row.name === s));
  if (unknown.length > 0) throw new LatchkeyError('invalid_scope', `unknown scope: ${unknown.join(' ')}`);
  const retired = rows.filter((row) => row.retired).map((row) => row.name);
  if (retired.length > 0) throw new LatchkeyError('invalid_scope', `scope ${retired.join(' ')} is retired and can no longer be granted`);
}
