import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  requestId?: string;
  ip?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export const runWithRequestContext = <T>(context: RequestContext, fn: () => T): T => storage.run(context, fn);

/** The current request's id and peer address, for audit events written deep in services. */
export const requestContext = (): RequestContext => storage.getStore() ?? {};
