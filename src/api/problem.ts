import { STATUS_CODES } from 'node:http';
import type { Logger } from 'pino';
import { TemporarilyUnavailable, toLatchkeyError, TooManyRequests } from '../lib/errors.ts';
import { logFailure } from '../lib/failure-log.ts';

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
  const error = toLatchkeyError(thrown);
  logFailure(log, thrown, error, requestId);
  const headers: Record<string, string> = {};
  // DESIGN §2 HTTP: the database out of reach is a 503 to retry, never a 500.
  if (error instanceof TemporarilyUnavailable) headers['Retry-After'] = String(error.retryAfterSeconds);
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
