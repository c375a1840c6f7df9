import { randomBytes } from 'node:crypto';
import { cliJson } from './cli.ts';
import { rememberSecret, type TestServer } from './server.ts';

const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

export interface ScopeOptions {
  name?: string;
  description?: string;
  requiresApproval?: boolean;
}

export async function createScope(server: Pick<TestServer, 'deps'>, options: ScopeOptions = {}): Promise<string> {
  const name = options.name ?? unique('scope');
  const argv = ['scope', 'create', name, '--description', options.description ?? `test scope ${name}`];
  if (options.requiresApproval) argv.push('--requires-approval');
  await cliJson(server, argv);
  return name;
}

export interface ClientOptions {
  name?: string;
  scopes: string[];
  audiences?: string[];
  authMethod?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  jwks?: object;
  jwksUri?: string;
  owner?: string;
  plan?: string;
}

export interface CreatedClient {
  client_id: string;
  client_secret?: string;
  scopes: string[];
  audiences: string[];
}

export async function createClient(server: Pick<TestServer, 'deps'>, options: ClientOptions): Promise<CreatedClient> {
  const argv = ['client', 'create', '--name', options.name ?? unique('client'), '--scopes', options.scopes.join(' ')];
  for (const audience of options.audiences ?? []) argv.push('--audience', audience);
  if (options.authMethod) argv.push('--auth-method', options.authMethod);
  if (options.jwks) argv.push('--jwks', JSON.stringify(options.jwks));
  if (options.jwksUri) argv.push('--jwks-uri', options.jwksUri);
  if (options.owner) argv.push('--owner', options.owner);
  if (options.plan) argv.push('--plan', options.plan);
  const created = await cliJson<CreatedClient>(server, argv);
  rememberSecret(created.client_secret);
  return created;
}
