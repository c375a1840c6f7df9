-- Admin search (issue 8 §1.2): ids, names and emails are matched by prefix, case-insensitively,
-- through these indexes, so a search is a few short index range scans however many keys,
-- applications, people and teams there are (src/admin/search.ts). They index lower(...) under
-- the "C" collation, so that LIKE 'prefix%' and ORDER BY read them in byte order under any
-- database collation. Prisma's schema language cannot declare expression indexes: schema.prisma
-- names them in a comment, and the schema-agreement test (which checks column indexes) leaves
-- expression indexes alone.

CREATE INDEX "api_key_search_id_idx" ON "api_key" ((lower("id") COLLATE "C"));
CREATE INDEX "api_key_search_name_idx" ON "api_key" ((lower("name") COLLATE "C"));
CREATE INDEX "oauth_client_search_id_idx" ON "oauth_client" ((lower("id") COLLATE "C"));
CREATE INDEX "oauth_client_search_name_idx" ON "oauth_client" ((lower("name") COLLATE "C"));
CREATE INDEX "account_search_email_idx" ON "account" ((lower("email") COLLATE "C"));
-- "@example.com" finds everyone at a domain.
CREATE INDEX "account_search_domain_idx" ON "account" ((lower(split_part("email", '@', 2)) COLLATE "C"));
CREATE INDEX "team_search_name_idx" ON "team" ((lower("name") COLLATE "C"));
