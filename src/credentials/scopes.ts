import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import { changeCredentials } from '../lib/invalidation.ts';
import { Conflict, LatchkeyError } from '../lib/errors.ts';

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); we keep to a readable subset.
export const scopeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9:._/-]{0,127}$/, 'scope names are 1-128 of A-Z a-z 0-9 : . _ / -');

export const createScopeInput = z.object({
  name: scopeName,
  description: z.string().trim().min(1).max(500),
  requiresApproval: z.boolean().default(false),
});

export async function createScope(deps: Deps, input: z.input<typeof createScopeInput>, actor: Actor) {
  const scope = createScopeInput.parse(input);
  return changeCredentials(deps, async (tx, invalidate) => {
    if (await tx.scope.findUnique({ where: { name: scope.name } })) throw new Conflict(`scope ${scope.name} already exists`);
    const now = deps.now();
    const created = await tx.scope.create({ data: { ...scope, createdAt: now } });
    await appendAuditEvents(tx, [actorEvent(actor, 'scope.created', 'scope', scope.name, { requiresApproval: scope.requiresApproval })], now);
    await invalidate('scopes');
    return created;
  });
}

export async function listScopeNames(deps: Deps): Promise<string[]> {
  const rows = await deps.prisma.scope.findMany({ select: { name: true }, orderBy: { name: 'asc' } });
  return rows.map((row) => row.name);
}

/** Every requested scope must be in the catalog. */
export async function assertKnownScopes(deps: Pick<Deps, 'prisma'>, scopes: string[]): Promise<void> {
  const known = await deps.prisma.scope.findMany({ where: { name: { in: scopes } }, select: { name: true } });
  const missing = scopes.filter((s) => !known.some((k) => k.name === s));
  if (missing.length > 0) throw new LatchkeyError('invalid_scope', `unknown scope: ${missing.join(' ')}`);
}
