/** Where a request came from, for the audit trail. */
export interface RequestInfo {
  requestId?: string;
  ip?: string;
}

/** Who asked for a change; lands in the audit event. */
export interface Actor {
  type: 'cli' | 'account' | 'client' | 'system';
  id?: string;
  requestId?: string;
  ip?: string;
}
