/** "2026-12-01 14:03 UTC": how pages and mails write an instant (STYLE.md, Pages). */
export function utcText(at: Date | string): string {
  const date = typeof at === 'string' ? new Date(at) : at;
  return Number.isNaN(date.getTime()) ? String(at) : `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
