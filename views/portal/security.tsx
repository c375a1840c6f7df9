import { Button, DataTable, ErrorSummary, Field, Form, PageHeader, Panel, Time } from '../components.tsx';
import { CardLayout, Layout, type Chrome } from '../layout.tsx';

const CODE_HINT = 'The 6-digit code from your authenticator app, or one of your recovery codes.';

function CodeField(props: { error?: string; autofocus?: boolean; hint?: string }) {
  return (
    <Field
      label="Authentication code"
      name="code"
      autocomplete="one-time-code"
      inputMode="text"
      maxLength={32}
      required
      autofocus={props.autofocus}
      hint={props.hint ?? CODE_HINT}
      error={props.error}
    />
  );
}

/** The second step of signing in, once MFA is on. */
export function VerifyPage(props: { chrome: Chrome; error?: string; next?: string }) {
  return (
    <CardLayout chrome={props.chrome} title="Two-factor authentication">
      <h1>Two-factor authentication</h1>
      <p>Enter a code to finish signing in.</p>
      <Form action="/portal/sign-in/verify" csrf={props.chrome.csrf}>
        {props.next ? <input type="hidden" name="next" value={props.next} /> : null}
        <CodeField error={props.error} autofocus />
        <div class="form-actions">
          <Button>Verify</Button>
        </div>
      </Form>
      <p class="small">
        <a href="/portal/sign-in">Sign in with another account</a>
      </p>
    </CardLayout>
  );
}

export interface SecurityView {
  now: Date;
  mfaEnabledAt: Date | null;
  recoveryCodesLeft: number;
  isAdmin: boolean;
  errors?: { mfa_regenerate?: string; mfa_disable?: string; current_password?: string; new_password?: string };
}

export function SecurityPage(props: { chrome: Chrome; view: SecurityView }) {
  const { view } = props;
  const errors = view.errors ?? {};
  return (
    <Layout chrome={props.chrome} title="Security">
      <PageHeader title="Security" description="How you sign in to Latchkey." />
      <ErrorSummary errors={errors} />
      <Panel id="mfa" title="Two-factor authentication">
        {view.mfaEnabledAt ? (
          <>
            <p>
              Two-factor authentication is on since <Time at={view.mfaEnabledAt} now={view.now} />.
            </p>
            <p>
              Recovery codes left: <strong>{view.recoveryCodesLeft}</strong>
              {view.recoveryCodesLeft <= 3 ? <span class="warning"> Generate new ones before you run out.</span> : null}
            </p>
            <h3>Regenerate recovery codes</h3>
            <p class="muted">Your current recovery codes stop working and ten new ones are shown once.</p>
            <Form action="/portal/security/mfa/regenerate" csrf={props.chrome.csrf}>
              <CodeField error={errors.mfa_regenerate} hint="The 6-digit code from your authenticator app." />
              <div class="form-actions">
                <Button variant="secondary">Regenerate recovery codes</Button>
              </div>
            </Form>
          </>
        ) : (
          <>
            <p>
              Two-factor authentication is <strong>off</strong>. Turn it on so that a stolen password is not enough to sign in as you.
            </p>
            <Form action="/portal/security/mfa/setup" csrf={props.chrome.csrf}>
              <div class="form-actions">
                <Button>Set up two-factor authentication</Button>
              </div>
            </Form>
          </>
        )}
      </Panel>
      {view.mfaEnabledAt ? (
        <Panel id="mfa-off" title="Turn off two-factor authentication" danger>
          {view.isAdmin ? (
            <p>Admins must keep two-factor authentication on.</p>
          ) : (
            <>
              <p>Your password alone will then be enough to sign in, and your recovery codes stop working.</p>
              <Form action="/portal/security/mfa/disable" csrf={props.chrome.csrf}>
                <CodeField error={errors.mfa_disable} hint="The 6-digit code from your authenticator app, to confirm it is you." />
                <div class="form-actions">
                  <Button variant="danger">Turn off</Button>
                </div>
              </Form>
            </>
          )}
        </Panel>
      ) : null}
      <Panel id="password" title="Change password">
        <p class="muted">You stay signed in here; every other session is signed out.</p>
        <Form action="/portal/security/password" csrf={props.chrome.csrf}>
          <Field label="Current password" name="current_password" type="password" autocomplete="current-password" required error={errors.current_password} />
          <Field
            label="New password"
            name="new_password"
            type="password"
            autocomplete="new-password"
            required
            hint="At least 12 characters. A phrase of several unrelated words works well."
            error={errors.new_password}
          />
          <div class="form-actions">
            <Button>Change password</Button>
          </div>
        </Form>
      </Panel>
    </Layout>
  );
}

/** "ABCD EFGH …": the base32 setup key in groups of four, for reading and typing. */
export const groupedKey = (secret: string) => secret.match(/.{1,4}/g)?.join(' ') ?? secret;

export function MfaSetupPage(props: { chrome: Chrome; qrSvg: string; secret: string; error?: string }) {
  return (
    <Layout chrome={props.chrome} title="Set up two-factor authentication">
      <PageHeader title="Set up two-factor authentication" />
      <section class="panel">
        <h2>1. Scan the QR code</h2>
        <p>Scan it with an authenticator app (for example 1Password, Google Authenticator, Microsoft Authenticator or Aegis).</p>
        {/* Our own qrcode output, checked for plain markup in src/accounts/totp.ts. */}
        <div class="qr" dangerouslySetInnerHTML={{ __html: props.qrSvg }} />
        <p>Cannot scan? Enter this setup key in the app instead:</p>
        <p>
          <code class="setup-key" id="setup-key">
            {groupedKey(props.secret)}
          </code>
        </p>
        <p class="muted small">The spaces are only for reading; the app accepts the key with or without them. Time-based, 6 digits.</p>
        <h2>2. Enter the code the app shows</h2>
        <Form action="/portal/security/mfa/confirm" csrf={props.chrome.csrf}>
          <CodeField error={props.error} autofocus hint="The 6-digit code from your authenticator app." />
          <div class="form-actions">
            <Button>Turn on</Button>
            <a href="/portal/security">Cancel</a>
          </div>
        </Form>
      </section>
    </Layout>
  );
}

export function RecoveryCodesPage(props: { chrome: Chrome; codes: string[]; fresh: boolean }) {
  return (
    <Layout chrome={props.chrome} title="Recovery codes">
      <PageHeader title="Recovery codes" description={props.fresh ? 'Two-factor authentication is on.' : 'Your new recovery codes.'} />
      <section class="panel">
        <p class="warning">
          These codes are shown only once. Store them somewhere safe, such as a password manager or printed on paper: each one signs you in once if
          you lose your authenticator app.
        </p>
        <ul class="codes">
          {props.codes.map((code) => (
            <li>
              <code>{code}</code>
            </li>
          ))}
        </ul>
        <p>
          <a href="/portal/security">I have stored my recovery codes — back to Security</a>
        </p>
      </section>
    </Layout>
  );
}

export interface SessionRow {
  id: string;
  createdAt: Date;
  lastSeenAt: Date;
  ip: string | null;
  browser: string;
  current: boolean;
}

export function SessionsPage(props: { chrome: Chrome; now: Date; sessions: SessionRow[] }) {
  const others = props.sessions.filter((s) => !s.current).length;
  return (
    <Layout chrome={props.chrome} title="Sessions">
      <PageHeader title="Sessions" description="Where you are signed in. End any session you do not recognise, then change your password." />
      <DataTable head={['Signed in', 'Last seen', 'IP address', 'Browser', 'Action']} class="table">
        {props.sessions.map((session) => (
          <tr>
            <td>
              <Time at={session.createdAt} now={props.now} />
            </td>
            <td>
              <Time at={session.lastSeenAt} now={props.now} />
            </td>
            <td>{session.ip ?? <span class="muted">unknown</span>}</td>
            <td title={session.browser}>{session.browser.length > 60 ? `${session.browser.slice(0, 60)}…` : session.browser || <span class="muted">unknown</span>}</td>
            <td>
              {session.current ? (
                <strong>This session</strong>
              ) : (
                <Form action={`/portal/sessions/${session.id}/end`} csrf={props.chrome.csrf}>
                  <Button variant="danger">End</Button>
                </Form>
              )}
            </td>
          </tr>
        ))}
      </DataTable>
      {others > 0 ? (
        <Form action="/portal/sessions/end-others" csrf={props.chrome.csrf} class="form-actions">
          <Button variant="danger">End all other sessions</Button>
        </Form>
      ) : (
        <p class="muted">You are signed in nowhere else.</p>
      )}
    </Layout>
  );
}
