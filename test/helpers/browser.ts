import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Where screenshots go; ignored by git. */
export const ARTIFACTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

// DESIGN §5: without the networking flags Chromium keeps calling Google's hosts and floods the
// closed network with refused connections.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's Chromium (installed by .ci/run), headless. Close it in an `after` hook. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}

/** What went wrong in a page while a test drove it. */
export interface PageProblems {
  /** Console messages of type `error`; Chromium reports CSP violations here ("… violates the following Content Security Policy directive …"). */
  consoleErrors: string[];
  /** Uncaught exceptions thrown by page scripts. */
  pageErrors: string[];
  /** Requests that got no response at all (blocked, refused, aborted): "METHOD url: reason". */
  failedRequests: string[];
  /** Responses with status ≥ 400: "status METHOD url" (a test may expect some, e.g. a 404 page). */
  errorResponses: string[];
}

export interface TestPage {
  context: BrowserContext;
  page: Page;
  problems: PageProblems;
  /** Closes the context (and its page). */
  close(): Promise<void>;
}

/**
 * A fresh context (own cookies) with one page: `baseURL` set so tests can `goto('/portal')`,
 * 1280×900, and the page's real CSP in force (no `bypassCSP`: the tests prove the CSP lets the
 * pages work; axe is evaluated over the DevTools protocol, which CSP does not govern).
 */
export async function newPage(browser: Browser, baseUrl: string): Promise<TestPage> {
  const context = await browser.newContext({ baseURL: baseUrl, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: PageProblems = { consoleErrors: [], pageErrors: [], failedRequests: [], errorResponses: [] };
  page.on('console', (message) => {
    // Chromium asks for /favicon.ico by itself and logs its 404; no page asked for it.
    if (message.type() !== 'error' || message.location().url.endsWith('/favicon.ico')) return;
    problems.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => problems.pageErrors.push(error.message));
  page.on('requestfailed', (request) => {
    problems.failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText ?? 'failed'}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      problems.errorResponses.push(`${response.status()} ${response.request().method()} ${response.url()}`);
    }
  });
  return { context, page, problems, close: () => context.close() };
}

const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'];
const TARGETS_SHOWN = 3;

interface AxeNode {
  target: unknown[];
}
interface AxeRule {
  id: string;
  impact?: 'minor' | 'moderate' | 'serious' | 'critical' | null;
  help: string;
  helpUrl: string;
  nodes: AxeNode[];
}
/** The parts of axe-core's result the tests use (see axe-core's `AxeResults`). */
export interface AxeResults {
  violations: AxeRule[];
  incomplete: AxeRule[];
  passes: AxeRule[];
  url: string;
}

let axeSource: Promise<string> | undefined;
function loadAxe(): Promise<string> {
  const require = createRequire(import.meta.url);
  axeSource ??= readFile(join(dirname(require.resolve('axe-core')), 'axe.min.js'), 'utf8');
  return axeSource;
}

/**
 * Runs axe-core (WCAG 2.2 A/AA and best practices) on the page as it is now, and throws one
 * Error listing every serious or critical violation, named by `label`. Returns the full result so
 * a test may log the minor ones.
 */
export async function checkAccessibility(page: Page, label: string): Promise<AxeResults> {
  // page.evaluate goes through CDP Runtime.evaluate, which the page's `script-src 'self'` does
  // not block, unlike addScriptTag's inline <script>; so the CSP under test stays untouched.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(await loadAxe());
  const results = await page.evaluate(
    (tags) => (window as unknown as { axe: { run(c: Document, o: object): Promise<unknown> } }).axe.run(document, {
      runOnly: { type: 'tag', values: tags },
    }),
    AXE_TAGS,
  ) as AxeResults;
  const blocking = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (blocking.length > 0) {
    const lines = blocking.map((v) => {
      const targets = v.nodes.slice(0, TARGETS_SHOWN).map((n) => n.target.map(String).join(' ')).join(', ');
      const more = v.nodes.length > TARGETS_SHOWN ? ` (+${v.nodes.length - TARGETS_SHOWN} more)` : '';
      return `  - ${v.id} [${v.impact}] ${v.help}: ${targets}${more}`;
    });
    throw new Error(`accessibility violations on ${label} (${results.url}):\n${lines.join('\n')}`);
  }
  return results;
}

/** Full-page PNG at test/artifacts/<name>.png; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name.replace(/[^\w.-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
