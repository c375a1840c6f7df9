import { ActivityPage, type ActivityAlertView, type ActivityEventView } from '../../../views/portal/activity.tsx';
import type { Deps } from '../../context.ts';
import { teamUsageSeries } from '../../credentials/usage.ts';
import { utcText } from '../../lib/utc-text.ts';
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

const ALERTS_SHOWN = 10;

interface AlertRow {
  seq: bigint;
  at: Date;
  type: string;
  subject_type: string;
  subject_id: string;
  data: Record<string, unknown> | null;
}

/** The team's recent anomaly alerts (limits/alerts.ts): `alert.*` events on its keys and applications. */
async function teamAlerts(deps: Deps, teamId: string): Promise<ActivityAlertView[]> {
  const rows = await deps.prisma.$queryRaw<AlertRow[]>`
    SELECT * FROM (
      (SELECT seq, at, type, subject_type, subject_id, data FROM audit_event
        WHERE subject_type = 'api_key' AND subject_id IN (SELECT id FROM api_key WHERE team_id = ${teamId}::uuid) AND type LIKE 'alert.%'
        ORDER BY seq DESC LIMIT ${ALERTS_SHOWN})
      UNION ALL
      (SELECT seq, at, type, subject_type, subject_id, data FROM audit_event
        WHERE subject_type = 'client' AND subject_id IN (SELECT id FROM oauth_client WHERE team_id = ${teamId}::uuid) AND type LIKE 'alert.%'
        ORDER BY seq DESC LIMIT ${ALERTS_SHOWN})
    ) AS alerts ORDER BY seq DESC LIMIT ${ALERTS_SHOWN}`;
  return rows.map((row) => ({
    seq: String(row.seq),
    at: row.at,
    what: ALERT_NAMES[row.type] ?? row.type,
    credential: row.subject_type === 'api_key' ? `API key lk_${row.subject_id}` : `Application ${row.subject_id}`,
    detail: alertDetail(row.type, row.data ?? {}),
  }));
}

const ALERT_NAMES: Record<string, string> = {
  'alert.spike': 'Traffic spike',
  'alert.burst': 'Burst of failed checks',
  'alert.new_network': 'New network',
  'alert.rotated_secret': 'Rotated-out secret used',
};

function alertDetail(type: string, data: Record<string, unknown>): string {
  const suspended = data.suspended === true ? ' The key was suspended (team policy).' : '';
  switch (type) {
    case 'alert.spike':
      return `${data.uses} checks in the hour from ${utcText(String(data.hour))}; hourly mean before: ${data.hourlyMean}.${suspended}`;
    case 'alert.burst':
      return `${data.failed} failed checks within ${Math.round(Number(data.windowMs) / 60_000)} minutes.${suspended}`;
    case 'alert.new_network':
      return `Used from ${data.network}, not seen in 30 days.${suspended}`;
    case 'alert.rotated_secret':
      return `Still used; it stops working at ${utcText(String(data.graceEndsAt))}.${suspended}`;
    default:
      return suspended.trim();
  }
}

export const activityRoutes: PageRoutes = (router, deps) => {
  router.get('/activity', signedIn, async (ctx) => {
    const team = teamOf(ctx);
    const [usage, rows, alerts] = await Promise.all([teamUsageSeries(deps, team.id), teamEvents(deps, team.id), teamAlerts(deps, team.id)]);
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
    renderPage(ctx, <ActivityPage chrome={chrome(ctx, 'activity')} now={deps.now()} teamName={team.name} usage={usage} alerts={alerts} events={events} />);
  });
};
