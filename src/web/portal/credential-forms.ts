import { z } from 'zod';
import { GRACE_CHOICES, type ScopeCatalog, type ScopeOption } from '../../../views/credential-fields.tsx';
import type { Deps } from '../../context.ts';

// The form pieces the API key and application pages share: scopes, audiences, grace windows.

export const choiceValues = (choices: readonly { value: string }[]) => choices.map((c) => c.value) as [string, ...string[]];

/** The chosen grace window (graceForm has checked it is one of GRACE_CHOICES). */
export const graceOf = (value: string) => GRACE_CHOICES.find((c) => c.value === value)!;

export const graceForm = z.object({ grace: z.enum(choiceValues(GRACE_CHOICES), { message: 'Choose how long the old one keeps working.' }) });

/** Which scopes were chosen; whether at least one is needed depends on the catalog (scopesProblem). */
export const chosenScopes = z.array(z.string());

/** Optional: the APIs (audiences) that accept the credential, space-separated; none means the server's default audience. */
export const audiencesText = z
  .string()
  .max(2000, 'Too long: name at most 10 APIs.')
  .transform((text) => [...new Set(text.split(/[\s,]+/).filter(Boolean))])
  .pipe(z.array(z.url({ protocol: /^https?$/, message: 'Give full http(s) URLs, e.g. https://api.example.com, separated by spaces.' })).max(10, 'Name at most 10 APIs.'));

/** The scope catalog as the forms offer it: grantable scopes by API, then the global ones. */
export async function scopeCatalog(deps: Deps): Promise<ScopeCatalog> {
  const [scopes, apis] = await Promise.all([
    deps.prisma.scope.findMany({ select: { name: true, description: true, requiresApproval: true, apiId: true, retiredAt: true }, orderBy: { name: 'asc' } }),
    deps.prisma.api.findMany({ select: { id: true, name: true, audience: true, description: true }, orderBy: { name: 'asc' } }),
  ]);
  const live = scopes.filter((s) => !s.retiredAt);
  const option = ({ name, description, requiresApproval }: ScopeOption): ScopeOption => ({ name, description, requiresApproval });
  return {
    apis: apis.map((api) => ({ name: api.name, audience: api.audience, description: api.description, scopes: live.filter((s) => s.apiId === api.id).map(option) })),
    global: live.filter((s) => s.apiId === null).map(option),
    retired: scopes.filter((s) => s.retiredAt).map((s) => s.name),
  };
}

const grantable = (catalog: ScopeCatalog) => [...catalog.global, ...catalog.apis.flatMap((api) => api.scopes)];

/** Whether the form offers the free Audiences field: only while the catalog has no API (else the chosen scopes' APIs decide). */
export const audiencesAreTyped = (catalog: ScopeCatalog) => catalog.apis.length === 0;

/**
 * What is wrong with the chosen scopes, as a message for the scopes field, or undefined. With
 * scopes in the catalog at least one must be chosen; with none at all (a fresh install) a
 * credential without scope is allowed, so a newcomer gets a working key without the CLI.
 */
export function scopesProblem(catalog: ScopeCatalog, scopes: string[]): string | undefined {
  const offered = grantable(catalog);
  if (scopes.length === 0) return offered.length > 0 ? 'Choose at least one scope.' : undefined;
  const retired = scopes.filter((s) => catalog.retired.includes(s));
  if (retired.length > 0) return `Scope ${retired.join(', ')} is retired and can no longer be granted. Choose from the list.`;
  const unknown = scopes.filter((s) => !offered.some((c) => c.name === s));
  return unknown.length > 0 ? `Unknown scope: ${unknown.join(', ')}. Choose from the list.` : undefined;
}
