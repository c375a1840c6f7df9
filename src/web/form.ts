import type { Context } from 'koa';
import { z, type ZodType } from 'zod';
import { PayloadTooLarge } from '../lib/errors.ts';

const MAX_FORM_BYTES = 64 * 1024;

export type FormData = Record<string, string | string[]>;

/** An application/x-www-form-urlencoded body; repeated fields (checkboxes) become arrays. */
export async function readPageForm(ctx: Context): Promise<FormData> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(ctx.get('content-type'))) return {};
  const announced = Number(ctx.get('content-length') || 0);
  if (announced > MAX_FORM_BYTES) throw new PayloadTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new PayloadTooLarge();
    chunks.push(chunk);
  }
  const form: FormData = {};
  for (const [name, value] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
    const existing = form[name];
    form[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return form;
}

/** One field's values as a list (a checkbox group sends none, one or several). */
export const listOf = (value: string | string[] | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** A single text field (a repeated one keeps its first value). */
export const textOf = (value: string | string[] | undefined): string => (Array.isArray(value) ? (value[0] ?? '') : (value ?? ''));

export type FieldErrors = Record<string, string>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; errors: FieldErrors };

/**
 * Validates a form with the same kind of schema a JSON route would use; each problem becomes
 * a message beside its field (the first one per field), never a 500.
 */
export function parseForm<S extends ZodType>(schema: S, input: unknown): Parsed<z.output<S>> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  const errors: FieldErrors = {};
  for (const issue of result.error.issues) {
    const field = String(issue.path[0] ?? '_form');
    errors[field] ??= issue.message;
  }
  return { ok: false, errors };
}
