import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { checkAccessibility, launchBrowser, newPage, screenshot } from '../helpers/browser.ts';

// The pages' CSP (DESIGN §4): the harness must work with it in force, not around it.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const layout = (title: string, body: string): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<link rel="stylesheet" href="/style.css"></head>
<body><main>${body}</main></body></html>`;

const PAGES: Record<string, string> = {
  '/': layout('Sign in', `<h1>Sign in to Latchkey</h1>
<form method="post" action="/sign-in">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autocomplete="email" required>
  <button type="submit">Sign in</button>
</form>`),
  '/inaccessible': `<!doctype html><html><head><title>Bad</title></head><body>
<input type="text" name="q"><img src="/pixel.png"></body></html>`,
  '/inline-script': layout('Inline', `<h1>Inline</h1><script>document.title = 'ran'</script>`),
};
const CSS = 'body { font-family: sans-serif; margin: 2rem; } h1 { color: #123; } label { display: block; }';
// A 1×1 transparent PNG.
const PIXEL = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');

describe('browser test harness', () => {
  let server: Server;
  let baseUrl: string;
  let browser: Browser | undefined;
  const posts: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      if (req.method === 'POST' && req.url === '/sign-in') {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (chunk: string) => (body += chunk));
        req.on('end', () => {
          posts.push(body);
          res.writeHead(303, { location: '/' }).end();
        });
        return;
      }
      const path = req.url ?? '/';
      if (path === '/style.css') return void res.writeHead(200, { 'content-type': 'text/css' }).end(CSS);
      if (path === '/pixel.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(PIXEL);
      const html = PAGES[path];
      if (!html) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP }).end(html);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('passes an accessible page served under the strict CSP, without CSP errors', async () => {
    const { page, problems, close } = await newPage(browser!, baseUrl);
    try {
      const response = await page.goto('/');
      assert.equal(response?.headers()['content-security-policy'], CSP);
      const results = await checkAccessibility(page, 'sign-in form');
      assert.ok(results.passes.length > 0, 'axe ran its rules');
      assert.ok(results.passes.some((rule) => rule.id === 'label'), 'the label rule was checked');
      assert.deepEqual(problems.consoleErrors, []);
      assert.deepEqual(problems.pageErrors, []);
      assert.deepEqual(problems.failedRequests, []);
    } finally {
      await close();
    }
  });

  it('throws naming the serious violations of an inaccessible page', async () => {
    const { page, close } = await newPage(browser!, baseUrl);
    try {
      await page.goto('/inaccessible');
      await assert.rejects(checkAccessibility(page, 'inaccessible page'), (error: Error) => {
        assert.match(error.message, /accessibility violations on inaccessible page/);
        assert.match(error.message, /- label \[critical\]/);
        assert.match(error.message, /- image-alt \[critical\]/);
        assert.match(error.message, /input\[name="q"\]|input/);
        return true;
      });
    } finally {
      await close();
    }
  });

  it('records a CSP violation as a console error', async () => {
    const { page, problems, close } = await newPage(browser!, baseUrl);
    try {
      await page.goto('/inline-script');
      assert.equal(await page.title(), 'Inline', 'the inline script was blocked');
      assert.ok(
        problems.consoleErrors.some((text) => /Content Security Policy/i.test(text)),
        `a CSP error in ${JSON.stringify(problems.consoleErrors)}`,
      );
    } finally {
      await close();
    }
  });

  it('fills a field by its label, clicks a button by its name, and the form posts', async () => {
    const { page, problems, close } = await newPage(browser!, baseUrl);
    try {
      await page.goto('/');
      await page.getByLabel('Email').fill('ada@example.com');
      await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/sign-in') && r.request().method() === 'POST'),
        page.getByRole('button', { name: 'Sign in' }).click(),
      ]);
      assert.deepEqual(posts, ['email=ada%40example.com']);
      await page.waitForURL(`${baseUrl}/`);
      assert.deepEqual(problems.consoleErrors, [], 'form-action self allows the post');
    } finally {
      await close();
    }
  });

  it('writes a full-page screenshot', async () => {
    const { page, close } = await newPage(browser!, baseUrl);
    try {
      await page.goto('/');
      const path = await screenshot(page, 'browser-harness-sign-in');
      assert.match(path, /test\/artifacts\/browser-harness-sign-in\.png$/);
      const { size } = await stat(path);
      assert.ok(size > 1000, `PNG of ${size} bytes`);
    } finally {
      await close();
    }
  });
});
