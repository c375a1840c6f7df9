import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The folder holding package.json, prisma/ and views/. Found by walking up rather than by a
 * fixed `../..`, because this file runs from src/lib (tsx) and from dist/src/lib (compiled).
 */
export function projectRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the project root (package.json) above src/lib');
    dir = parent;
  }
  return (root = dir);
}
