import type { MailMessage } from './mailer.ts';

/**
 * The messages Latchkey sends. Each has a plain-text and an HTML part saying the same thing;
 * links are absolute URLs under LATCHKEY_ISSUER, built by the caller (they carry its tokens).
 * Everything a person or the caller supplies is escaped in the HTML part.
 */

/** One block of a message: a paragraph, or a link shown as a button and as text. */
type Block = { paragraph: string } | { action: string; url: string };

export function verifyEmailMessage({ to, link, expiresInText }: { to: string; link: string; expiresInText: string }): MailMessage {
  return compose(to, 'Latchkey: verify your email address', [
    { paragraph: 'Confirm that this address belongs to you to finish creating your Latchkey account.' },
    { action: 'Verify email address', url: link },
    { paragraph: `The link works once and expires in ${expiresInText}. If you did not create an account, ignore this message: nothing happens without the link.` },
  ]);
}

export function passwordResetMessage({ to, link, expiresInText }: { to: string; link: string; expiresInText: string }): MailMessage {
  return compose(to, 'Latchkey: reset your password', [
    { paragraph: 'Someone asked to reset the password of the Latchkey account for this address.' },
    { action: 'Choose a new password', url: link },
    { paragraph: `The link works once and expires in ${expiresInText}. If you did not ask for it, ignore this message: your password stays as it is.` },
  ]);
}

/** Sent instead of a verification mail when the address already has an account, so sign-up never tells who is registered. */
export function accountExistsMessage({ to, signInLink, resetLink }: { to: string; signInLink: string; resetLink: string }): MailMessage {
  return compose(to, 'Latchkey: you already have an account', [
    { paragraph: 'Someone tried to create a Latchkey account with this address, but it already has one. Sign in instead:' },
    { action: 'Sign in', url: signInLink },
    { paragraph: 'Forgotten your password? You can choose a new one:' },
    { action: 'Reset password', url: resetLink },
    { paragraph: 'If this was not you, ignore this message: your account is unchanged.' },
  ]);
}

export function teamInviteMessage({
  to,
  teamName,
  invitedBy,
  link,
  expiresInText,
}: {
  to: string;
  teamName: string;
  invitedBy: string;
  link: string;
  expiresInText: string;
}): MailMessage {
  return compose(to, `Latchkey: ${invitedBy} invited you to the team ${teamName}`, [
    { paragraph: `${invitedBy} invited you to join the team “${teamName}” on Latchkey.` },
    { action: 'Accept invitation', url: link },
    { paragraph: `The invitation expires in ${expiresInText}. If you do not know the sender, ignore this message.` },
  ]);
}

export function requestDecidedMessage({
  to,
  kind,
  name,
  approved,
  note,
  link,
}: {
  to: string;
  kind: 'API key' | 'application';
  name: string;
  approved: boolean;
  note?: string;
  link: string;
}): MailMessage {
  const outcome = approved ? 'approved' : 'declined';
  const blocks: Block[] = [{ paragraph: `Your request for the ${kind} “${name}” was ${outcome}.` }];
  if (note?.trim()) blocks.push({ paragraph: `Note from the reviewer: ${note.trim()}` });
  blocks.push({ action: approved ? `View ${kind}` : 'View request', url: link });
  return compose(to, `Latchkey: your ${kind} request “${name}” was ${outcome}`, blocks);
}

/** An anomaly alert about one credential (limits/alerts.ts): what happened, the figures, what to do. */
export function alertMessage({ to, subject, lines, link }: { to: string; subject: string; lines: string[]; link: string }): MailMessage {
  return compose(to, `Latchkey alert: ${subject}`, [
    ...lines.map((paragraph) => ({ paragraph })),
    { action: 'Review the activity', url: link },
    { paragraph: 'You receive this as an owner of the team or an administrator of Latchkey. One message is sent per alert, not per request.' },
  ]);
}

/** An expiry or rotation reminder (limits/reminders.ts). */
export function reminderMessage({ to, subject, lines, link }: { to: string; subject: string; lines: string[]; link: string }): MailMessage {
  return compose(to, `Latchkey: ${subject}`, [
    ...lines.map((paragraph) => ({ paragraph })),
    { action: 'Open in Latchkey', url: link },
    { paragraph: 'You receive this as an owner of the team. Each reminder is sent once.' },
  ]);
}

/** HTML-escapes text for element content and quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function compose(to: string, subject: string, blocks: Block[]): MailMessage {
  for (const block of blocks) if ('url' in block) assertAbsoluteLink(block.url);
  // A header is one line: a name with a line break in it must not start a header of its own.
  const oneLineSubject = subject.replace(/\s+/g, ' ').trim();
  return { to, subject: oneLineSubject, text: renderText(to, blocks), html: renderHtml(to, oneLineSubject, blocks) };
}

function assertAbsoluteLink(url: string): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = undefined;
  }
  // A relative or javascript: link in a mail is a caller's bug; fail loudly, before anything is sent.
  if (protocol !== 'https:' && protocol !== 'http:') throw new TypeError('mail links must be absolute http(s) URLs');
}

const FOOTER = (to: string) => `This message was sent to ${to} by Latchkey.`;

function renderText(to: string, blocks: Block[]): string {
  const parts = blocks.map((block) => ('url' in block ? `${block.action}:\n${block.url}` : block.paragraph));
  return `${parts.join('\n\n')}\n\n-- \n${FOOTER(to)}\n`;
}

const STYLE = {
  body: 'margin:0;padding:24px;background:#f4f5f7;font-family:-apple-system,BlinkMacSystemFont,\'Segoe UI\',Helvetica,Arial,sans-serif;color:#1c1e21;',
  card: 'max-width:560px;margin:0 auto;background:#ffffff;border:1px solid #dfe1e6;border-radius:8px;padding:32px;',
  brand: 'margin:0 0 24px;font-size:18px;font-weight:600;',
  paragraph: 'margin:0 0 16px;font-size:15px;line-height:1.5;',
  button:
    'display:inline-block;background:#1d4ed8;color:#ffffff;text-decoration:none;font-weight:600;font-size:15px;padding:10px 20px;border-radius:6px;',
  fallback: 'margin:8px 0 24px;font-size:13px;line-height:1.5;color:#5e6470;',
  fallbackLink: 'color:#1d4ed8;word-break:break-all;',
  footer: 'margin:24px 0 0;padding-top:16px;border-top:1px solid #dfe1e6;font-size:12px;color:#5e6470;',
};

function renderHtml(to: string, subject: string, blocks: Block[]): string {
  const body = blocks
    .map((block) => {
      if (!('url' in block)) return `<p style="${STYLE.paragraph}">${escapeHtml(block.paragraph)}</p>`;
      const href = escapeHtml(block.url);
      return (
        `<p style="margin:24px 0 0;"><a href="${href}" style="${STYLE.button}">${escapeHtml(block.action)}</a></p>\n` +
        `<p style="${STYLE.fallback}">Or open this link:<br><a href="${href}" style="${STYLE.fallbackLink}">${href}</a></p>`
      );
    })
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(subject)}</title></head>
<body style="${STYLE.body}">
<div style="${STYLE.card}">
<p style="${STYLE.brand}">Latchkey</p>
${body}
<p style="${STYLE.footer}">${escapeHtml(FOOTER(to))}</p>
</div>
</body>
</html>
`;
}

/** The checkpoint that closed a day, signed, for admins to keep outside the database (issue 8 §1.3). */
export function auditCheckpointMessage({ to, day, checkpoint }: { to: string; day: string; checkpoint: { seq: string; hash: string; at: string; jws: string } }): MailMessage {
  return compose(to, `Latchkey: audit checkpoint for ${day}`, [
    { paragraph: `The last audit checkpoint of ${day} (UTC): at ${checkpoint.at} the audit log's newest event was event ${checkpoint.seq}, with hash ${checkpoint.hash}. The server signed this statement:` },
    { paragraph: checkpoint.jws },
    {
      paragraph:
        'Keep this message. To check later that no audit event up to that one was altered, removed or reordered, and that none of the newest ones was deleted, save the signed statement above to a file and run: latchkey audit verify --checkpoint FILE',
    },
  ]);
}
