import type { ComponentChildren } from 'preact';
import { Button, ErrorSummary, Field, Form } from '../components.tsx';
import { CardLayout, type Chrome } from '../layout.tsx';

/** Signed-out pages: sign up, verify, sign in, reset. View models are plain values. */

const PASSWORD_HINT = 'At least 12 characters; a passphrase of a few unrelated words works well.';

function Card(props: { chrome: Chrome; title: string; lead?: ComponentChildren; children?: ComponentChildren }) {
  return (
    <CardLayout chrome={props.chrome} title={props.title}>
      <h1>{props.title}</h1>
      {props.lead ? <p>{props.lead}</p> : null}
      {props.children}
    </CardLayout>
  );
}

function hidden(name: string, value: string | undefined) {
  return value ? <input type="hidden" name={name} value={value} /> : null;
}

export interface SignUpView {
  email?: string;
  errors?: { email?: string; password?: string; invite?: string };
  /** A restriction to say up front ("only example.com addresses"). */
  notice?: string;
  invite?: string;
  next?: string;
}

export function SignUpPage(props: { chrome: Chrome; view: SignUpView }) {
  const { view } = props;
  return (
    <Card chrome={props.chrome} title="Create your account" lead={view.notice}>
      <ErrorSummary errors={view.errors?.invite ? { invite: view.errors.invite } : undefined} />
      <Form action="/portal/sign-up" csrf={props.chrome.csrf}>
        {hidden('invite', view.invite)}
        {hidden('next', view.next)}
        <Field label="Email" name="email" type="email" value={view.email} error={view.errors?.email} autocomplete="email" required maxLength={254} />
        <Field label="Password" name="password" type="password" error={view.errors?.password} hint={PASSWORD_HINT} autocomplete="new-password" required />
        <div class="form-actions">
          <Button>Create account</Button>
        </div>
      </Form>
      <p class="small">
        Already have an account? <a href="/portal/sign-in">Sign in</a>
      </p>
    </Card>
  );
}

/** Sign-up refused before the form (invite mode without an invitation). */
export function SignUpClosedPage(props: { chrome: Chrome; message: string }) {
  return (
    <Card chrome={props.chrome} title="Sign-up is by invitation" lead={props.message}>
      <p class="small">
        Already have an account? <a href="/portal/sign-in">Sign in</a>
      </p>
    </Card>
  );
}

/** The one answer to a sign-up, whether or not the address already had an account. */
export function CheckInboxPage(props: { chrome: Chrome; email: string }) {
  return (
    <Card chrome={props.chrome} title="Check your inbox">
      <p>
        We sent a message to <strong>{props.email}</strong>. Open the link in it to verify your address, then sign in.
      </p>
      <p class="muted small">Nothing there after a few minutes? Look in your spam folder, or ask for a new link below.</p>
      <NewLinkForm chrome={props.chrome} email={props.email} />
      <p class="small">
        <a href="/portal/sign-in">Go to sign in</a>
      </p>
    </Card>
  );
}

/** The answer to a sign-up through an invitation (the invitation proved the address). */
export function InvitedSignUpPage(props: { chrome: Chrome; signInHref: string }) {
  return (
    <Card chrome={props.chrome} title="One more step" lead="Sign in with this address to accept the invitation and join the team.">
      <p>
        <a class="button button-primary" href={props.signInHref}>
          Sign in to accept
        </a>
      </p>
    </Card>
  );
}

function NewLinkForm(props: { chrome: Chrome; email?: string }) {
  return (
    <Form action="/portal/verify-email/resend" csrf={props.chrome.csrf}>
      <Field label="Email" name="email" type="email" value={props.email} autocomplete="email" required maxLength={254} />
      <div class="form-actions">
        <Button variant="secondary">Send a new link</Button>
      </div>
    </Form>
  );
}

/** GET of a verification link: a button, so a mail scanner's prefetch changes nothing. */
export function VerifyEmailPage(props: { chrome: Chrome; token: string }) {
  return (
    <Card chrome={props.chrome} title="Verify your email" lead="Confirm that this address is yours to finish creating your account.">
      <Form action="/portal/verify-email" csrf={props.chrome.csrf}>
        <input type="hidden" name="token" value={props.token} />
        <div class="form-actions">
          <Button>Verify email</Button>
        </div>
      </Form>
    </Card>
  );
}

/** An expired, used or altered link, with a way to get a new one. */
export function LinkExpiredPage(props: { chrome: Chrome; kind: 'verify' | 'reset' }) {
  return (
    <Card
      chrome={props.chrome}
      title="This link has expired"
      lead="The link is no longer valid: links work once, for a limited time. Ask for a new one below."
    >
      {props.kind === 'verify' ? (
        <NewLinkForm chrome={props.chrome} />
      ) : (
        <Form action="/portal/reset-password" csrf={props.chrome.csrf}>
          <Field label="Email" name="email" type="email" autocomplete="email" required maxLength={254} />
          <div class="form-actions">
            <Button variant="secondary">Send reset link</Button>
          </div>
        </Form>
      )}
    </Card>
  );
}

/** The same answer whether or not the address has an account. */
export function LinkSentPage(props: { chrome: Chrome; what: 'verify' | 'reset' }) {
  return (
    <Card chrome={props.chrome} title="Check your inbox">
      <p>
        {props.what === 'verify'
          ? 'If an account exists for that address and is not yet verified, we have sent it a new verification link.'
          : 'If an account exists for that address, we have sent it a link to choose a new password. The link works once, within 30 minutes.'}
      </p>
      <p class="small">
        <a href="/portal/sign-in">Back to sign in</a>
      </p>
    </Card>
  );
}

export interface SignInView {
  email?: string;
  /** The one message for an unknown address, a wrong password and a suspended account. */
  error?: string;
  next?: string;
}

export function SignInPage(props: { chrome: Chrome; view: SignInView }) {
  const { view } = props;
  return (
    <Card chrome={props.chrome} title="Sign in">
      {view.error ? (
        <div class="flash flash-error" role="alert">
          {view.error}
        </div>
      ) : null}
      <Form action="/portal/sign-in" csrf={props.chrome.csrf}>
        {hidden('next', view.next)}
        <Field label="Email" name="email" type="email" value={view.email} autocomplete="username" required maxLength={254} autofocus={!view.email} />
        <Field label="Password" name="password" type="password" autocomplete="current-password" required autofocus={Boolean(view.email)} />
        <div class="form-actions">
          <Button>Sign in</Button>
        </div>
      </Form>
      <p class="small">
        <a href="/portal/reset-password">Forgot your password?</a>
        {' · '}
        <a href="/portal/sign-up">Create an account</a>
      </p>
    </Card>
  );
}

export function UnverifiedPage(props: { chrome: Chrome; email: string }) {
  return (
    <Card chrome={props.chrome} title="Verify your email first" lead="Your password is right, but your address is not verified yet. Open the link we mailed you, or ask for a new one.">
      <NewLinkForm chrome={props.chrome} email={props.email} />
    </Card>
  );
}

export function ThrottledPage(props: { chrome: Chrome; minutes: number }) {
  return (
    <Card
      chrome={props.chrome}
      title="Too many attempts"
      lead={`Too many attempts, try again in ${props.minutes} ${props.minutes === 1 ? 'minute' : 'minutes'}.`}
    >
      <p class="small">
        <a href="/portal/reset-password">Forgot your password?</a>
      </p>
    </Card>
  );
}

export function ResetRequestPage(props: { chrome: Chrome; email?: string; error?: string }) {
  return (
    <Card chrome={props.chrome} title="Reset your password" lead="We will mail you a link to choose a new password.">
      <Form action="/portal/reset-password" csrf={props.chrome.csrf}>
        <Field label="Email" name="email" type="email" value={props.email} error={props.error} autocomplete="email" required maxLength={254} />
        <div class="form-actions">
          <Button>Send reset link</Button>
        </div>
      </Form>
      <p class="small">
        <a href="/portal/sign-in">Back to sign in</a>
      </p>
    </Card>
  );
}

export function ResetConfirmPage(props: { chrome: Chrome; token: string; email: string; error?: string }) {
  return (
    <Card chrome={props.chrome} title="Choose a new password" lead="Setting a new password signs you out everywhere.">
      <Form action="/portal/reset-password/confirm" csrf={props.chrome.csrf}>
        <input type="hidden" name="token" value={props.token} />
        {/* For password managers: the account this password belongs to. */}
        <input type="hidden" name="username" value={props.email} autocomplete="username" />
        <Field label="New password" name="password" type="password" error={props.error} hint={PASSWORD_HINT} autocomplete="new-password" required />
        <div class="form-actions">
          <Button>Set new password</Button>
        </div>
      </Form>
    </Card>
  );
}
