import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** RCPT TO addresses. */
  to: string[];
  /** The message as it arrived (CRLF line ends). */
  raw: string;
}

export interface SmtpPeer {
  /** `smtp://127.0.0.1:PORT`, for SMTP_URL. */
  url: string;
  /** Every accepted message, in arrival order. */
  messages: ReceivedMail[];
  /** How many DATA commands arrived, rejected ones included. */
  attempts(): number;
  /** The first message (already here or yet to come) that matches; rejects after `ms`. */
  waitFor(predicate: (mail: ReceivedMail) => boolean, ms?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

export interface SmtpPeerOptions {
  /** Refuses the first n messages at the end of DATA, with `rejectCode` (451: try again later). */
  rejectFirst?: number;
  rejectCode?: number;
}

/** A real SMTP server on a loopback port that keeps what it receives: tests read mail from it. */
export async function startSmtpPeer({ rejectFirst = 0, rejectCode = 451 }: SmtpPeerOptions = {}): Promise<SmtpPeer> {
  const messages: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  let attempts = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        attempts += 1;
        if (attempts <= rejectFirst) {
          callback(Object.assign(new Error('test peer refuses this message'), { responseCode: rejectCode }));
          return;
        }
        messages.push({ to: session.envelope.rcptTo.map((rcpt) => rcpt.address), raw: Buffer.concat(chunks).toString('utf8') });
        for (const wake of [...waiters]) wake();
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    attempts: () => attempts,
    waitFor(predicate, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(predicate);
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching mail within ${ms} ms (${messages.length} received)`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A parsed MIME entity: headers (lower-case names, unfolded, encoded words decoded), its decoded body, its parts. */
export interface MimePart {
  headers: Map<string, string>;
  /** The media type, lower case, without parameters: `text/plain`, `multipart/alternative`… */
  type: string;
  /** The decoded body of a leaf part (transfer encoding undone, as UTF-8); '' for a multipart. */
  body: string;
  parts: MimePart[];
}

/** Parses a raw RFC 5322 message far enough for tests: headers, multipart nesting, base64 and quoted-printable. */
export function parseMail(raw: string): MimePart {
  const text = raw.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  const head = split >= 0 ? text.slice(0, split) : text;
  const rawBody = split >= 0 ? text.slice(split + 2) : '';
  const headers = new Map<string, string>();
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), decodeWords(line.slice(colon + 1).trim()));
  }
  const contentType = headers.get('content-type') ?? 'text/plain';
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
    if (!boundary) throw new Error('multipart without a boundary');
    const sections = rawBody.split(`--${boundary}`);
    // Before the first delimiter is the preamble; after the closing `--boundary--` the epilogue.
    const parts = sections
      .slice(1)
      .filter((section) => !section.startsWith('--'))
      .map((section) => parseMail(section.replace(/^[ \t]*\n/, '').replace(/\n$/, '')));
    return { headers, type, body: '', parts };
  }
  const encoding = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  return { headers, type, body: decodeBody(rawBody, encoding), parts: [] };
}

/** The first leaf part of this media type, searching depth-first. */
export function findPart(mail: MimePart, type: string): MimePart | undefined {
  if (mail.type === type) return mail;
  for (const part of mail.parts) {
    const found = findPart(part, type);
    if (found) return found;
  }
  return undefined;
}

/** The http(s) links in a message's text/plain part, in order (what a person would click). */
export function linksIn(raw: string): string[] {
  const text = findPart(parseMail(raw), 'text/plain')?.body ?? '';
  return [...text.matchAll(/https?:\/\/[^\s<>"]+/g)].map((match) => match[0]);
}

function decodeBody(body: string, encoding: string): string {
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  return body;
}

/** RFC 2045 §6.7: `=\n` is a soft line break, `=XX` a byte. */
export function decodeQuotedPrintable(body: string): string {
  const joined = body.replace(/[ \t]+$/gm, '').replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < joined.length; i++) {
    const hex = joined[i] === '=' ? joined.slice(i + 1, i + 3) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(joined[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`), as nodemailer writes non-ASCII subjects. */
function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_all, _charset: string, mode: string, data: string) =>
      mode.toUpperCase() === 'B' ? Buffer.from(data, 'base64').toString('utf8') : decodeQuotedPrintable(data.replace(/_/g, ' ')),
    );
}
