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
  payload_too_large: 413,
  server_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class LatchkeyError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly description: string,
    readonly detail?: string,
  ) {
    super(`${code}: ${description}`);
    this.status = ERROR_STATUS[code];
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
export class NotFound extends LatchkeyError {
  constructor(what: string) {
    super('not_found', `${what} not found`);
  }
}
export class Conflict extends LatchkeyError {
  constructor(description: string) {
    super('conflict', description);
  }
}

/** Anything that is not a LatchkeyError becomes a server_error without detail. */
export function toLatchkeyError(error: unknown): LatchkeyError {
  if (error instanceof LatchkeyError) return error;
  return new LatchkeyError('server_error', 'internal server error', error instanceof Error ? error.stack : String(error));
}
