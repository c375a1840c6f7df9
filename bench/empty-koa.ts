// Baseline for the introspection benchmark: the cheapest koa handler there is.
//   PORT=... node --import tsx bench/empty-koa.ts
import Koa from 'koa';

const app = new Koa();
app.use((ctx) => {
  if (ctx.method === 'POST') ctx.body = { active: true };
});
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
