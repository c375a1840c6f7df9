import { defineConfig } from 'prisma/config';

// Prisma 7 reads no .env by itself; the URL only matters to Prisma CLI commands
// that connect (Latchkey applies migrations itself: src/db/migrate.ts).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost/latchkey' },
});
