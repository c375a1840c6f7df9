import { STATUS_CODES } from 'node:http';
import type { Logger } from 'pino';
import { isDatabaseUnavailable, toLatchkeyError, TooManyRequests } from '../lib/errors.ts';

export const PROBLEM_TYPE = 'application/problem+json';

export interface ProblemAnswer {
  status: number;
  headers: Record<string, string>;
  body: { type: string; title: string; status: number; detail: string; error: string };
}

/**
 * Errors on `/v1/…` as RFC 9457 problem details: the public description as `detail`, and the
 * error code as the `error` member DESIGN §2 promises on /v1 (the same closed set as the
 * OAuth endpoints). The private detail only reaches the log.
 */
export function problemAnswer(thrown: unknown, log: Logger, requestId: string): ProblemAnswer {
  // DESIGN §2 HTTP: the database out of reach is a 503 to retry, never a 500.
  if (isDatabaseUnavailable(thrown)) {
    log.warn({ err: thrown, requestId }, 'database unreachable');
    const detail = 'the credential store cannot be reached right now; retry shortly';
    return { status: 503, headers: { 'Retry-After': '5' }, body: { type: 'about:blank', title: STATUS_CODES[503]!, status: 503, detail, error: 'temporarily_unavailable' } };
  }
  const error = toLatchkeyError(thrown);
  if (error !== thrown && error.code === 'server_error') log.error({ err: thrown, requestId }, 'request failed');
  else if (error.detail) log.info({ code: error.code, detail: error.detail, requestId }, 'request rejected');
  const headers: Record<string, string> = {};
  // RFC 9110 §11.6.1: a 401 names the scheme it wants.
  if (error.status === 401) headers['WWW-Authenticate'] = 'Basic realm="latchkey", error="invalid_client"';
  if (error.code === 'method_not_allowed') headers.Allow = 'POST';
  if (error instanceof TooManyRequests) headers['Retry-After'] = String(error.retryAfterSeconds);
  return {
    status: error.status,
    headers,
    body: { type: 'about:blank', title: STATUS_CODES[error.status] ?? 'Error', status: error.status, detail: error.description, error: error.code },
  };
}
