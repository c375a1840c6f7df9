const UNITS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses the CLI/env duration form `90s`, `15m`, `24h`, `30d` into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,9})([smhd])$/.exec(text.trim());
  if (!match) throw new RangeError(`invalid duration "${text}" (expected e.g. 90s, 15m, 24h, 30d)`);
  return Number(match[1]) * UNITS[match[2] as keyof typeof UNITS];
}
