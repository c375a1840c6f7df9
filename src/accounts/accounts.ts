import type { Tx } from '../db/database.ts';

export type Role = 'developer' | 'admin' | 'auditor';

/** Roles that open the admin screens: admins act, auditors read (policies/admin.ts). */
export const STAFF_ROLES = ['admin', 'auditor'] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];
export const isStaffRole = (role: string): role is StaffRole => (STAFF_ROLES as readonly string[]).includes(role);

/**
 * Every account is created here, with its personal team (owner): credentials belong to
 * teams, so a developer can create keys from the first minute and colleagues can be added later.
 */
export async function createAccount(
  tx: Tx,
  input: { email: string; passwordHash: string | null; role?: Role; emailVerifiedAt?: Date | null; now: Date },
) {
  const account = await tx.account.create({
    data: {
      email: input.email,
      passwordHash: input.passwordHash,
      role: input.role ?? 'developer',
      emailVerifiedAt: input.emailVerifiedAt ?? null,
      passwordChangedAt: input.passwordHash ? input.now : null,
      createdAt: input.now,
    },
  });
  const team = await tx.team.create({ data: { name: input.email, personalAccountId: account.id, createdAt: input.now } });
  await tx.membership.create({ data: { teamId: team.id, accountId: account.id, role: 'owner', createdAt: input.now } });
  return { account, team };
}

/** Emails are compared and stored lowercased (the local part is case-sensitive in theory, never in practice). */
export const normaliseEmail = (email: string) => email.trim().toLowerCase();
