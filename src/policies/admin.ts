import type { Principal } from './principal.ts';

/**
 * The admin screens (issue 8 §1.1): admins read and act; auditors read every admin page and
 * export the audit log but change nothing; anyone else does not know the screens exist (404).
 */
export const adminPolicy = {
  read: (p: Principal) => p.role === 'admin' || p.role === 'auditor',
  act: (p: Principal) => p.role === 'admin',
};
