import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';

/** views/ sits beside src/ (tsx) or beside dist/ (compiled): found by walking up to package.json. */
export function viewsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the project root (package.json) above src/web');
    dir = parent;
  }
  return path.join(dir, 'views');
}

const TYPES: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8' };

/** The stylesheet and the one enhancement script, read once at start; no directory is served. */
export function assetRoutes(): Router {
  const router = new Router({ prefix: '/assets' });
  const dir = path.join(viewsDir(), 'assets');
  for (const name of ['style.css', 'app.js']) {
    const body = readFileSync(path.join(dir, name));
    const type = TYPES[name.split('.').pop()!]!;
    router.get(`/${name}`, (ctx) => {
      ctx.type = type;
      ctx.set('Cache-Control', 'public, max-age=300');
      ctx.body = body;
    });
  }
  return router;
}
