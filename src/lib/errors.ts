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
  temporarily_unavailable: 503,
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
/** A body in a media type the endpoint does not read (JSON endpoints): invalid_request, with 415. */
export class UnsupportedMediaType extends LatchkeyError {
  constructor(expected: string) {
    super('invalid_request', `the request body must be ${expected}`, undefined, 415);
  }
}
export class NotFound extends LatchkeyError {
  constructor(what: string) {
    super('not_found', `${what} not found`);
  }
}
/**
 * Over a limit (self-protection, limits/endpoint-guard.ts, or an application's plan at the token
 * endpoint): 429 with Retry-After (DESIGN §2 HTTP). RFC 6749 defines no code for it (`slow_down`
 * is the device flow's); `too_many_requests` is what Auth0 and others answer.
 */
export class TooManyRequests extends LatchkeyError {
  constructor(
    readonly retryAfterSeconds: number,
    description = 'too many requests; retry later',
  ) {
    super('too_many_requests', description, undefined, 429);
  }
}
/**
 * The database is out of reach (isDatabaseUnavailable): 503 with Retry-After, never a 500
 * (DESIGN §2 HTTP). `temporarily_unavailable` is RFC 6749 §4.1.2.1's code for it.
 */
export class TemporarilyUnavailable extends LatchkeyError {
  constructor(readonly retryAfterSeconds = 5) {
    super('temporarily_unavailable', 'the credential store cannot be reached right now; retry shortly', undefined, 503);
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
 * (issue 7 §1: never a 500 for bad input), and the database out of reach, which is
 * temporarily_unavailable, 503 (issue 9 §1.9). Every surface maps errors through here.
 */
export function toLatchkeyError(error: unknown): LatchkeyError {
  if (error instanceof LatchkeyError) return error;
  if (error instanceof ZodError) return invalidParameters(error);
  if (isDatabaseUnavailable(error)) return new TemporarilyUnavailable();
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
// pg reports a connection lost mid-query, a connect or pool timeout and a query timeout (a
// silent partition) as a plain Error with no code: its message is the only mark it leaves
// (node-postgres lib/client.js, pg-pool index.js). Prisma's pg adapter passes them on as they are.
const UNAVAILABLE_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout)/;

// Prisma's codes for the same (P1001 not reachable, P1002/P1008 timed out, P1017 connection
// closed, P2024 no pool connection in time, P2037 too many connections), and its driver
// adapters' kinds, which Prisma keeps in `meta.driverAdapterError.cause` rather than as a `cause`.
const UNAVAILABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);
const UNAVAILABLE_ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
// An interactive transaction that got no connection within Prisma's maxWait (the pool is held
// by queries a partition left unanswered). P2028 names every transaction-API error, so only
// this message of it counts.
const PRISMA_NO_CONNECTION = /Unable to start a transaction in the given time/;

/**
 * The database could not be reached (as opposed to refusing a query): pages and credential
 * endpoints answer 503 with Retry-After, never 500 (DESIGN §2 HTTP). Follows `cause` chains
 * (and Prisma's `meta.driverAdapterError`), since Prisma and its adapters wrap driver errors.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 6; current = next(current), depth++) {
    const { code, message, kind, name } = current as { code?: unknown; message?: unknown; kind?: unknown; name?: unknown };
    if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
    const prisma = typeof name === 'string' && name.startsWith('PrismaClient');
    if (prisma && typeof code === 'string' && UNAVAILABLE_PRISMA_CODES.has(code)) return true;
    if (prisma && code === 'P2028' && typeof message === 'string' && PRISMA_NO_CONNECTION.test(message)) return true;
    if (typeof kind === 'string' && UNAVAILABLE_ADAPTER_KINDS.has(kind)) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message)) return true;
  }
  return false;
}

function next(error: object): unknown {
  const { cause, meta } = error as { cause?: unknown; meta?: { driverAdapterError?: unknown } };
  return cause ?? (meta && typeof meta === 'object' ? meta.driverAdapterError : undefined);
}
