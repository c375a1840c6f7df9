import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface Mailer {
  /** Sends after the caller's commit; never throws: a failure is logged and retried (3 tries with back-off, e.g. 1 s, 5 s, 30 s, timers unref'd), and never undoes what the mail announces. */
  send(message: MailMessage): void;
  /** Resolves when every queued send has finished (delivered or given up): for shutdown and tests. Waiting retries keep the process alive meanwhile. */
  idle(): Promise<void>;
  /** Drops the retries still waiting (logged as given up), waits for sends under way, closes the transport. */
  close(): Promise<void>;
}

export interface MailerOptions {
  config: Pick<Config, 'SMTP_URL' | 'LATCHKEY_MAIL_FROM' | 'LATCHKEY_DATA_DIR'>;
  log: Logger;
  /** Waits before each retry after a failed try; one retry per entry. Tests pass a few milliseconds. */
  retryDelaysMs?: readonly number[];
  /** Names the .eml files; injected so tests control it. */
  now?: () => Date;
}

/** A first try, then one retry after each delay. */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [1_000, 5_000, 30_000];

// Fail fast: a relay that does not answer within seconds is down, and the next retry will tell.
const SMTP_TIMEOUTS = { connectionTimeout: 5_000, greetingTimeout: 5_000, socketTimeout: 30_000 } as const;

interface Delivery {
  /** A log name for where the message went: the .eml file, or the relay's message id. */
  deliver(message: MailMessage): Promise<Record<string, unknown>>;
  close(): void;
}

/**
 * The mail service. With SMTP_URL, messages go through that relay; without it each one is
 * written as an .eml file under LATCHKEY_DATA_DIR/mail/, for development and for operators
 * without a relay. Log lines name the recipient's domain, the subject and where the message went:
 * never its body, whose links carry secrets (verification, reset and invitation tokens).
 */
export function createMailer({ config, log, retryDelaysMs = DEFAULT_RETRY_DELAYS_MS, now = () => new Date() }: MailerOptions): Mailer {
  const from = config.LATCHKEY_MAIL_FROM;
  const delivery = config.SMTP_URL ? smtpDelivery(config.SMTP_URL, from) : fileDelivery(path.join(config.LATCHKEY_DATA_DIR, 'mail'), from, now);
  const logger = log.child({ component: 'mail' });
  const pending = new Set<Promise<void>>();
  const waiting = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  let closed = false;
  // While someone awaits idle() (a CLI command before it exits, a test), waiting retries hold the
  // process open; otherwise a retry waiting for its turn must not keep the process alive on its own.
  let idleWaiters = 0;
  const holdOpen = (hold: boolean) => {
    for (const { timer } of waiting) (hold ? timer.ref() : timer.unref());
  };
  async function drain(): Promise<void> {
    if (idleWaiters++ === 0) holdOpen(true);
    try {
      while (pending.size > 0) await Promise.all([...pending]);
    } finally {
      if (--idleWaiters === 0) holdOpen(false);
    }
  }

  /** Resolves after `ms`, or at once (with false) when close() drops the wait. */
  function pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          waiting.delete(entry);
          resolve(true);
        }, ms),
        wake: () => {
          clearTimeout(entry.timer);
          waiting.delete(entry);
          resolve(false);
        },
      };
      if (idleWaiters === 0) entry.timer.unref();
      waiting.add(entry);
    });
  }

  async function run(message: MailMessage): Promise<void> {
    const about = { to_domain: domainOf(message.to), subject: message.subject };
    const tries = retryDelaysMs.length + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        const where = await delivery.deliver(message);
        logger.info({ ...about, ...where, attempt }, 'mail sent');
        return;
      } catch (error) {
        const permanent = (error as { permanent?: unknown }).permanent === true;
        const last = attempt >= tries || permanent || closed;
        logger[last ? 'error' : 'warn'](
          { ...about, attempt, error: mailErrorForLog(error) },
          last ? `mail not sent, giving up${permanent ? ' (rejected permanently)' : ''}` : 'mail not sent, will retry',
        );
        if (last) return;
      }
      if (!(await pause(retryDelaysMs[attempt - 1]!))) {
        logger.error({ ...about, attempt }, 'mail not sent, giving up (mailer closed)');
        return;
      }
    }
  }

  return {
    send(message) {
      if (closed) {
        logger.error({ to_domain: domainOf(message.to), subject: message.subject }, 'mail not sent (mailer closed)');
        return;
      }
      // run() catches every failure itself; the catch is for a fault in logging.
      const task = run(message)
        .catch(() => {})
        .finally(() => pending.delete(task));
      pending.add(task);
    },
    idle: drain,
    async close() {
      closed = true;
      for (const entry of [...waiting]) entry.wake();
      await drain();
      delivery.close();
    },
  };
}

function smtpDelivery(url: string, from: string): Delivery {
  const transport = nodemailer.createTransport({ url, ...SMTP_TIMEOUTS });
  return {
    async deliver(message) {
      const info = await transport.sendMail({ from, to: message.to, subject: message.subject, text: message.text, html: message.html });
      return { message_id: info.messageId };
    },
    close: () => transport.close(),
  };
}

function fileDelivery(dir: string, from: string, now: () => Date): Delivery {
  // newline 'windows': the file is the message as it would travel (RFC 5322 §2.1: CRLF).
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  let dirReady: Promise<void> | undefined;
  const ensureDir = () =>
    (dirReady ??= (async () => {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // mkdir leaves an existing directory as it is: the files carry live links, so tighten it.
      await chmod(dir, 0o700);
    })().catch((error: unknown) => {
      dirReady = undefined;
      throw error;
    }));
  return {
    async deliver(message) {
      const info = await transport.sendMail({ from, to: message.to, subject: message.subject, text: message.text, html: message.html });
      await ensureDir();
      const file = path.join(dir, `${fileStamp(now())}-${randomBytes(3).toString('hex')}.eml`);
      // 'wx': never overwrite another message, should two names ever meet.
      await writeFile(file, info.message as Buffer, { mode: 0o600, flag: 'wx' });
      // The .eml's text part is quoted-printable (long link lines get folded), which a text
      // editor shows broken: beside it, the same text as a person reads it.
      await writeFile(file.replace(/\.eml$/, '.txt'), `To: ${message.to}\nSubject: ${message.subject}\n\n${message.text}`, { mode: 0o600, flag: 'wx' });
      return { file, message_id: info.messageId };
    },
    close: () => transport.close(),
  };
}

/** 2026-12-01T10:15:00.123Z → 20261201T101500.123Z: sorts by time, safe in any file system. */
function fileStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '');
}

/** The recipient's domain only: addresses are personal data, and the domain is enough to diagnose a relay. */
function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  return at >= 0 ? address.slice(at + 1).replace(/[>\s].*$/, '').toLowerCase() : undefined;
}

/**
 * An error as the log shows it (under `error`, not pino's `err`): its name, code and the relay's
 * reply say what went wrong; its text is left out, since a fault outside nodemailer could quote the mail.
 */
function mailErrorForLog(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  const { code, command, responseCode, response } = error as { code?: unknown; command?: unknown; responseCode?: unknown; response?: unknown };
  return {
    type: error.name,
    ...(code !== undefined && { code }),
    ...(command !== undefined && { command }),
    ...(responseCode !== undefined && { responseCode }),
    ...(typeof response === 'string' && { response: response.slice(0, 200) }),
  };
}
