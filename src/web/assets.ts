import { readFileSync } from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import { projectRoot } from '../lib/project-root.ts';

const TYPES: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8' };

/** The stylesheet and the one enhancement script, read once at start; no directory is served. */
export function assetRoutes(): Router {
  const router = new Router({ prefix: '/assets' });
  const dir = path.join(projectRoot(), 'views', 'assets');
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
