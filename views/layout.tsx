import type { ComponentChildren } from 'preact';
import { Flash, type FlashMessage } from './components.tsx';

export type PortalSection = 'overview' | 'keys' | 'applications' | 'requests' | 'team' | 'activity' | 'security' | 'sessions';
/** Admin screens name their sections `admin-…` (views/admin/layout.tsx ADMIN_NAV). */
export type Section = PortalSection | `admin-${string}`;

/** One link of a left navigation. */
export interface NavItem {
  section: Section;
  href: string;
  label: string;
}

/** What every signed-in page knows about the person and where they are. */
export interface Viewer {
  email: string;
  isAdmin: boolean;
  /** admin or auditor: the admin screens are open to them (policies/admin.ts); null for developers. */
  staffRole?: 'admin' | 'auditor' | null;
  team: { id: string; name: string; role: string };
  teams: { id: string; name: string }[];
}

/** The frame of a page: what the layout needs beside the page's own content. */
export interface Chrome {
  csrf: string;
  flash?: FlashMessage | null;
  viewer?: Viewer | null;
  section?: Section;
}

const NAV: NavItem[] = [
  { section: 'overview', href: '/portal', label: 'Overview' },
  { section: 'keys', href: '/portal/keys', label: 'API keys' },
  { section: 'applications', href: '/portal/applications', label: 'Applications' },
  { section: 'requests', href: '/portal/requests', label: 'Requests' },
  { section: 'team', href: '/portal/team', label: 'Team' },
  { section: 'activity', href: '/portal/activity', label: 'Activity' },
  { section: 'security', href: '/portal/security', label: 'Security' },
  { section: 'sessions', href: '/portal/sessions', label: 'Sessions' },
];

function Document(props: { title: string; children: ComponentChildren; bodyClass?: string }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>{`${props.title} · Latchkey`}</title>
        <link rel="stylesheet" href="/assets/style.css" />
        <script src="/assets/app.js" defer />
      </head>
      <body class={props.bodyClass}>{props.children}</body>
    </html>
  );
}

/**
 * Signed-in pages: header with product, team and person; left navigation; content column.
 * The portal's navigation by default; the admin screens pass their own (views/admin/layout.tsx).
 */
export function Layout(props: { chrome: Chrome; title: string; children: ComponentChildren; nav?: { label: string; items: NavItem[]; footer?: NavItem[] } }) {
  const { chrome } = props;
  const viewer = chrome.viewer;
  // Admins and auditors reach the admin screens from the portal; nobody else sees the link.
  const nav = props.nav ?? { label: 'Portal', items: NAV, footer: viewer?.staffRole ? [{ section: 'admin-dashboard', href: '/admin', label: 'Admin' }] : undefined };
  return (
    <Document title={props.title}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="/portal">
          <span class="brand-mark" aria-hidden="true">
            ◆
          </span>{' '}
          Latchkey
        </a>
        {viewer ? (
          <div class="topbar-right">
            {viewer.teams.length > 1 ? (
              <form method="post" action="/portal/team/switch" class="team-switch">
                <input type="hidden" name="_csrf" value={chrome.csrf} />
                <label for="team-switch">Team</label>
                <select id="team-switch" name="team">
                  {viewer.teams.map((team) => (
                    <option value={team.id} selected={team.id === viewer.team.id}>
                      {team.name}
                    </option>
                  ))}
                </select>
                <button type="submit" class="button button-secondary button-small">
                  Switch
                </button>
              </form>
            ) : (
              <span class="team-name">
                <span class="muted">Team</span> {viewer.team.name}
              </span>
            )}
            <span class="person">
              {viewer.email}
              {viewer.staffRole ? <span class="badge badge-blue role-badge">{viewer.staffRole}</span> : null}
            </span>
            <form method="post" action="/portal/sign-out">
              <input type="hidden" name="_csrf" value={chrome.csrf} />
              <button type="submit" class="button button-secondary button-small">
                Sign out
              </button>
            </form>
          </div>
        ) : null}
      </header>
      <div class="shell">
        {viewer ? (
          <nav class="sidenav" aria-label={nav.label}>
            <ul>
              {nav.items.map((item) => (
                <li>
                  <a href={item.href} aria-current={chrome.section === item.section ? 'page' : undefined}>
                    {item.label}
                  </a>
                </li>
              ))}
            </ul>
            {nav.footer ? (
              <ul class="sidenav-footer">
                {nav.footer.map((item) => (
                  <li>
                    <a href={item.href}>{item.label}</a>
                  </li>
                ))}
              </ul>
            ) : null}
          </nav>
        ) : null}
        <main id="main" class="content">
          <Flash flash={chrome.flash} />
          {props.children}
        </main>
      </div>
    </Document>
  );
}

/** Signed-out pages (sign-in, sign-up, links from mail): one centred card. */
export function CardLayout(props: { chrome: Chrome; title: string; children: ComponentChildren }) {
  return (
    <Document title={props.title} bodyClass="card-page">
      <main id="main" class="card-main">
        <p class="brand brand-card">
          <span class="brand-mark" aria-hidden="true">
            ◆
          </span>{' '}
          Latchkey
        </p>
        <div class="card">
          <Flash flash={props.chrome.flash} />
          {props.children}
        </div>
      </main>
    </Document>
  );
}

/** 404, 403, 500, 503: the same look, nothing internal. */
export function ErrorPage(props: { chrome: Chrome; status: number; title: string; message: string }) {
  const Frame = props.chrome.viewer ? Layout : CardLayout;
  return (
    <Frame chrome={props.chrome} title={props.title}>
      <h1>{props.title}</h1>
      <p>{props.message}</p>
      <p>
        <a href="/portal">Back to the portal</a>
      </p>
      <p class="muted small">Error {props.status}</p>
    </Frame>
  );
}
