import pino from 'pino';
import { ZodError } from 'zod';

/**
 * The closed set of errors Latchkey reports. `description` is public; `detail` only reaches logs.
 * OAuth endpoints render them as RFC 6749 §5.2 bodies; the CLI as one line on stderr.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_scope: 400,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_many_requests: 429,
  server_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class LatchkeyError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly description: string,
    readonly detail?: string,
    status: number = ERROR_STATUS[code],
  ) {
    super(`${code}: ${description}`);
    this.status = status;
  }
}

export class InvalidRequest extends LatchkeyError {
  constructor(description: string, detail?: string) {
    super('invalid_request', description, detail);
  }
}
export class InvalidClient extends LatchkeyError {
  constructor(description = 'client authentication failed', detail?: string) {
    super('invalid_client', description, detail);
  }
}
/** An oversize body: RFC 6749 has no code of its own for it, so invalid_request, with 413. */
export class PayloadTooLarge extends LatchkeyError {
  constructor() {
    super('invalid_request', 'request body too large', undefined, 413);
  }
}
export class NotFound extends LatchkeyError {
  constructor(what: string) {
    super('not_found', `${what} not found`);
  }
}
/** Over a self-protection limit (limits/endpoint-guard.ts): 429 with Retry-After (DESIGN §2 HTTP). */
export class TooManyRequests extends LatchkeyError {
  constructor(readonly retryAfterSeconds: number) {
    super('too_many_requests', 'too many requests; retry later', undefined, 429);
  }
}
export class Conflict extends LatchkeyError {
  constructor(description: string) {
    super('conflict', description);
  }
}

/**
 * Anything that is not a LatchkeyError becomes a server_error (the error itself is logged, see
 * errorForLog); except a validation error (zod), which is the caller's: invalid_request, 400
 * (issue 7 §1: never a 500 for bad input).
 */
export function toLatchkeyError(error: unknown): LatchkeyError {
  if (error instanceof LatchkeyError) return error;
  if (error instanceof ZodError) return invalidParameters(error);
  return new LatchkeyError('server_error', 'internal server error');
}

/**
 * The public description names the offending parameters only (the first step of each issue's
 * path: `audiences`, never `audiences.0` or a schema's wording); the issues go to the log.
 */
function invalidParameters(error: ZodError): InvalidRequest {
  const names = [...new Set(error.issues.map((issue) => issue.path[0]).filter((name) => typeof name === 'string'))];
  const description = names.length === 0 ? 'request is invalid' : `invalid ${names.length === 1 ? 'parameter' : 'parameters'} ${names.join(', ')}`;
  const detail = error.issues.map((issue) => `${issue.path.join('.') || '(request)'}: ${issue.message}`).join('; ');
  return new InvalidRequest(description, detail);
}

/**
 * Database errors can quote what a query carried (Prisma's messages show its arguments,
 * Postgres's `detail` shows key values): digests, hashes, token ids. They are named, never
 * quoted, wherever they leave the process.
 */
export function isDatabaseError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' && (name.startsWith('PrismaClient') || name === 'DriverAdapterError' || error instanceof DatabaseErrorShape);
}

// pg's DatabaseError (name 'error'), recognised by its shape rather than imported.
class DatabaseErrorShape {
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && 'severity' in value && 'code' in value && 'routine' in value;
  }
}

/** The log form of an error (pino's `err` serializer): database errors keep their name, code and stack frames only. */
export function errorForLog(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  // Anything else keeps what pino records of it (code, errno, cause…): unless it wraps a
  // database error, since pino folds causes' messages into the message.
  if (!isDatabaseError(error) && !isDatabaseError(error.cause)) return pino.stdSerializers.err(error) as unknown as Record<string, unknown>;
  const { code } = error as { code?: unknown };
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  return { type: error.name, code, message: `database error ${String(code ?? error.name)} (details withheld)`, stack: frames.join('\n') };
}

/**
 * One line for a person (CLI, `latchkey serve` failing to start): database errors named, not
 * quoted. With the DATABASE_URL in use, the problems an operator meets first (no such
 * database, nothing listening, credentials refused) say what is wrong and what to do.
 */
export function describeFailure(error: unknown, databaseUrl?: string): string {
  if (error instanceof LatchkeyError) return error.code === 'server_error' ? 'internal error' : error.description;
  const { name = 'Error', code } = (error ?? {}) as { name?: string; code?: string };
  const operator = databaseUrl ? describeDatabaseProblem(code, databaseUrl) : undefined;
  if (operator) return operator;
  if (isDatabaseError(error)) return `internal error (database: ${code ?? name})`;
  return `internal error (${String((error as Error)?.message ?? error).split('\n')[0]})`;
}

/** Postgres SQLSTATEs and socket errors an operator can fix, by what they mean; the URL's credentials never appear. */
function describeDatabaseProblem(code: string | undefined, databaseUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return undefined;
  }
  const host = url.hostname || 'localhost';
  const port = url.port || '5432';
  const database = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username) || 'postgres';
  switch (code) {
    case '3D000':
      return `database "${database}" does not exist on ${host}:${port}: create it (createdb -h ${host} -p ${port} ${database}) or fix DATABASE_URL`;
    case '28P01':
    case '28000':
      return `the database at ${host}:${port} refused the user or password in DATABASE_URL: fix them, or allow this user in pg_hba.conf`;
    case '57P03':
      return `the database at ${host}:${port} is starting up or shutting down: try again in a moment`;
    case '53300':
      return `the database at ${host}:${port} has no connection slot left: raise max_connections or run fewer clients`;
    case 'ECONNREFUSED':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ECONNRESET':
      return `cannot reach the database at ${host}:${port}: is Postgres running? check DATABASE_URL`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the database host "${host}": check DATABASE_URL`;
    default:
      return undefined;
  }
}

// Socket errors and Postgres SQLSTATEs that mean "the database is not there right now" (class
// 08: connection exception; 57P01-03: shutting down or starting), not "the query was wrong".
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', '57P01', '57P02', '57P03', '53300']);
// pg reports a connection lost mid-query or a pool timeout as a plain Error with no code:
// its message is the only mark it leaves (node-postgres lib/client.js, pg-pool index.js).
const UNAVAILABLE_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

/**
 * The database could not be reached (as opposed to refusing a query): pages and credential
 * endpoints answer 503 with Retry-After, never 500 (DESIGN §2 HTTP). Follows `cause` chains,
 * since Prisma and its adapters wrap driver errors.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message)) return true;
  }
  return false;
}
