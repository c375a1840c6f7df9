import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ZodError, type core } from 'zod';
import { createAdmin } from '../accounts/admins.ts';
import { exportAuditEvents, recordAuditExport } from '../audit/audit-export.ts';
import { auditFilterSchema, exportAuditLines, streamAuditEvents } from '../audit/audit-query.ts';
import { latestCheckpoint, verifyAuditLog, writeCheckpoint } from '../audit/checkpoints.ts';
import { ConfigError, loadConfig } from '../config.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import { createClient, revokeClient, revokeClientTokens, rotateClientSecret } from '../credentials/clients.ts';
import { accountIdByEmail, suspendAccount, suspendTeam, unsuspendAccount, unsuspendTeam } from '../accounts/suspension.ts';
import { createApiKey, revokeApiKey, rotateApiKey, suspendApiKey, unsuspendApiKey } from '../credentials/api-keys.ts';
import { setAlertPolicy } from '../limits/alerts.ts';
import { createScope, listScopes, presentScope, retireScope, updateScope } from '../credentials/scopes.ts';
import { createApi, listApis, presentApi, updateApi } from '../credentials/apis.ts';
import { approveRequest, denyRequest, listRequests, REQUEST_STATUSES, type RequestStatus } from '../credentials/requests.ts';
import { parseDuration } from '../lib/duration.ts';
import { createPlan, listPlans, parseQuota, parseRate, setCredentialPlan } from '../limits/plans.ts';
import { describeFailure, LatchkeyError } from '../lib/errors.ts';
import { listSigningKeys, rotateSigningKeys } from '../signing/signing-keys.ts';
import { DataDirInUse, describeHolder } from '../db/data-dir-lock.ts';
import { closeDeps, createLogger, openDeps } from '../deps.ts';
import { controlSocketPath, forwardToServer } from './control-socket.ts';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Reuse open services (tests share the server's embedded database). */
  deps?: Deps;
  /** Where long output (an export) is piped, with back-pressure; without it, chunks go to stdout(). */
  stdoutStream?: Writable;
}

// Sequence numbers are Postgres bigints.
const MAX_SEQ = 2n ** 63n - 1n;

const defaultIo = (): CliIo => ({
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stdoutStream: process.stdout,
});

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

interface Command {
  usage: string;
  options?: Options;
  positionals?: number;
  /** The result is printed (one JSON object with --json); null: the command wrote its own output. */
  run(deps: Deps, values: Values, positionals: string[], actor: Actor, io: CliIo): Promise<object | null>;
}

/** Options that name files: made absolute before a command is handed to a running server (its cwd differs). */
const FILE_OPTIONS = ['out', 'checkpoint'];

function absoluteFileOptions(argv: string[]): string[] {
  return argv.map((arg, i) => {
    const flag = FILE_OPTIONS.find((name) => arg.startsWith(`--${name}=`));
    if (flag) return `--${flag}=${path.resolve(arg.slice(flag.length + 3))}`;
    return i > 0 && FILE_OPTIONS.includes(argv[i - 1]!.slice(2)) && argv[i - 1]!.startsWith('--') ? path.resolve(arg) : arg;
  });
}

/** Text chunks to --out FILE, or to stdout (with back-pressure when the io has a stream). */
async function writeChunks(io: CliIo, chunks: AsyncIterable<string>, out: string | undefined): Promise<void> {
  if (out !== undefined) return pipeline(Readable.from(chunks), createWriteStream(out, { mode: 0o600 }));
  if (io.stdoutStream) return pipeline(Readable.from(chunks), io.stdoutStream, { end: false });
  for await (const chunk of chunks) io.stdout(chunk);
}

const AUDIT_FILTER_OPTIONS: Options = {
  actor: { type: 'string' },
  'actor-type': { type: 'string' },
  type: { type: 'string' },
  'subject-type': { type: 'string' },
  'subject-id': { type: 'string' },
  outcome: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
};

const str = (values: Values, name: string): string | undefined => values[name] as string | undefined;
const required = (values: Values, name: string): string => {
  const value = str(values, name);
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
  return value;
};
const words = (text: string) => text.split(/[\s,]+/).filter(Boolean);
/** --scopes on the CLI names at least one scope (the portal alone allows none, on an empty catalog). */
const scopeWords = (values: Values) => {
  const scopes = words(required(values, 'scopes'));
  if (scopes.length === 0) throw new UsageError('--scopes is required');
  return scopes;
};
const duration = (values: Values, name: string, fallback: string) => {
  const text = str(values, name) ?? fallback;
  try {
    return parseDuration(text);
  } catch {
    throw new UsageError(`--${name} must be a duration such as ${fallback} (90s, 15m, 24h, 30d), not "${text}"`);
  }
};
const json = (text: string, name: string) => {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`--${name} must be valid JSON`);
  }
};

/** --rate / --quota: checked here so that a malformed one is a usage error (exit 2) in the flag's words. */
const limitOption = (values: Values, name: 'rate' | 'quota'): string | undefined => {
  const text = str(values, name);
  if (text === undefined) return undefined;
  try {
    (name === 'rate' ? parseRate : parseQuota)(text);
  } catch (error) {
    throw new UsageError(`--${(error as Error).message.replace(/^invalid_request: /, '')}`);
  }
  return text;
};

/** set-plan: exactly one of --plan P and --none, with optional overrides of the plan's rate and quota. */
const setPlanCommand = (kind: 'api_key' | 'client'): Command => ({
  usage: `${kind === 'api_key' ? 'key' : 'client'} set-plan ID --plan P|--none [--rate N/DURATION] [--quota N/day|N/month]`,
  options: { plan: { type: 'string' }, none: { type: 'boolean' }, rate: { type: 'string' }, quota: { type: 'string' } },
  positionals: 1,
  run(deps, v, [id], actor) {
    const plan = str(v, 'plan');
    if ((plan === undefined) === !v.none) throw new UsageError('give --plan P or --none');
    return setCredentialPlan(deps, kind, id!, { plan: plan ?? null, rate: limitOption(v, 'rate'), quota: limitOption(v, 'quota') }, actor);
  },
});

const COMMANDS: Record<string, Command> = {
  'admin create': {
    usage: 'admin create --email E [--password P] [--role admin|auditor]',
    options: { email: { type: 'string' }, password: { type: 'string' }, role: { type: 'string' } },
    run: (deps, v, _p, actor) => createAdmin(deps, { email: required(v, 'email'), password: str(v, 'password'), role: str(v, 'role') as 'admin' | undefined }, actor),
  },
  'scope create': {
    usage: 'scope create NAME --description D [--requires-approval]',
    options: { description: { type: 'string' }, 'requires-approval': { type: 'boolean' } },
    positionals: 1,
    async run(deps, v, [name], actor) {
      const scope = await createScope(deps, { name: name!, description: required(v, 'description'), requiresApproval: Boolean(v['requires-approval']) }, actor);
      return { name: scope.name, description: scope.description, requires_approval: scope.requiresApproval };
    },
  },
  'scope update': {
    usage: 'scope update NAME [--description D] [--requires-approval|--no-requires-approval]',
    options: { description: { type: 'string' }, 'requires-approval': { type: 'boolean' }, 'no-requires-approval': { type: 'boolean' } },
    positionals: 1,
    async run(deps, v, [name], actor) {
      if (v['requires-approval'] && v['no-requires-approval']) throw new UsageError('give --requires-approval or --no-requires-approval, not both');
      const requiresApproval = v['requires-approval'] ? true : v['no-requires-approval'] ? false : undefined;
      const description = str(v, 'description');
      if (description === undefined && requiresApproval === undefined) throw new UsageError('nothing to change: give --description, --requires-approval or --no-requires-approval');
      return presentScope(await updateScope(deps, name!, { description, requiresApproval }, actor));
    },
  },
  'scope retire': {
    usage: 'scope retire NAME [--reason R]',
    options: { reason: { type: 'string' } },
    positionals: 1,
    run: async (deps, v, [name], actor) => presentScope(await retireScope(deps, name!, { reason: str(v, 'reason') }, actor)),
  },
  'scope list': {
    usage: 'scope list',
    run: async (deps) => ({ scopes: (await listScopes(deps)).map(presentScope) }),
  },
  'api create': {
    usage: 'api create NAME --audience URL [--scopes "a b"] [--description D]',
    options: { audience: { type: 'string' }, scopes: { type: 'string' }, description: { type: 'string' } },
    positionals: 1,
    run: async (deps, v, [name], actor) =>
      presentApi(await createApi(deps, { name: name!, audience: required(v, 'audience'), scopes: words(str(v, 'scopes') ?? ''), description: str(v, 'description') }, actor)),
  },
  'api update': {
    usage: 'api update NAME [--audience URL] [--scopes "a b"] [--description D]',
    options: { audience: { type: 'string' }, scopes: { type: 'string' }, description: { type: 'string' } },
    positionals: 1,
    run: async (deps, v, [name], actor) => {
      const scopes = str(v, 'scopes');
      return presentApi(await updateApi(deps, name!, { audience: str(v, 'audience'), scopes: scopes === undefined ? undefined : words(scopes), description: str(v, 'description') }, actor));
    },
  },
  'api list': {
    usage: 'api list',
    run: async (deps) => ({ apis: (await listApis(deps)).map(presentApi) }),
  },
  'client create': {
    usage: 'client create --name N --scopes "a b" [--audience URL]... [--owner EMAIL|TEAM_ID] [--plan P] [--auth-method M] [--jwks JSON | --jwks-uri URL]',
    options: {
      plan: { type: 'string' },
      name: { type: 'string' },
      scopes: { type: 'string' },
      audience: { type: 'string', multiple: true },
      owner: { type: 'string' },
      'auth-method': { type: 'string' },
      jwks: { type: 'string' },
      'jwks-uri': { type: 'string' },
    },
    run: (deps, v, _p, actor) =>
      createClient(
        deps,
        {
          name: required(v, 'name'),
          scopes: scopeWords(v),
          audiences: (v.audience as string[] | undefined) ?? [],
          owner: str(v, 'owner'),
          authMethod: (str(v, 'auth-method') ?? 'client_secret_basic') as never,
          jwks: v.jwks === undefined ? undefined : json(str(v, 'jwks')!, 'jwks'),
          jwksUri: str(v, 'jwks-uri'),
          plan: str(v, 'plan'),
        },
        actor,
      ),
  },
  'client rotate-secret': {
    usage: 'client rotate-secret ID [--grace 24h]',
    options: { grace: { type: 'string' } },
    positionals: 1,
    run: (deps, v, [id], actor) => rotateClientSecret(deps, id!, { graceMs: duration(v, 'grace', '24h') }, actor),
  },
  'client revoke': {
    usage: 'client revoke ID',
    positionals: 1,
    run: (deps, _v, [id], actor) => revokeClient(deps, id!, actor),
  },
  'client revoke-tokens': {
    usage: 'client revoke-tokens ID --reason R',
    options: { reason: { type: 'string' } },
    positionals: 1,
    run: (deps, v, [id], actor) => revokeClientTokens(deps, actor, id!, required(v, 'reason')),
  },
  'team suspend': {
    usage: 'team suspend TEAM_ID --reason R',
    options: { reason: { type: 'string' } },
    positionals: 1,
    run: (deps, v, [id], actor) => suspendTeam(deps, actor, id!, required(v, 'reason')),
  },
  'team unsuspend': {
    usage: 'team unsuspend TEAM_ID --reason R',
    options: { reason: { type: 'string' } },
    positionals: 1,
    run: (deps, v, [id], actor) => unsuspendTeam(deps, actor, id!, required(v, 'reason')),
  },
  'account suspend': {
    usage: 'account suspend EMAIL --reason R',
    options: { reason: { type: 'string' } },
    positionals: 1,
    async run(deps, v, [email], actor) {
      const reason = required(v, 'reason');
      return suspendAccount(deps, actor, await accountIdByEmail(deps, email!), reason);
    },
  },
  'account unsuspend': {
    usage: 'account unsuspend EMAIL --reason R',
    options: { reason: { type: 'string' } },
    positionals: 1,
    async run(deps, v, [email], actor) {
      const reason = required(v, 'reason');
      return unsuspendAccount(deps, actor, await accountIdByEmail(deps, email!), reason);
    },
  },
  'key create': {
    usage: 'key create --name N --scopes "a b" [--audience URL]... [--owner EMAIL|TEAM_ID] [--expires-in 30d] [--plan P]',
    options: {
      name: { type: 'string' },
      scopes: { type: 'string' },
      audience: { type: 'string', multiple: true },
      owner: { type: 'string' },
      'expires-in': { type: 'string' },
      plan: { type: 'string' },
    },
    run: (deps, v, _p, actor) =>
      createApiKey(
        deps,
        {
          name: required(v, 'name'),
          scopes: scopeWords(v),
          audiences: (v.audience as string[] | undefined) ?? [],
          owner: str(v, 'owner'),
          expiresInMs: v['expires-in'] === undefined ? undefined : duration(v, 'expires-in', '30d'),
          plan: str(v, 'plan'),
        },
        actor,
      ),
  },
  'key rotate': {
    usage: 'key rotate ID [--grace 24h]',
    options: { grace: { type: 'string' } },
    positionals: 1,
    run: (deps, v, [id], actor) => rotateApiKey(deps, id!, { graceMs: duration(v, 'grace', '24h') }, actor),
  },
  'key suspend': {
    usage: 'key suspend ID --reason R',
    options: { reason: { type: 'string' } },
    positionals: 1,
    run: (deps, v, [id], actor) => suspendApiKey(deps, id!, required(v, 'reason'), actor),
  },
  'key unsuspend': {
    usage: 'key unsuspend ID --reason R',
    options: { reason: { type: 'string' } },
    positionals: 1,
    run: (deps, v, [id], actor) => unsuspendApiKey(deps, id!, required(v, 'reason'), actor),
  },
  'team alert-policy': {
    usage: 'team alert-policy TEAM_ID --auto-suspend on|off',
    options: { 'auto-suspend': { type: 'string' } },
    positionals: 1,
    run(deps, v, [id], actor) {
      const value = required(v, 'auto-suspend');
      if (value !== 'on' && value !== 'off') throw new UsageError('--auto-suspend must be on or off');
      return setAlertPolicy(deps, actor, id!, value === 'on');
    },
  },
  'key revoke': {
    usage: 'key revoke ID [--reason R]',
    options: { reason: { type: 'string' } },
    positionals: 1,
    run: (deps, v, [id], actor) => revokeApiKey(deps, id!, { reason: str(v, 'reason') }, actor),
  },
  'key set-plan': setPlanCommand('api_key'),
  'client set-plan': setPlanCommand('client'),
  'plan create': {
    usage: 'plan create NAME --rate N/DURATION [--quota N/day|N/month]',
    options: { rate: { type: 'string' }, quota: { type: 'string' } },
    positionals: 1,
    run(deps, v, [name], actor) {
      required(v, 'rate');
      return createPlan(deps, { name: name!, rate: limitOption(v, 'rate')!, quota: limitOption(v, 'quota') }, actor);
    },
  },
  'plan list': {
    usage: 'plan list',
    run: async (deps) => ({ plans: await listPlans(deps) }),
  },
  'request list': {
    usage: 'request list [--status pending|approved|denied]',
    options: { status: { type: 'string' } },
    async run(deps, v) {
      const status = str(v, 'status');
      if (status !== undefined && !REQUEST_STATUSES.includes(status as RequestStatus)) throw new UsageError('--status must be pending, approved or denied');
      const requests = await listRequests(deps, { status: status as RequestStatus | undefined });
      return {
        requests: requests.map((r) => ({
          id: r.id,
          kind: r.kind,
          name: r.name,
          scopes: r.scopes,
          team: { id: r.team.id, name: r.team.name },
          requested_by: r.requestedBy?.email ?? r.requestedById,
          status: r.status,
          created_at: r.createdAt.toISOString(),
        })),
      };
    },
  },
  'request approve': {
    usage: 'request approve ID [--note N]',
    options: { note: { type: 'string' } },
    positionals: 1,
    run(deps, v, [id], actor) {
      const note = str(v, 'note');
      if (note !== undefined && note.trim().length > 500) throw new UsageError('--note must be at most 500 characters');
      return approveRequest(deps, id!, { note }, actor);
    },
  },
  'request deny': {
    usage: 'request deny ID --reason R',
    options: { reason: { type: 'string' } },
    positionals: 1,
    run(deps, v, [id], actor) {
      const reason = required(v, 'reason').trim();
      if (reason === '') throw new UsageError('--reason is required');
      if (reason.length > 500) throw new UsageError('--reason must be at most 500 characters');
      return denyRequest(deps, id!, { reason }, actor);
    },
  },
  'signing rotate': {
    // Publishes a successor now; it signs once LATCHKEY_JWKS_CACHE_TTL has passed.
    usage: 'signing rotate',
    async run(deps, _v, _p, actor) {
      const key = await rotateSigningKeys(deps, actor);
      return { kid: key.kid, alg: key.alg, state: key.state, created_at: key.createdAt.toISOString(), activates_at: key.activatesAt.toISOString(), replaces: key.replaces };
    },
  },
  'signing list': {
    usage: 'signing list',
    async run(deps) {
      const iso = (date: Date | null) => date?.toISOString() ?? null;
      const keys = await listSigningKeys(deps);
      return {
        keys: keys.map((key) => ({ kid: key.kid, alg: key.alg, state: key.state, created_at: iso(key.createdAt), activates_at: iso(key.activatesAt), retires_at: iso(key.retiresAt), removes_at: iso(key.removesAt) })),
      };
    },
  },
  'audit verify': {
    usage: 'audit verify [--checkpoint FILE]',
    options: { checkpoint: { type: 'string' } },
    async run(deps, v) {
      const file = str(v, 'checkpoint');
      let checkpointJws: string | undefined;
      if (file !== undefined) {
        try {
          checkpointJws = (await readFile(file, 'utf8')).slice(0, 65_536);
        } catch (error) {
          throw new UsageError(`--checkpoint: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
        }
      }
      const result = await verifyAuditLog(deps, { checkpointJws });
      if (!result.ok) throw new LatchkeyError('conflict', `audit log broken: ${result.message}`);
      return { ok: true, events: result.events, head_seq: result.head?.seq ?? null, head_hash: result.head?.hash ?? null, checkpoints: result.anchors };
    },
  },
  'audit checkpoint': {
    usage: 'audit checkpoint [--new] [--out FILE]',
    options: { new: { type: 'boolean' }, out: { type: 'string' } },
    async run(deps, v, _p, _actor, io) {
      // --new: sign the chain's head now, rather than hand out the last timed checkpoint.
      const checkpoint = (v.new ? await writeCheckpoint(deps, { force: true }) : null) ?? (await latestCheckpoint(deps));
      if (!checkpoint) throw new LatchkeyError('not_found', 'no audit checkpoint yet: run latchkey audit checkpoint --new');
      const out = str(v, 'out');
      if (out !== undefined) {
        await writeFile(out, `${checkpoint.jws}\n`, { mode: 0o644 });
        return { ...checkpoint, file: out };
      }
      if (v.json) return checkpoint;
      io.stdout(`${checkpoint.jws}\n`);
      return null;
    },
  },
  'audit export': {
    usage:
      'audit export [--format jsonl|csv [--out FILE]] [--actor ID] [--actor-type T] [--type T[,T…]] [--subject-type T] [--subject-id ID] [--outcome success|failure] [--from ISO] [--to ISO] | [--since ISO] [--after-seq N]',
    options: { since: { type: 'string' }, 'after-seq': { type: 'string' }, format: { type: 'string' }, out: { type: 'string' }, ...AUDIT_FILTER_OPTIONS },
    async run(deps, v, _p, actor, io) {
      const format = str(v, 'format');
      if (format === undefined) {
        // The paged JSON form (one object, --json): kept for scripts that page with --after-seq.
        if (Object.keys(AUDIT_FILTER_OPTIONS).some((name) => v[name] !== undefined) || v.out !== undefined) {
          throw new UsageError('filters and --out go with --format jsonl|csv');
        }
        const since = str(v, 'since');
        const date = since === undefined ? undefined : new Date(since);
        if (date && Number.isNaN(date.getTime())) throw new UsageError('--since must be an ISO date');
        const after = str(v, 'after-seq');
        if (after !== undefined && !(/^\d{1,19}$/.test(after) && BigInt(after) <= MAX_SEQ)) throw new UsageError('--after-seq must be an event sequence number');
        // Audited before anything is read, in both forms: no copy leaves untraced.
        await recordAuditExport(deps, actor, 'json', { since: date, afterSeq: after });
        return exportAuditEvents(deps.prisma, { since: date, afterSeq: after === undefined ? undefined : BigInt(after) });
      }
      if (format !== 'jsonl' && format !== 'csv') throw new UsageError('--format must be jsonl or csv');
      if (v.json) throw new UsageError('--format writes JSON Lines or CSV, not one JSON object: leave out --json');
      if (v['after-seq'] !== undefined) throw new UsageError('--after-seq goes with the paged JSON form, not --format');
      const parsed = auditFilterSchema.safeParse({
        actor: str(v, 'actor'),
        actorType: str(v, 'actor-type'),
        type: str(v, 'type'),
        subjectType: str(v, 'subject-type'),
        subjectId: str(v, 'subject-id'),
        outcome: str(v, 'outcome'),
        from: str(v, 'from') ?? str(v, 'since'),
        to: str(v, 'to'),
      });
      if (!parsed.success) {
        const flag = (field: string) => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
        throw new UsageError(parsed.error.issues.map((issue) => (issue.path[0] === 'to' && issue.message.startsWith('--') ? issue.message : `${flag(String(issue.path[0]))}: ${issue.message.charAt(0).toLowerCase()}${issue.message.slice(1)}`)).join('; '));
      }
      await recordAuditExport(deps, actor, format, parsed.data);
      await writeChunks(io, exportAuditLines(streamAuditEvents(deps, parsed.data), format), str(v, 'out'));
      return null;
    },
  },
  migrate: {
    usage: 'migrate',
    async run(deps) {
      // Opening the database applied any pending migration; report what is recorded.
      const rows = await deps.db.query(
        'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name',
      );
      return { status: 'up to date', migrations: (rows as { migration_name: string }[]).map((row) => row.migration_name) };
    },
  },
};

const HELP = `usage: latchkey <command> [--json]\n\ncommands:\n  serve\n${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}`)
  .join('\n')}\n`;

function print(io: CliIo, result: object, asJson: boolean) {
  if (asJson) return io.stdout(`${JSON.stringify(result)}\n`);
  for (const [key, value] of Object.entries(result)) {
    io.stdout(`${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}\n`);
  }
}

/**
 * What the services' input fields are called on the command line, and what they must be: a
 * validation error speaks in flags (`--expires-in must be …`), never in internal field names.
 * Keyed by field, or by `command field` where a command names it differently.
 */
const FIELDS: Record<string, [flag: string, expected: string]> = {
  'scope create name': ['NAME', 'a scope name: 1 to 128 of A-Z a-z 0-9 : . _ / -'],
  'api create name': ['NAME', '1 to 100 characters'],
  'api create description': ['--description', 'at most 500 characters'],
  'api update description': ['--description', 'at most 500 characters'],
  audience: ['--audience', 'an http(s) URL'],
  name: ['--name', '1 to 100 characters'],
  description: ['--description', '1 to 500 characters'],
  scopes: ['--scopes', 'one or more scope names (1 to 128 of A-Z a-z 0-9 : . _ / -)'],
  audiences: ['--audience', 'an http(s) URL'],
  ownerEmail: ['--owner', 'an email address'],
  email: ['--email', 'an email address'],
  password: ['--password', '12 to 1024 characters'],
  expiresInMs: ['--expires-in', 'a positive duration such as 30d'],
  authMethod: ['--auth-method', 'one of client_secret_basic, client_secret_post, private_key_jwt'],
  jwks: ['--jwks', 'a JWK set such as {"keys":[…]}'],
  jwksUri: ['--jwks-uri', 'an https URL'],
  'plan create name': ['NAME', 'a plan name: 1 to 64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)'],
  plan: ['--plan', 'a plan name'],
};

function describeIssues(command: string, issues: core.$ZodIssue[]): string {
  const lines = issues.map((issue) => {
    const field = issue.path[0];
    const known = field === undefined ? undefined : (FIELDS[`${command} ${String(field)}`] ?? FIELDS[String(field)]);
    // Issues without a field (cross-field rules) are already written in flags.
    return known ? `${known[0]} must be ${known[1]}` : issue.message;
  });
  return [...new Set(lines)].join('; ');
}

/** node:util parseArgs's errors, in the CLI's words. */
function describeParseError(error: unknown, usage: string): string {
  const { code, message } = error as { code?: string; message: string };
  const option = /'(-[^' ]*)/.exec(message)?.[1];
  let text = message.split('\n')[0]!;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) text = `unknown option ${option}`;
  else if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    text = message.includes('does not take an argument') ? `${option} takes no value` : `${option} needs a value`;
  }
  return `${text} (usage: latchkey ${usage})`;
}

function describe(error: unknown, command: string, databaseUrl: string | undefined): string {
  if (error instanceof UsageError || error instanceof ConfigError) return error.message;
  if (error instanceof ZodError) return describeIssues(command, error.issues);
  return describeFailure(error, databaseUrl);
}

/** Runs one command; returns the exit code. Errors are one line on stderr. */
export async function main(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  const nameLength = argv[0] && COMMANDS[`${argv[0]} ${argv[1]}`] ? 2 : 1;
  const name = argv.slice(0, nameLength).join(' ');
  if (name === 'serve') {
    const { serve } = await import('../serve.ts');
    await serve({ commands: main });
    return 0;
  }
  if (!name || name === 'help' || name === '--help') {
    io.stdout(HELP);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr(`latchkey: unknown command "${name}" (see latchkey help)\n`);
    return 2;
  }
  let deps = io.deps;
  let databaseUrl = deps?.config.DATABASE_URL;
  try {
    const { values, positionals } = (() => {
      try {
        return parseArgs({ args: argv.slice(nameLength), options: { json: { type: 'boolean' }, ...command.options }, allowPositionals: true, strict: true });
      } catch (error) {
        throw new UsageError(describeParseError(error, command.usage));
      }
    })();
    if (positionals.length !== (command.positionals ?? 0)) throw new UsageError(`usage: latchkey ${command.usage}`);
    if (!deps) {
      const config = loadConfig(io.env);
      databaseUrl = config.DATABASE_URL;
      if (!config.DATABASE_URL) {
        const reply = await forwardToServer(config.LATCHKEY_DATA_DIR, absoluteFileOptions(argv));
        if (reply) {
          io.stdout(reply.stdout);
          io.stderr(reply.stderr);
          return reply.code;
        }
      }
      try {
        // Only migrate may create the embedded database: run from the wrong folder, any
        // other command would quietly start an empty one there.
        deps = await openDeps(config, createLogger({ LOG_LEVEL: 'warn' }, process.stderr as never), { create: name === 'migrate', holder: name });
      } catch (error) {
        if (!(error instanceof DataDirInUse)) throw error;
        // Held by a process that did not answer on the socket: never open its database.
        const dir = path.resolve(config.LATCHKEY_DATA_DIR);
        throw new LatchkeyError(
          'conflict',
          error.holder.command === 'server'
            ? `${describeHolder(error.holder)} holds ${dir} but does not answer on ${controlSocketPath(dir)}: if it is still starting, try again in a moment; otherwise stop it`
            : `${describeHolder(error.holder)} is using ${dir}: try again when it has finished`,
        );
      }
    }
    const result = await command.run(deps, values as Values, positionals, { type: 'cli', id: io.env.USER ?? undefined }, io);
    await deps.audit.idle();
    if (result) print(io, result, Boolean(values.json));
    return 0;
  } catch (error) {
    io.stderr(`latchkey: ${describe(error, name, databaseUrl)}\n`);
    // Usage and validation errors exit 2; everything else (not found, conflicts, faults) 1.
    return error instanceof UsageError || error instanceof ZodError ? 2 : 1;
  } finally {
    if (deps && !io.deps) await closeDeps(deps);
  }
}
