import { ActivityPage, type ActivityEventView } from '../../../views/portal/activity.tsx';
import type { Deps } from '../../context.ts';
import { teamUsageSeries } from '../../credentials/usage.ts';
import type { PageRoutes } from '../pages.ts';
import { teamOf } from '../page-state.ts';
import { chrome, renderPage } from '../render.ts';
import { signedIn } from '../signed-in.ts';

const LIMIT = 50;

const SUBJECTS: Record<string, string> = {
  api_key: 'API key',
  client: 'Application',
  access_token: 'Access token',
  team: 'Team',
  account: 'Account',
  session: 'Session',
  credential_request: 'Request',
};

/** "api_key.check_failed" → "API key check failed": the type in plain words. */
export function eventInWords(type: string): string {
  const [subject = '', ...rest] = type.split('.');
  const action = rest.join(' ').replaceAll('_', ' ');
  const noun = SUBJECTS[subject] ?? subject.replaceAll('_', ' ');
  return `${noun.charAt(0).toUpperCase()}${noun.slice(1)} ${action}`.trim();
}

interface EventRow {
  seq: bigint;
  at: Date;
  type: string;
  actor_type: string;
  actor_id: string | null;
  subject_type: string | null;
  subject_id: string | null;
}

/**
 * A team's recent events: each branch is one index lookup (audit_event's subject index) on
 * the team, its credentials, its requests, or sign-ins of its members, top 50 of each, merged.
 */
async function teamEvents(deps: Deps, teamId: string): Promise<EventRow[]> {
  const [keys, clients, requests, members] = await Promise.all([
    deps.prisma.apiKey.findMany({ where: { teamId }, select: { id: true } }),
    deps.prisma.oAuthClient.findMany({ where: { teamId }, select: { id: true } }),
    deps.prisma.credentialRequest.findMany({ where: { teamId }, select: { id: true } }),
    deps.prisma.membership.findMany({ where: { teamId }, select: { accountId: true } }),
  ]);
  const ids = (rows: { id: string }[]) => rows.map((r) => r.id);
  return deps.prisma.$queryRaw<EventRow[]>`
    SELECT * FROM (
      (SELECT seq, at, type, actor_type, actor_id, subject_type, subject_id FROM audit_event
        WHERE subject_type = 'team' AND subject_id = ${teamId} ORDER BY seq DESC LIMIT ${LIMIT})
      UNION ALL
      (SELECT seq, at, type, actor_type, actor_id, subject_type, subject_id FROM audit_event
        WHERE subject_type = 'api_key' AND subject_id = ANY(${ids(keys)}::text[]) ORDER BY seq DESC LIMIT ${LIMIT})
      UNION ALL
      (SELECT seq, at, type, actor_type, actor_id, subject_type, subject_id FROM audit_event
        WHERE subject_type = 'client' AND subject_id = ANY(${ids(clients)}::text[]) ORDER BY seq DESC LIMIT ${LIMIT})
      UNION ALL
      (SELECT seq, at, type, actor_type, actor_id, subject_type, subject_id FROM audit_event
        WHERE subject_type = 'credential_request' AND subject_id = ANY(${ids(requests)}::text[]) ORDER BY seq DESC LIMIT ${LIMIT})
      UNION ALL
      (SELECT seq, at, type, actor_type, actor_id, subject_type, subject_id FROM audit_event
        WHERE subject_type = 'account' AND subject_id = ANY(${members.map((m) => m.accountId)}::text[]) AND type LIKE '%sign%in%'
        ORDER BY seq DESC LIMIT ${LIMIT})
    ) AS recent ORDER BY seq DESC LIMIT ${LIMIT}`;
}

export const activityRoutes: PageRoutes = (router, deps) => {
  router.get('/activity', signedIn, async (ctx) => {
    const team = teamOf(ctx);
    const [usage, rows] = await Promise.all([teamUsageSeries(deps, team.id), teamEvents(deps, team.id)]);
    const accountIds = [...new Set(rows.filter((r) => r.actor_type === 'account' && r.actor_id).map((r) => r.actor_id!))].filter((id) => /^[0-9a-f-]{36}$/i.test(id));
    const accounts = accountIds.length ? await deps.prisma.account.findMany({ where: { id: { in: accountIds } }, select: { id: true, email: true } }) : [];
    const emails = new Map(accounts.map((a) => [a.id, a.email]));
    const who = (row: EventRow) =>
      row.actor_type === 'account'
        ? (emails.get(row.actor_id ?? '') ?? 'a former account')
        : row.actor_type === 'client'
          ? `Application ${row.actor_id ?? ''}`.trim()
          : row.actor_type === 'cli'
            ? 'An operator (CLI)'
            : row.actor_type === 'system'
              ? 'Latchkey'
              : 'Someone not signed in';
    const events: ActivityEventView[] = rows.map((row) => ({
      seq: String(row.seq),
      at: row.at,
      what: eventInWords(row.type),
      who: who(row),
      subject:
        row.subject_type === 'team'
          ? `Team ${team.name}`
          : row.subject_type === 'account'
            ? (emails.get(row.subject_id ?? '') ?? 'Account')
            : `${SUBJECTS[row.subject_type ?? ''] ?? row.subject_type ?? ''} ${row.subject_id ?? ''}`.trim(),
    }));
    renderPage(ctx, <ActivityPage chrome={chrome(ctx, 'activity')} now={deps.now()} teamName={team.name} usage={usage} events={events} />);
  });
};
