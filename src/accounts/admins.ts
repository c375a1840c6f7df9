import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import { Conflict } from '../lib/errors.ts';
import { randomBase62 } from '../lib/random.ts';
import { createAccount, STAFF_ROLES } from './accounts.ts';
import { hashPassword } from './passwords.ts';

export const createAdminInput = z.object({
  email: z.email().transform((e) => e.toLowerCase()),
  password: z.string().min(12, 'passwords need at least 12 characters').max(1024).optional(),
  role: z.enum(STAFF_ROLES, { message: 'role must be admin or auditor' }).default('admin'),
});

/**
 * Creates an admin or an auditor (issue 8 §1.1), or gives an existing account that role; without
 * a password one is generated and returned (shown once, never logged).
 */
export async function createAdmin(deps: Pick<Deps, 'prisma' | 'now'>, input: z.input<typeof createAdminInput>, actor: Actor) {
  const { email, password: given, role } = createAdminInput.parse(input);
  const password = given ?? randomBase62(24);
  const passwordHash = await hashPassword(password);
  const now = deps.now();
  const account = await deps.prisma.$transaction(async (tx) => {
    const existing = await tx.account.findUnique({ where: { email } });
    if (existing?.role === role) throw new Conflict(`an ${role} with email ${email} already exists`);
    const saved = existing
      ? await tx.account.update({ where: { email }, data: { role, passwordHash, passwordChangedAt: now } })
      : (await createAccount(tx, { email, passwordHash, role, emailVerifiedAt: now, now })).account;
    await appendAuditEvents(tx, [actorEvent(actor, 'account.admin_created', 'account', saved.id, { email, role })], now);
    return saved;
  });
  return { id: account.id, email, role, ...(given ? {} : { password }) };
}

/** First start: make sure someone can sign in to the admin screens. */
export async function ensureFirstAdmin(deps: Pick<Deps, 'prisma' | 'config' | 'now'>) {
  if (await deps.prisma.account.count({ where: { role: 'admin' } })) return null;
  return createAdmin(deps, { email: deps.config.LATCHKEY_ADMIN_EMAIL }, { type: 'system' }).catch((error) => {
    // Another node created it first.
    if (error instanceof Conflict) return null;
    throw error;
  });
}
