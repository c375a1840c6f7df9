import type { Database } from './database.ts';

/**
 * A page of one tab of a two-tab list, with both tabs' counts, in one round trip below Prisma.
 * The statement selects `first_tab_count`, `second_tab_count` and the page's rows through a
 * LEFT JOIN LATERAL, asking for one row more than the page holds (so an empty page still
 * brings its counts, with a null id, and a full one tells whether another follows).
 */
export async function tabbedPage<Row extends { id: string | null }, Item>(
  db: Pick<Database, 'query'>,
  statement: { name: string; text: string; values: unknown[] },
  pageSize: number,
  toItem: (row: Row & { id: string }) => Item,
): Promise<{ items: Item[]; counts: [number, number]; hasNext: boolean }> {
  const rows = (await db.query(statement)) as (Row & { first_tab_count: number; second_tab_count: number })[];
  const found = rows.filter((row): row is typeof row & { id: string } => row.id !== null);
  return {
    items: found.slice(0, pageSize).map(toItem),
    counts: [rows[0]?.first_tab_count ?? 0, rows[0]?.second_tab_count ?? 0],
    hasNext: found.length > pageSize,
  };
}
