import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { LatchkeyError } from '../lib/errors.ts';
import { projectRoot } from '../lib/project-root.ts';
import type { Database } from './database.ts';

export const MIGRATIONS_DIR = `${path.join(projectRoot(), 'prisma', 'migrations')}/`;

// Same table and checksum as `prisma migrate deploy`, so the two agree on what is applied.
const BOOKKEEPING = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

// Any constant works; it only has to be the same on every node.
const MIGRATION_LOCK = 72_707_369;

export interface MigrationResult {
  applied: string[];
  pending: number;
}

/** Applies prisma/migrations/* in order, each in its own transaction, once across all nodes. */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return db.withSession(async (session) => {
    await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      // Only when missing: a least-privilege role may read the table but not create in the schema.
      const [{ exists }] = await session.query<{ exists: boolean }>(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS exists`);
      if (!exists) await session.exec(BOOKKEEPING).catch((error) => Promise.reject(ownerNeeded(error, 'the migration table') ?? error));
      const done = new Map(
        (await session.query<{ migration_name: string; checksum: string }>(
          'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
        )).map((row) => [row.migration_name, row.checksum]),
      );
      const applied: string[] = [];
      for (const name of names) {
        const sql = await readFile(path.join(dir, name, 'migration.sql'), 'utf8');
        const checksum = createHash('sha256').update(sql).digest('hex');
        const recorded = done.get(name);
        if (recorded) {
          if (recorded !== checksum) throw new Error(`migration ${name} was changed after it was applied`);
          continue;
        }
        await session.exec('BEGIN');
        try {
          await session.exec(sql);
          await session.query(
            `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
             VALUES ($1, $2, $3, now(), 1)`,
            [randomUUID(), checksum, name],
          );
          await session.exec('COMMIT');
        } catch (error) {
          await session.exec('ROLLBACK');
          throw ownerNeeded(error, `migration ${name}`) ?? new Error(`migration ${name} failed: ${(error as Error).message}`);
        }
        applied.push(name);
      }
      return { applied, pending: 0 };
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  });
}

/** Raised when the connected role may not change the schema (the least-privilege app role). */
export class MigrationNeedsOwner extends LatchkeyError {
  constructor(description: string) {
    super('conflict', description);
  }
}

// SQLSTATE 42501 (insufficient_privilege): also what "must be owner of table" is.
function ownerNeeded(error: unknown, what: string): MigrationNeedsOwner | undefined {
  if ((error as { code?: string }).code !== '42501') return undefined;
  return new MigrationNeedsOwner(
    `${what} is not applied and this database role may not change the schema: run "latchkey migrate" with DATABASE_MIGRATION_URL set to the schema owner's URL (docs/database-roles.md)`,
  );
}
