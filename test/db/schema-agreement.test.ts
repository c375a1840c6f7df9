import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openDatabase, type Database, type SqlSession } from '../../src/db/database.ts';
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { loadDatamodel, type Datamodel, type DmmfField, type DmmfModel } from '../helpers/dmmf.ts';

let database: TestDatabase;
let db: Database;
let datamodel: Datamodel;
let firstRun: { applied: string[] };

before(async () => {
  database = await testDatabase();
  [db, datamodel] = await Promise.all([openDatabase({ databaseUrl: database.url, dataDir: database.dataDir }), loadDatamodel()]);
  firstRun = await migrate(db);
});

after(async () => {
  await db?.close();
  await database?.drop();
});

const query = <T>(sql: string, params: unknown[] = []) => db.withSession((session: SqlSession) => session.query<T>(sql, params));

const tableOf = (model: DmmfModel) => model.dbName ?? model.name;
const columnOf = (field: DmmfField) => field.dbName ?? field.name;
const scalars = (model: DmmfModel) => model.fields.filter((f) => f.kind === 'scalar' || f.kind === 'enum');
const modelByName = (name: string) => datamodel.models.find((m) => m.name === name)!;
const columnsOf = (model: DmmfModel, fieldNames: string[]) => fieldNames.map((name) => columnOf(model.fields.find((f) => f.name === name)!));

/** The Postgres type Prisma's migrations give a field: [udt_name, datetime precision]. */
function expectedType(field: DmmfField): { udt: string; precision?: number } {
  const [native, args = []] = field.nativeType ?? [];
  const base = (() => {
    switch (field.type) {
      case 'String':
        return native === 'Uuid' ? 'uuid' : native === 'VarChar' ? 'varchar' : 'text';
      case 'Int':
        return 'int4';
      case 'BigInt':
        return 'int8';
      case 'Boolean':
        return 'bool';
      case 'Float':
        return 'float8';
      case 'Decimal':
        return 'numeric';
      case 'Json':
        return native === 'Json' ? 'json' : 'jsonb';
      case 'Bytes':
        return 'bytea';
      case 'DateTime':
        return native === 'Timestamptz' ? 'timestamptz' : native === 'Date' ? 'date' : 'timestamp';
      default:
        throw new Error(`no mapping for Prisma type ${field.type}`);
    }
  })();
  // A `date` column has no fractional seconds.
  const precision = field.type === 'DateTime' ? (native === 'Date' ? 0 : Number(args[0] ?? 3)) : undefined;
  return { udt: field.isList ? `_${base}` : base, precision };
}

interface ColumnRow {
  table_name: string;
  column_name: string;
  udt_name: string;
  is_nullable: 'YES' | 'NO';
  column_default: string | null;
  datetime_precision: number | null;
}

interface IndexRow {
  table: string;
  name: string;
  unique: boolean;
  primary: boolean;
  columns: string[];
}

interface ForeignKeyRow {
  name: string;
  table: string;
  ref: string;
  on_delete: string;
  on_update: string;
  columns: string[];
  ref_columns: string[];
}

const ACTION: Record<string, string> = { a: 'NoAction', r: 'Restrict', c: 'Cascade', n: 'SetNull', d: 'SetDefault' };

const userTables = async () =>
  (await query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations'`,
  )).map((row) => row.table_name);

describe('schema.prisma and prisma/migrations agree', () => {
  test('the DMMF was read', () => {
    assert.ok(datamodel.models.length >= 10, `${datamodel.models.length} models`);
    assert.ok(firstRun.applied.length >= 1);
  });

  test('every model is a table, and there are no other tables', async () => {
    assert.deepEqual((await userTables()).sort(), datamodel.models.map(tableOf).sort());
  });

  test('every scalar field is a column with its type, nullability and default; no extra columns', async () => {
    const rows = await query<ColumnRow>(
      `SELECT table_name, column_name, udt_name, is_nullable, column_default, datetime_precision
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`,
    );
    const problems: string[] = [];
    for (const model of datamodel.models) {
      const table = tableOf(model);
      const columns = rows.filter((row) => row.table_name === table);
      const expectedColumns = scalars(model).map(columnOf).sort();
      const extra = columns.map((c) => c.column_name).filter((c) => !expectedColumns.includes(c));
      if (extra.length) problems.push(`${table}: columns not in schema.prisma: ${extra.join(', ')}`);

      for (const field of scalars(model)) {
        const where = `${table}.${columnOf(field)} (${model.name}.${field.name})`;
        const column = columns.find((c) => c.column_name === columnOf(field));
        if (!column) {
          problems.push(`${where}: missing column`);
          continue;
        }
        const type = expectedType(field);
        if (column.udt_name !== type.udt) problems.push(`${where}: type ${column.udt_name}, schema says ${type.udt}`);
        if (type.precision !== undefined && !field.isList && Number(column.datetime_precision) !== type.precision) {
          problems.push(`${where}: precision ${column.datetime_precision}, schema says ${type.precision}`);
        }
        // Prisma creates list columns nullable whatever the schema says; scalars must match.
        if (!field.isList && (column.is_nullable === 'NO') !== field.isRequired) {
          problems.push(`${where}: ${column.is_nullable === 'NO' ? 'NOT NULL' : 'nullable'}, schema says ${field.isRequired ? 'required' : 'optional'}`);
        }
        problems.push(...defaultProblems(where, field, column.column_default));
      }
    }
    assert.deepEqual(problems, []);
  });

  test('primary keys, @@index and @unique/@@unique exist as indexes with the same columns; no others', async () => {
    const rows = await query<IndexRow>(
      `SELECT t.relname::text AS "table", i.relname::text AS name, ix.indisunique AS "unique", ix.indisprimary AS "primary",
              array_agg(a.attname::text ORDER BY k.ord) AS columns
         FROM pg_index ix
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE n.nspname = 'public' AND t.relname <> '_prisma_migrations'
        GROUP BY 1, 2, 3, 4`,
    );
    const actual = rows.map((row) => ({ table: row.table, name: row.name, unique: row.unique, primary: row.primary, columns: row.columns })).sort(byName);
    const expected = datamodel.indexes
      .filter((index) => index.type !== 'fulltext')
      .map((index) => {
        const model = modelByName(index.model);
        const table = tableOf(model);
        const columns = columnsOf(model, index.fields.map((f) => f.name));
        // Prisma's default names: <table>_pkey, <table>_<columns>_key, <table>_<columns>_idx.
        const suffix = index.type === 'id' ? null : index.type === 'unique' ? 'key' : 'idx';
        const name = index.dbName ?? (suffix ? `${table}_${columns.join('_')}_${suffix}` : `${table}_pkey`);
        return { table, name, unique: index.type !== 'normal', primary: index.type === 'id', columns };
      })
      .sort(byName);
    assert.deepEqual(actual, expected);
  });

  test('relations are foreign keys with the same columns and referential actions; no others', async () => {
    const rows = await query<ForeignKeyRow>(
      `SELECT c.conname::text AS name, t.relname::text AS "table", r.relname::text AS ref,
              c.confdeltype::text AS on_delete, c.confupdtype::text AS on_update,
              (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS columns,
              (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum) AS ref_columns
         FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid
         JOIN pg_class r ON r.oid = c.confrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE c.contype = 'f' AND n.nspname = 'public'`,
    );
    const actual = rows
      .map((row) => ({ ...row, on_delete: ACTION[row.on_delete] ?? row.on_delete, on_update: ACTION[row.on_update] ?? row.on_update }))
      .sort(byName);
    const expected = datamodel.models
      .flatMap((model) =>
        model.fields
          .filter((field) => field.kind === 'object' && (field.relationFromFields?.length ?? 0) > 0)
          .map((field) => {
            const target = modelByName(field.type);
            const columns = columnsOf(model, field.relationFromFields!);
            return {
              name: `${tableOf(model)}_${columns.join('_')}_fkey`,
              table: tableOf(model),
              ref: tableOf(target),
              // Prisma's defaults: Restrict for a required relation, SetNull for an optional one; updates cascade.
              on_delete: field.relationOnDelete ?? (field.isRequired ? 'Restrict' : 'SetNull'),
              on_update: field.relationOnUpdate ?? 'Cascade',
              columns,
              ref_columns: columnsOf(target, field.relationToFields!),
            };
          }),
      )
      .sort(byName);
    assert.deepEqual(actual, expected);
  });
});

function byName(a: { name: string }, b: { name: string }) {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** A database default exactly where Prisma puts one (client-side defaults such as uuid() have none). */
function defaultProblems(where: string, field: DmmfField, actual: string | null): string[] {
  const value = field.default;
  if (!field.hasDefaultValue || value === undefined) {
    return actual === null ? [] : [`${where}: database default ${actual}, schema has none`];
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const expected: Record<string, RegExp | null> = {
      now: /^(CURRENT_TIMESTAMP|now\(\))/i,
      autoincrement: /^nextval\(/,
      dbgenerated: /./,
      uuid: null,
      cuid: null,
      ulid: null,
      nanoid: null,
    };
    const pattern = expected[value.name];
    if (pattern === undefined) return [`${where}: unexpected default function ${value.name}()`];
    if (pattern === null) return actual === null ? [] : [`${where}: database default ${actual} for client-side ${value.name}()`];
    return actual !== null && pattern.test(actual) ? [] : [`${where}: database default ${actual}, schema says ${value.name}()`];
  }
  if (actual === null) return [`${where}: no database default, schema says ${JSON.stringify(value)}`];
  // Literals: 'developer'::text, false, 0, '{}'::jsonb.
  const literal = actual.replace(/::[a-z ]+(\[\])?$/i, '').replace(/^'(.*)'$/s, '$1');
  return literal === String(value) ? [] : [`${where}: database default ${actual}, schema says ${JSON.stringify(value)}`];
}

describe('migrate()', () => {
  const names = async () => (await readdir(MIGRATIONS_DIR, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();

  test('records every migration the way prisma migrate deploy does, with its sha256 checksum', async () => {
    const rows = await query<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null; applied_steps_count: number; id: string }>(
      'SELECT id, migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name',
    );
    const all = await names();
    assert.deepEqual(firstRun.applied, all);
    assert.deepEqual(rows.map((r) => r.migration_name), all);
    for (const row of rows) {
      const sql = await readFile(path.join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'));
      assert.equal(row.checksum, createHash('sha256').update(sql).digest('hex'), row.migration_name);
      assert.match(row.id, /^[0-9a-f-]{36}$/);
      assert.ok(row.finished_at, 'finished_at');
      assert.equal(row.rolled_back_at, null);
      assert.equal(Number(row.applied_steps_count), 1);
    }
  });

  test('is idempotent', async () => {
    const before = await query<{ n: number }>('SELECT count(*)::int AS n FROM "_prisma_migrations"');
    assert.deepEqual(await migrate(db), { applied: [], pending: 0 });
    assert.deepEqual(await Promise.all([migrate(db), migrate(db)]), [{ applied: [], pending: 0 }, { applied: [], pending: 0 }]);
    assert.deepEqual(await query('SELECT count(*)::int AS n FROM "_prisma_migrations"'), before);
  });

  test('the audit log is append-only at the database', async () => {
    await db.prisma.$executeRaw`INSERT INTO audit_event (type, actor_type, prev_hash, hash) VALUES ('test', 'system', 'x', 'y')`;
    await assert.rejects(db.prisma.$executeRaw`UPDATE audit_event SET type = 'edited'`, /append-only/);
    await assert.rejects(db.prisma.$executeRaw`DELETE FROM audit_event`, /append-only/);
  });

  test('applies a new migration, refuses an edited one, and rolls back a failing one', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-migrations-'));
    try {
      await cp(MIGRATIONS_DIR, dir, { recursive: true });
      const added = '29990101000000_test_added';
      await mkdir(path.join(dir, added));
      await writeFile(path.join(dir, added, 'migration.sql'), 'CREATE TABLE "test_added" ("id" INTEGER PRIMARY KEY);\n');
      assert.deepEqual(await migrate(db, dir), { applied: [added], pending: 0 });
      assert.ok((await userTables()).includes('test_added'));

      const failing = '29990102000000_test_failing';
      await mkdir(path.join(dir, failing));
      await writeFile(path.join(dir, failing, 'migration.sql'), 'CREATE TABLE "test_partial" ("id" INTEGER);\nSELECT no_such_function();\n');
      await assert.rejects(migrate(db, dir), new RegExp(`migration ${failing} failed`));
      assert.ok(!(await userTables()).includes('test_partial'), 'the failed migration left nothing behind');
      const recorded = await query<{ migration_name: string }>('SELECT migration_name FROM "_prisma_migrations" WHERE migration_name = $1', [failing]);
      assert.deepEqual(recorded, []);
      await rm(path.join(dir, failing), { recursive: true });

      await writeFile(path.join(dir, added, 'migration.sql'), 'CREATE TABLE "test_added" ("id" BIGINT PRIMARY KEY);\n');
      await assert.rejects(migrate(db, dir), new RegExp(`migration ${added} was changed after it was applied`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
