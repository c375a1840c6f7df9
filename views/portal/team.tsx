import { Badge, Button, Choices, DataTable, EmptyState, ErrorSummary, Field, Form, PageHeader, Time } from '../components.tsx';
import { CardLayout, Layout, type Chrome } from '../layout.tsx';

export interface TeamMemberView {
  accountId: string;
  email: string;
  role: string;
  joinedAt: Date;
  isPersonalOwner: boolean;
}

export interface TeamInvitationView {
  id: string;
  email: string;
  role: string;
  expiresAt: Date;
}

export interface TeamFormState {
  invite?: { email?: string; role?: string; errors?: Record<string, string> };
  rename?: { name?: string; errors?: Record<string, string> };
  create?: { name?: string; errors?: Record<string, string> };
}

export interface TeamPageProps {
  chrome: Chrome;
  now: Date;
  team: { id: string; name: string; personal: boolean };
  viewer: { accountId: string; isOwner: boolean };
  members: TeamMemberView[];
  invitations: TeamInvitationView[];
  forms?: TeamFormState;
}

const ROLE_CHOICES = (selected = 'member') => [
  { value: 'member', label: 'Member', description: 'Works with the team’s API keys and applications.', checked: selected !== 'owner' },
  { value: 'owner', label: 'Owner', description: 'Also invites, removes and changes the roles of people.', checked: selected === 'owner' },
];

export function TeamPage(props: TeamPageProps) {
  const { chrome, now, team, viewer, members, invitations, forms = {} } = props;
  const errors = { ...forms.invite?.errors, ...forms.rename?.errors, ...forms.create?.errors };
  return (
    <Layout chrome={chrome} title="Team">
      <PageHeader title={team.name} description={team.personal ? 'Your personal team. Credentials belong to the team, not to a person.' : 'Credentials belong to the team, not to a person, so they stay when people leave.'} />
      <ErrorSummary errors={errors} />
      <section aria-labelledby="members-heading">
        <h2 id="members-heading">Members</h2>
        <DataTable head={['Email', 'Role', 'Joined', viewer.isOwner ? 'Actions' : null]}>
          {members.map((member) => (
            <tr>
              <td>
                {member.email}
                {member.accountId === viewer.accountId ? <span class="muted"> (you)</span> : null}
              </td>
              <td>
                <Badge status={member.role} />
              </td>
              <td>
                <Time at={member.joinedAt} now={now} />
              </td>
              {viewer.isOwner ? (
                <td>
                  {member.isPersonalOwner ? (
                    <span class="muted small">Personal team owner</span>
                  ) : (
                    <div class="row-actions">
                      <Form action={`/portal/team/members/${member.accountId}/role`} csrf={chrome.csrf} >
                        <select id={`role-${member.accountId}`} name="role" aria-label={`Role of ${member.email}`}>
                          <option value="member" selected={member.role === 'member'}>
                            Member
                          </option>
                          <option value="owner" selected={member.role === 'owner'}>
                            Owner
                          </option>
                        </select>{' '}
                        <Button variant="secondary">Change role</Button>
                      </Form>{' '}
                      {member.accountId === viewer.accountId ? null : (
                        <a class="button button-danger" href={`/portal/team/members/${member.accountId}/remove`}>
                          Remove
                        </a>
                      )}
                    </div>
                  )}
                </td>
              ) : null}
            </tr>
          ))}
        </DataTable>
      </section>

      {viewer.isOwner ? (
        <section aria-labelledby="invitations-heading">
          <h2 id="invitations-heading">Pending invitations</h2>
          {invitations.length === 0 ? (
            <EmptyState title="No pending invitations">
              <p>Invite colleagues below; they receive a link by mail that works once, for 7 days.</p>
            </EmptyState>
          ) : (
            <DataTable head={['Email', 'Role', 'Expires', 'Actions']}>
              {invitations.map((invitation) => (
                <tr>
                  <td>{invitation.email}</td>
                  <td>
                    <Badge status={invitation.role} />
                  </td>
                  <td>
                    <Time at={invitation.expiresAt} now={now} />
                  </td>
                  <td>
                    <Form action={`/portal/team/invitations/${invitation.id}/cancel`} csrf={chrome.csrf}>
                      <Button variant="secondary">Cancel invitation</Button>
                    </Form>
                  </td>
                </tr>
              ))}
            </DataTable>
          )}
          <div class="panel">
            <h2>Invite someone</h2>
            <Form action="/portal/team/invitations" csrf={chrome.csrf}>
              <Field label="Email" name="email" type="email" autocomplete="off" value={forms.invite?.email} error={forms.invite?.errors?.email} maxLength={254} />
              <Choices legend="Role" name="role" type="radio" choices={ROLE_CHOICES(forms.invite?.role)} error={forms.invite?.errors?.role} />
              <div class="form-actions">
                <Button>Send invitation</Button>
              </div>
            </Form>
          </div>
          {team.personal ? null : (
            <div class="panel">
              <h2>Rename the team</h2>
              <Form action="/portal/team/rename" csrf={chrome.csrf}>
                <Field label="Team name" name="name" value={forms.rename?.name ?? team.name} error={forms.rename?.errors?.name} maxLength={100} />
                <div class="form-actions">
                  <Button variant="secondary">Rename</Button>
                </div>
              </Form>
            </div>
          )}
        </section>
      ) : null}

      <div class="panel">
        <h2>Create a team</h2>
        <p class="muted">A new team for shared credentials, with you as its owner. You switch to it at once.</p>
        <Form action="/portal/team/create" csrf={chrome.csrf}>
          <Field label="Team name" name="name" value={forms.create?.name} error={forms.create?.errors?.name} maxLength={100} />
          <div class="form-actions">
            <Button variant="secondary">Create team</Button>
          </div>
        </Form>
      </div>

      {team.personal ? null : (
        <div class="panel panel-danger">
          <h2>Leave the team</h2>
          <p>You lose access to the team’s API keys and applications; they keep working.</p>
          <a class="button button-danger" href="/portal/team/leave">
            Leave team
          </a>
        </div>
      )}
    </Layout>
  );
}

/** The second step of a destructive action: the same button text, red, naming the consequence. */
/** An invitation link that no longer works: expired, used, withdrawn or mistyped look alike. */
export function InvitationInvalidPage(props: { chrome: Chrome; signedIn: boolean }) {
  const Frame = props.signedIn ? Layout : CardLayout;
  return (
    <Frame chrome={props.chrome} title="Invitation not valid">
      <h1>This invitation link is not valid</h1>
      <p>It may have expired (invitations last 7 days), been used already, or been withdrawn. Ask the team’s owner to send you a new invitation.</p>
      <p>
        <a href="/portal">Go to the portal</a>
      </p>
    </Frame>
  );
}

export function InvitationSignedOutPage(props: { chrome: Chrome; teamName: string; signInHref: string; signUpHref: string }) {
  return (
    <CardLayout chrome={props.chrome} title="Join a team">
      <h1>Join the team {props.teamName}</h1>
      <p>To accept this invitation, sign in with the address it was sent to, or create an account with it first.</p>
      <p>
        <a class="button button-primary" href={props.signInHref}>
          Sign in
        </a>{' '}
        <a class="button button-secondary" href={props.signUpHref}>
          Create account
        </a>
      </p>
    </CardLayout>
  );
}

export function InvitationAcceptPage(props: { chrome: Chrome; token: string; teamName: string; role: string; email: string; error?: string; status?: 'wrong_person' }) {
  return (
    <Layout chrome={props.chrome} title="Join a team">
      <PageHeader title={`Join the team ${props.teamName}`} />
      {props.error ? (
        <div class="flash flash-error" role="alert">
          {props.error}
        </div>
      ) : null}
      <div class="panel">
        <dl class="details">
          <dt>Team</dt>
          <dd>{props.teamName}</dd>
          <dt>Role</dt>
          <dd>
            <Badge status={props.role} />
          </dd>
          <dt>Invited address</dt>
          <dd>{props.email}</dd>
        </dl>
        <Form action="/portal/invitations/accept" csrf={props.chrome.csrf}>
          <input type="hidden" name="token" value={props.token} />
          <div class="form-actions">
            <Button>Join team</Button>
          </div>
        </Form>
      </div>
    </Layout>
  );
}
