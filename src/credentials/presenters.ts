import type { ApiKey, OAuthClient } from '../db/database.ts';
import { apiKeyStatus } from './api-keys.ts';

/**
 * What a screen shows of a credential, one presenter per kind (STYLE.md "Pages are thin"):
 * the portal, the admin screens and any JSON view read these, so they cannot drift apart.
 * Plain data only: never a digest, never a secret.
 */

export type ApiKeyStatusLabel = 'active' | 'rotating out' | 'suspended' | 'revoked' | 'expired';

export interface ApiKeyView {
  id: string;
  /** The public part of the key, `lk_<id>`: safe to show and log. */
  prefix: string;
  /** A short form for tables: `lk_AbCd…_••••`. */
  masked: string;
  name: string;
  teamId: string | null;
  scopes: string[];
  audiences: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  revokedReason: string | null;
  /** When the key itself was suspended (not its team); its reason is in the audit log only. */
  suspendedAt: Date | null;
  /** Set once rotated: the successor's id. */
  replacedById: string | null;
  status: ApiKeyStatusLabel;
  /** Not revoked nor expired (active, rotating out inside its grace window, or suspended). */
  live: boolean;
  /** While rotating out: when the old key stops working. */
  graceEndsAt: Date | null;
}

export type ApiKeyFields = Pick<
  ApiKey,
  'id' | 'name' | 'teamId' | 'scopes' | 'audiences' | 'createdAt' | 'lastUsedAt' | 'expiresAt' | 'revokedAt' | 'replacedById'
> &
  Partial<Pick<ApiKey, 'revokedReason' | 'suspendedAt'>>;

/** The columns presentApiKey reads: select these and nothing else (the digest stays in the database). */
export const API_KEY_VIEW_SELECT = {
  id: true,
  name: true,
  teamId: true,
  scopes: true,
  audiences: true,
  createdAt: true,
  lastUsedAt: true,
  expiresAt: true,
  revokedAt: true,
  revokedReason: true,
  replacedById: true,
  suspendedAt: true,
} as const;

const maskKeyId = (id: string) => `lk_${id.slice(0, 4)}…_••••`;

export function presentApiKey(key: ApiKeyFields, now: Date): ApiKeyView {
  const raw = apiKeyStatus(key, now);
  // A rotated key keeps working until the grace window chosen at rotation ends (its expiresAt).
  // A suspended key (limits/alerts.ts) is refused until unsuspended, but can still be rotated or revoked.
  const status: ApiKeyStatusLabel = key.suspendedAt && (raw === 'active' || raw === 'expiring') ? 'suspended' : raw === 'expiring' ? 'rotating out' : raw;
  return {
    id: key.id,
    prefix: `lk_${key.id}`,
    masked: maskKeyId(key.id),
    name: key.name,
    teamId: key.teamId,
    scopes: key.scopes,
    audiences: key.audiences,
    createdAt: key.createdAt,
    lastUsedAt: key.lastUsedAt,
    expiresAt: key.expiresAt,
    revokedAt: key.revokedAt,
    revokedReason: key.revokedReason ?? null,
    suspendedAt: key.suspendedAt ?? null,
    replacedById: key.replacedById,
    status,
    live: raw === 'active' || raw === 'expiring',
    graceEndsAt: raw === 'expiring' ? key.expiresAt : null,
  };
}

export type ApplicationStatusLabel = 'active' | 'suspended' | 'revoked';

const AUTH_METHOD_LABELS: Record<string, string> = {
  client_secret_basic: 'Client secret',
  client_secret_post: 'Client secret (in the body)',
  private_key_jwt: 'Private key JWT',
};

export interface ApplicationView {
  /** The client id. */
  id: string;
  name: string;
  teamId: string | null;
  scopes: string[];
  audiences: string[];
  authMethod: string;
  authMethodLabel: string;
  /** Whether it authenticates with a secret (and so can have it rotated). */
  usesSecret: boolean;
  grantTypes: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  status: ApplicationStatusLabel;
  /** After a graceful rotation: until when the previous secret still works (null when it no longer does). */
  previousSecretExpiresAt: Date | null;
  secretVersion: number;
  /** A public-key set's key ids, for private_key_jwt. */
  keyIds: string[];
  jwksUri: string | null;
}

export type ApplicationFields = Pick<
  OAuthClient,
  'id' | 'name' | 'teamId' | 'scopes' | 'audiences' | 'authMethod' | 'grantTypes' | 'status' | 'createdAt' | 'lastUsedAt' | 'revokedAt' | 'previousSecretExpiresAt' | 'secretVersion'
> &
  Partial<Pick<OAuthClient, 'jwks' | 'jwksUri'>>;

/** The columns presentApplication reads: never the secret digests. */
export const APPLICATION_VIEW_SELECT = {
  id: true,
  name: true,
  teamId: true,
  scopes: true,
  audiences: true,
  authMethod: true,
  grantTypes: true,
  status: true,
  createdAt: true,
  lastUsedAt: true,
  revokedAt: true,
  previousSecretExpiresAt: true,
  secretVersion: true,
  jwks: true,
  jwksUri: true,
} as const;

export function presentApplication(client: ApplicationFields, now: Date): ApplicationView {
  const status: ApplicationStatusLabel = client.status === 'revoked' || client.status === 'suspended' ? client.status : 'active';
  const keys = (client.jwks as { keys?: { kid?: unknown }[] } | null | undefined)?.keys ?? [];
  return {
    id: client.id,
    name: client.name,
    teamId: client.teamId,
    scopes: client.scopes,
    audiences: client.audiences,
    authMethod: client.authMethod,
    authMethodLabel: AUTH_METHOD_LABELS[client.authMethod] ?? client.authMethod,
    usesSecret: client.authMethod !== 'private_key_jwt',
    grantTypes: client.grantTypes,
    createdAt: client.createdAt,
    lastUsedAt: client.lastUsedAt,
    revokedAt: client.revokedAt,
    status,
    previousSecretExpiresAt: client.previousSecretExpiresAt && client.previousSecretExpiresAt > now ? client.previousSecretExpiresAt : null,
    secretVersion: client.secretVersion,
    keyIds: keys.map((k) => (typeof k.kid === 'string' ? k.kid : '(no kid)')),
    jwksUri: client.jwksUri ?? null,
  };
}
