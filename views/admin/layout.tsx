import type { ComponentChildren } from 'preact';
import { Button, Field, Form, PageHeader } from '../components.tsx';
import { Layout, type Chrome, type NavItem } from '../layout.tsx';

/**
 * The admin screens' navigation: only screens that exist. A new admin screen appends its link
 * here (its section `admin-…`, passed to chrome(ctx, section)) and its routes to ADMIN_ROUTES
 * (src/web/admin/index.ts).
 */
export const ADMIN_NAV: NavItem[] = [
  { section: 'admin-dashboard', href: '/admin', label: 'Dashboard' },
  { section: 'admin-search', href: '/admin/search', label: 'Search' },
  { section: 'admin-requests', href: '/admin/requests', label: 'Requests' },
  { section: 'admin-catalog', href: '/admin/catalog', label: 'Catalog' },
  { section: 'admin-plans', href: '/admin/plans', label: 'Plans' },
  { section: 'admin-signing-keys', href: '/admin/signing-keys', label: 'Signing keys' },
  { section: 'admin-audit', href: '/admin/audit', label: 'Audit log' },
];

/** The admin frame for Layout (and ConfirmPage): admin links, then the way back to the portal. */
export const adminNav = () => ({ label: 'Admin', items: ADMIN_NAV, footer: [{ section: 'overview' as const, href: '/portal', label: 'Back to the portal' }] });

/** Same look as the portal (STYLE "One layout for portal and admin"), the admin navigation, and the reader's role. */
export function AdminLayout(props: { chrome: Chrome; title: string; children: ComponentChildren }) {
  const auditor = props.chrome.viewer?.staffRole === 'auditor';
  return (
    <Layout chrome={props.chrome} title={props.title} nav={adminNav()}>
      {auditor ? (
        <p class="flash flash-info" role="note">
          You are signed in as an auditor: you can read every admin page and change nothing.
        </p>
      ) : null}
      {props.children}
    </Layout>
  );
}

/**
 * The step-up prompt (issue 8 §1.1, §2): the action needs a code from the last five minutes.
 * The form posts back to the same action with the fields it was given (never a secret: the
 * guard drops any), so the action goes ahead once the code is right, and nothing is retyped.
 */
export function StepUpPage(props: { chrome: Chrome; action: string; cancel: string; hidden: [string, string][]; error?: string }) {
  return (
    <AdminLayout chrome={props.chrome} title="Confirm it is you">
      <PageHeader title="Confirm it is you" description="This action changes what people can use. Enter an authentication code to go ahead: it keeps you confirmed for five minutes." />
      <div class="panel">
        <Form action={props.action} csrf={props.chrome.csrf}>
          {props.hidden.map(([name, value]) => (
            <input type="hidden" name={name} value={value} />
          ))}
          <Field
            label="Authentication code"
            name="step_up_code"
            autocomplete="one-time-code"
            inputMode="text"
            maxLength={32}
            required
            autofocus
            hint="The 6-digit code from your authenticator app, or one of your recovery codes."
            error={props.error}
          />
          <div class="form-actions">
            <Button>Verify</Button>
            <a href={props.cancel}>Cancel</a>
          </div>
        </Form>
      </div>
    </AdminLayout>
  );
}
