import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCHEMA_PATH = path.join(ROOT, 'prisma', 'schema.prisma');

export interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'object' | 'enum' | 'unsupported';
  isList: boolean;
  isRequired: boolean;
  isUnique: boolean;
  isId: boolean;
  isUpdatedAt: boolean;
  hasDefaultValue: boolean;
  default?: { name: string; args: unknown[] } | string | number | boolean | unknown[];
  type: string;
  nativeType?: [string, string[]] | null;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
  relationOnUpdate?: string;
}

export interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
  primaryKey: { name: string | null; fields: string[] } | null;
}

export interface DmmfIndex {
  model: string;
  type: 'id' | 'unique' | 'normal' | 'fulltext';
  name?: string;
  dbName?: string;
  fields: { name: string }[];
}

export interface Datamodel {
  models: DmmfModel[];
  enums: unknown[];
  indexes: DmmfIndex[];
}

/**
 * Prisma's own reading of prisma/schema.prisma (the DMMF), obtained the only offline way there
 * is: `prisma generate` with a generator that dumps what it is handed. The generated client
 * keeps just a reduced runtime data model (no nullability, defaults or indexes).
 */
export async function loadDatamodel(): Promise<Datamodel> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-dmmf-'));
  try {
    const out = path.join(dir, 'dmmf.json');
    const generator = fileURLToPath(new URL('./dmmf-generator.mjs', import.meta.url));
    const schema = (await readFile(SCHEMA_PATH, 'utf8')).replace(/^generator\s+\w+\s*\{[^}]*\}/gm, '');
    const dumper = `generator dmmf {\n  provider = ${JSON.stringify(`node ${generator}`)}\n  out      = ${JSON.stringify(out)}\n}\n`;
    await writeFile(path.join(dir, 'schema.prisma'), `${schema}\n${dumper}`);
    await promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules/prisma/build/index.js'), 'generate', '--schema', path.join(dir, 'schema.prisma')], {
      cwd: ROOT,
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      timeout: 60_000,
    });
    return (JSON.parse(await readFile(out, 'utf8')) as { datamodel: Datamodel }).datamodel;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
