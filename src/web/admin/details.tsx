import {
  ApplicationAdminPage,
  DeveloperAdminPage,
  KeyAdminPage,
  TeamAdminPage,
  type ActionErrors,
} from '../../../views/admin/details.tsx';
import { adminNav } from '../../../views/admin/layout.tsx';
import { ConfirmPage } from '../../../views/components.tsx';
import { endAccountSessions } from '../../accounts/sessions.ts';
import { suspendAccount, suspendTeam, unsuspendAccount, unsuspendTeam } from '../../accounts/suspension.ts';
import { lastReasonAbout, recentEventsAbout } from '../../admin/events.ts';
import { revokeApiKey, apiKeyStatus, suspendApiKey, unsuspendApiKey } from '../../credentials/api-keys.ts';
import { KEY_ID } from '../../credentials/api-key-format.ts';
import { CLIENT_ID, revokeClient, revokeClientTokens } from '../../credentials/clients.ts';
import { API_KEY_VIEW_SELECT, APPLICATION_VIEW_SELECT, presentApiKey, presentApplication } from '../../credentials/presenters.ts';
import { teamUsageSeries, usageSeries } from '../../credentials/usage.ts';
import type { Deps } from '../../context.ts';
import { Conflict, NotFound } from '../../lib/errors.ts';
import { credentialLimits } from '../../limits/plans.ts';
import { adminPolicy } from '../../policies/admin.ts';
import { textOf } from '../form.ts';
import { actorOf, principalOf, type PageContext } from '../page-state.ts';
import type { PageRouter, PageRoutes } from '../pages.ts';
import { chrome, flashOnConflict, redirectWith, renderPage } from '../render.ts';
import { adminActor, adminReader } from './guard.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REASON_MAX = 500;
const NO_LIMITS = { plan: null, ownRate: null, ownQuota: null, rate: null, quota: null };

/** The admin detail page of one object, with the action forms' state after a refusal. */
type Show = (ctx: PageContext, id: string, errors?: ActionErrors, status?: number) => Promise<void>;

interface Action {
  /** Path under the object's page, and the id of its form on that page. */
  name: string;
  title: (label: string) => string;
  /** What will happen, named on the confirmation step (STYLE "Pages"). */
  sentence: (label: string) => string;
  button: string;
  danger: boolean;
  /** Refuses up front when there is nothing to do (the service also refuses, for races). */
  already?: (id: string) => Promise<string | null>;
  /** Calls the service; returns the message for the page. "Already so" is its Conflict: a message, no event. */
  run: (id: string, reason: string, ctx: PageContext) => Promise<string>;
}

/**
 * Registers an object's detail page and its actions. Every action: admins only with a recent
 * step-up (adminActor), a reason (required, audited with the admin's id and request id), a
 * confirmation step, then the service; "already so" is a message and no second event.
 */
function objectRoutes(
  router: PageRouter,
  deps: Deps,
  spec: { path: string; valid: RegExp; what: string; section: `admin-${string}`; label: (ctx: PageContext, id: string) => Promise<string>; show: Show; actions: Action[] },
) {
  const load = (id: string) => {
    if (!spec.valid.test(id)) throw new NotFound(spec.what);
    return id;
  };
  router.get(`${spec.path}/:id`, adminReader, (ctx) => spec.show(ctx, load(ctx.params.id!)));
  for (const action of spec.actions) {
    router.post(`${spec.path}/:id/${action.name}`, adminActor(deps), async (ctx) => {
      const id = load(ctx.params.id!);
      const label = await spec.label(ctx, id);
      const back = `/admin${spec.path}/${encodeURIComponent(id)}`;
      const reason = textOf(ctx.state.form.reason).trim();
      if (!reason || reason.length > REASON_MAX) {
        const error = reason ? `Keep the reason under ${REASON_MAX} characters.` : 'Give a reason: it is kept in the audit log.';
        return spec.show(ctx, id, { [action.name]: { reason: reason.slice(0, REASON_MAX), error } }, 400);
      }
      const already = await action.already?.(id);
      if (already) return redirectWith(ctx, back, { kind: 'error', text: `Nothing changed: ${already}.` });
      if (textOf(ctx.state.form.confirm) !== 'yes') {
        return renderPage(
          ctx,
          <ConfirmPage
            chrome={chrome(ctx, spec.section)}
            nav={adminNav()}
            title={action.title(label)}
            sentence={<>{action.sentence(label)} Reason: “{reason}”.</>}
            action={`${back}/${action.name}`}
            hidden={{ reason }}
            button={action.button}
            danger={action.danger}
            cancel={back}
          />,
        );
      }
      await flashOnConflict(ctx, back, async () => {
        const text = await action.run(id, reason, ctx);
        redirectWith(ctx, back, { kind: 'success', text });
      });
    });
  }
}

/** Admins and auditors may see every object (adminReader checked the role): unknown is the only 404. */
function found<T>(row: T | null, what: string): T {
  if (row === null) throw new NotFound(what);
  return row;
}

const canAct = (ctx: PageContext) => adminPolicy.act(principalOf(ctx));

async function teamOfObject(deps: Deps, teamId: string | null) {
  return teamId ? deps.prisma.team.findUnique({ where: { id: teamId }, select: { id: true, name: true, status: true } }) : null;
}

/** Detail pages for a key, an application, a developer and a team (issue 8 §1.2), with their actions. */
export const detailRoutes: PageRoutes = (router, deps) => {
  // ── API keys ───────────────────────────────────────────────────────────────────────
  const findKey = async (id: string) => found(await deps.prisma.apiKey.findUnique({ where: { id }, select: API_KEY_VIEW_SELECT }), 'api key');
  const showKey: Show = async (ctx, id, errors, status = 200) => {
    const row = await findKey(id);
    const now = deps.now();
    const [team, usage, events, limits, suspendedReason] = await Promise.all([
      teamOfObject(deps, row.teamId),
      usageSeries(deps, 'api_key', id),
      recentEventsAbout(deps, 'api_key', id),
      credentialLimits(deps, 'api_key', id).then((found) => found ?? NO_LIMITS),
      // The key keeps only when it was suspended; why (an admin's reason, or an alert's) is in the audit log.
      row.suspendedAt ? lastReasonAbout(deps, 'api_key', id, 'api_key.suspended') : null,
    ]);
    renderPage(
      ctx,
      <KeyAdminPage chrome={chrome(ctx, 'admin-search')} now={now} view={{ key: presentApiKey(row, now), team, limits, usage, events, suspendedReason }} canAct={canAct(ctx)} errors={errors} />,
      status,
    );
  };
  objectRoutes(router, deps, {
    path: '/keys',
    valid: KEY_ID,
    what: 'api key',
    section: 'admin-search',
    label: async (_ctx, id) => `lk_${(await findKey(id)).id}`,
    show: showKey,
    actions: [
      {
        name: 'suspend',
        title: (label) => `Suspend key ${label}`,
        sentence: (label) => `Suspend key ${label} — services using it will be refused within a second, on every node, until it is unsuspended.`,
        button: 'Suspend',
        danger: true,
        // The service repeats a suspension silently: say so here rather than report a change.
        already: async (id) => {
          const key = presentApiKey(await findKey(id), deps.now());
          return key.status === 'suspended' ? 'this key is already suspended' : key.live ? null : `this key is ${key.status}`;
        },
        run: async (id, reason, ctx) => {
          // Another admin may have suspended it since the check above: only one of us changed it.
          if (!(await suspendApiKey(deps, id, reason, actorOf(ctx))).changed) throw new Conflict('this key is already suspended');
          return `Key lk_${id} suspended: services using it are refused until it is unsuspended.`;
        },
      },
      {
        name: 'unsuspend',
        title: (label) => `Unsuspend key ${label}`,
        sentence: (label) => `Key ${label} works again within a second, on every node, unless its team is suspended.`,
        button: 'Unsuspend',
        danger: false,
        already: async (id) => {
          const row = await findKey(id);
          const key = presentApiKey(row, deps.now());
          return !row.suspendedAt ? 'this key is not suspended' : key.live ? null : `this key is ${key.status}`;
        },
        run: async (id, reason, ctx) => {
          if (!(await unsuspendApiKey(deps, id, reason, actorOf(ctx))).changed) throw new Conflict('this key is not suspended');
          return `Key lk_${id} is no longer suspended.`;
        },
      },
      {
        name: 'revoke',
        title: (label) => `Revoke key ${label}`,
        sentence: (label) => `Revoke key ${label} — services using it will be refused within a second, on every node. This cannot be undone.`,
        button: 'Revoke',
        danger: true,
        already: async (id) => ((await findKey(id)).revokedAt ? 'this key is already revoked' : null),
        run: async (id, reason, ctx) => {
          if (!(await revokeApiKey(deps, id, { reason }, actorOf(ctx))).changed) throw new Conflict('this key is already revoked');
          return `Key lk_${id} revoked: services using it are refused from now on.`;
        },
      },
    ],
  });

  // ── Applications ───────────────────────────────────────────────────────────────────
  const findApplication = async (id: string) =>
    found(await deps.prisma.oAuthClient.findUnique({ where: { id }, select: APPLICATION_VIEW_SELECT }), 'application');
  const showApplication: Show = async (ctx, id, errors, status = 200) => {
    const row = await findApplication(id);
    const now = deps.now();
    const [team, usage, events, limits] = await Promise.all([
      teamOfObject(deps, row.teamId),
      usageSeries(deps, 'client', id),
      recentEventsAbout(deps, 'client', id),
      credentialLimits(deps, 'client', id).then((found) => found ?? NO_LIMITS),
    ]);
    renderPage(
      ctx,
      <ApplicationAdminPage
        chrome={chrome(ctx, 'admin-search')}
        now={now}
        view={{ application: presentApplication(row, now), team, limits, usage, events }}
        canAct={canAct(ctx)}
        errors={errors}
      />,
      status,
    );
  };
  objectRoutes(router, deps, {
    path: '/applications',
    valid: CLIENT_ID,
    what: 'application',
    section: 'admin-search',
    label: async (_ctx, id) => (await findApplication(id)).name,
    show: showApplication,
    actions: [
      {
        name: 'revoke',
        title: (label) => `Revoke application ${label}`,
        sentence: (label) => `Revoke application ${label} — its secrets stop working and every token it holds is refused within a second. This cannot be undone.`,
        button: 'Revoke',
        danger: true,
        already: async (id) => ((await findApplication(id)).status === 'revoked' ? 'this application is already revoked' : null),
        run: async (id, reason, ctx) => {
          if (!(await revokeClient(deps, id, actorOf(ctx), { reason })).changed) throw new Conflict('this application is already revoked');
          return 'Application revoked: its secrets and tokens are refused from now on.';
        },
      },
      {
        name: 'revoke-tokens',
        title: (label) => `Revoke the tokens of ${label}`,
        sentence: (label) => `Every access token ${label} holds introspects inactive within a second, on every node. The application keeps working and can ask for new tokens.`,
        button: 'Revoke tokens',
        danger: true,
        run: async (id, reason, ctx) => {
          await revokeClientTokens(deps, actorOf(ctx), id, reason);
          return 'Every token issued to this application until now is refused from now on.';
        },
      },
    ],
  });

  // ── Developers ─────────────────────────────────────────────────────────────────────
  const findAccount = async (id: string) => found(
      await deps.prisma.account.findUnique({ where: { id }, select: { id: true, email: true, role: true, status: true, createdAt: true, emailVerifiedAt: true, mfaEnabledAt: true } }),
      'account',
    );
  const showDeveloper: Show = async (ctx, id, errors, status = 200) => {
    const account = await findAccount(id);
    const now = deps.now();
    const [memberships, liveSessions, events] = await Promise.all([
      deps.prisma.membership.findMany({ where: { accountId: id }, include: { team: { select: { id: true, name: true, status: true, personalAccountId: true } } }, orderBy: { createdAt: 'asc' } }),
      deps.prisma.session.count({ where: { accountId: id, endedAt: null, expiresAt: { gt: now } } }),
      recentEventsAbout(deps, 'account', id),
    ]);
    const teams = memberships.map((m) => ({ id: m.teamId, name: m.team.name, role: m.role, status: m.team.status, personal: m.team.personalAccountId === id }));
    renderPage(
      ctx,
      <DeveloperAdminPage
        chrome={chrome(ctx, 'admin-search')}
        now={now}
        view={{ account, teams, liveSessions, events }}
        canAct={canAct(ctx)}
        errors={errors}
      />,
      status,
    );
  };
  objectRoutes(router, deps, {
    path: '/developers',
    valid: UUID,
    what: 'account',
    section: 'admin-search',
    label: async (_ctx, id) => (await findAccount(id)).email,
    show: showDeveloper,
    actions: [
      {
        name: 'suspend',
        title: (label) => `Suspend ${label}`,
        sentence: (label) => `${label} is signed out and cannot sign in, and the credentials of their personal team stop working within a second. Unsuspending restores exactly what was active.`,
        button: 'Suspend',
        danger: true,
        run: async (id, reason, ctx) => {
          const done = await suspendAccount(deps, actorOf(ctx), id, reason);
          return `${done.email} is suspended${done.sessions_ended ? ` and was signed out of ${done.sessions_ended} session${done.sessions_ended === 1 ? '' : 's'}` : ''}.`;
        },
      },
      {
        name: 'unsuspend',
        title: (label) => `Unsuspend ${label}`,
        sentence: (label) => `${label} can sign in again, and the credentials that were active before the suspension work again.`,
        button: 'Unsuspend',
        danger: false,
        run: async (id, reason, ctx) => {
          const done = await unsuspendAccount(deps, actorOf(ctx), id, reason);
          return `${done.email} is active again.`;
        },
      },
      {
        name: 'end-sessions',
        title: (label) => `End the sessions of ${label}`,
        sentence: (label) => `Sign ${label} out of every browser now. They can sign in again.`,
        button: 'End sessions',
        danger: true,
        run: async (id, reason, ctx) => {
          // Their own account: the session they are using stays.
          const ended = await endAccountSessions(deps, id, reason, actorOf(ctx), ctx.state.session!.id);
          return ended === 1 ? 'Their session was ended.' : `${ended} sessions were ended.`;
        },
      },
    ],
  });

  // ── Teams ──────────────────────────────────────────────────────────────────────────
  const findTeam = async (id: string) => found(await deps.prisma.team.findUnique({ where: { id } }), 'team');
  const showTeam: Show = async (ctx, id, errors, status = 200) => {
    const team = await findTeam(id);
    const now = deps.now();
    const [members, keys, applications, pendingRequests, usage, events] = await Promise.all([
      deps.prisma.membership.findMany({ where: { teamId: id }, include: { account: { select: { id: true, email: true, status: true } } }, orderBy: { createdAt: 'asc' }, take: 200 }),
      deps.prisma.apiKey.findMany({ where: { teamId: id }, select: { id: true, name: true, revokedAt: true, expiresAt: true, replacedById: true }, orderBy: { createdAt: 'desc' }, take: 100 }),
      deps.prisma.oAuthClient.findMany({ where: { teamId: id }, select: { id: true, name: true, status: true }, orderBy: { createdAt: 'desc' }, take: 100 }),
      deps.prisma.credentialRequest.count({ where: { teamId: id, status: 'pending' } }),
      teamUsageSeries(deps, id),
      recentEventsAbout(deps, 'team', id),
    ]);
    renderPage(
      ctx,
      <TeamAdminPage
        chrome={chrome(ctx, 'admin-search')}
        now={now}
        view={{
          team: { id: team.id, name: team.name, status: team.status, createdAt: team.createdAt, personal: team.personalAccountId !== null },
          members: members.map((m) => ({ id: m.account.id, email: m.account.email, role: m.role, status: m.account.status })),
          keys: keys.map((k) => ({ id: k.id, name: k.name, status: apiKeyStatus(k, now) === 'expiring' ? 'rotating out' : apiKeyStatus(k, now) })),
          applications,
          pendingRequests,
          usage,
          events,
        }}
        canAct={canAct(ctx)}
        errors={errors}
      />,
      status,
    );
  };
  objectRoutes(router, deps, {
    path: '/teams',
    valid: UUID,
    what: 'team',
    section: 'admin-search',
    label: async (_ctx, id) => (await findTeam(id)).name,
    show: showTeam,
    actions: [
      {
        name: 'suspend',
        title: (label) => `Suspend team ${label}`,
        sentence: (label) => `Every key and application of ${label} stops working within a second, on every node. Unsuspending restores exactly what was active.`,
        button: 'Suspend',
        danger: true,
        run: async (id, reason, ctx) => {
          await suspendTeam(deps, actorOf(ctx), id, reason);
          return 'Team suspended: its keys and applications are refused from now on.';
        },
      },
      {
        name: 'unsuspend',
        title: (label) => `Unsuspend team ${label}`,
        sentence: (label) => `The keys and applications of ${label} that were active before the suspension work again, on every node within a second.`,
        button: 'Unsuspend',
        danger: false,
        run: async (id, reason, ctx) => {
          await unsuspendTeam(deps, actorOf(ctx), id, reason);
          return 'Team unsuspended: its credentials that were active before work again.';
        },
      },
    ],
  });
};

