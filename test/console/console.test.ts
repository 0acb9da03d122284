/**
 * The web console in a real browser (Debian's Chromium, headless, through
 * playwright-core) against a real node listening on 127.0.0.1: sign-in with
 * the keyboard, a job appearing and finishing live, the payload filter,
 * retrying a dead job, resetting a quarantined handler, a read-only key
 * (no buttons, forged actions refused), sign-out; axe-core on every screen in
 * both themes, a phone's viewport, timestamps in the viewer's zone. No page
 * may request another host or trip the Content-Security-Policy.
 * Screenshots go to test/console/screenshots/ (ignored by git).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { keyWith, listen } from '../api/support.js';
import { ADMIN_KEY, startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { consoleConfig, steer } from './handlers.js';
import { launchBrowser, openPage, screenshot, seriousViolations, signInWithKeyboard, type WatchedPage } from './browser.js';

let node: TestNode;
let base: string;
let browser: Browser;
let admin: WatchedPage;
const pages: WatchedPage[] = [];

const { gates } = steer;

beforeAll(async () => {
  // SQLite only: the console reads the public API, which is engine-blind; the API's own tests run on both.
  node = await startTestNode(consoleConfig, { engine: 'sqlite' });
  base = await listen(node);
  browser = await launchBrowser();
  admin = await open();
}, 90_000);

afterAll(async () => {
  for (const resolve of gates.values()) resolve();
  await browser?.close();
  await node?.close();
  for (const p of pages) {
    expect(p.outside, 'requests to other hosts').toEqual([]);
    expect(p.cspViolations, 'Content-Security-Policy violations').toEqual([]);
  }
});

async function open(options: Parameters<typeof openPage>[2] = {}): Promise<WatchedPage> {
  const watched = await openPage(browser, base, options);
  pages.push(watched);
  return watched;
}

async function enqueue(handler: string, payload: unknown = {}): Promise<string> {
  const res = await node.request('POST', '/v1/jobs', { handler, payload });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

const jobState = async (id: string) => (await node.request('GET', `/v1/jobs/${id}`)).body.state as string;

// A browser on a loaded 2-core machine: each test waits on conditions (bounded), never on time; the
// bounds are generous so a slow run is not a failure.
describe('the console, signed in with an admin key', { timeout: 120_000 }, () => {
  it('signs in with the keyboard; the key is exchanged for an HttpOnly cookie and kept nowhere in the browser', async () => {
    const { page, context } = admin;
    await signInWithKeyboard(page, ADMIN_KEY);
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: 'drover_session', httpOnly: true, sameSite: 'Strict', secure: false });
    expect(cookies[0]!.expires).toBeGreaterThan(Date.now() / 1000);
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    expect(stored).not.toContain(ADMIN_KEY);
    expect(await page.getByLabel('API key').count()).toBe(0);
    // Keyboard navigation: Tab reaches the sections, Enter opens one.
    await page.getByRole('link', { name: 'Jobs' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    await page.goto('/console/#/');
  });

  it('shows a job appear and finish live on the overview', async () => {
    const { page } = admin;
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.locator('.live-live').waitFor(); // the stream is connected
    const id = await enqueue('greet', { gate: 'live-1' });
    await page.locator(`.activity li[data-job="${id}"][data-state="running"]`).waitFor();
    await screenshot(page, 'overview-running');
    await waitFor(() => gates.has('live-1'), { message: 'the handler waiting on its gate' });
    gates.get('live-1')!();
    await page.locator(`.activity li[data-job="${id}"][data-state="succeeded"]`).waitFor();
    await page.getByText(/1 succeeded/).waitFor();
  });

  it('filters jobs by a payload field', async () => {
    const { page } = admin;
    const one = await enqueue('orders', { orderId: 'o-1', amount: 10 });
    await enqueue('orders', { orderId: 'o-2', amount: 20 });
    const again = await enqueue('orders', { orderId: 'o-1', amount: 30 });
    await page.goto('/console/#/jobs');
    await page.getByLabel('Payload field').fill('orderId = o-1');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/payload\.orderId=o-1/);
    const rows = page.locator('[data-testid="jobs-table"] tbody tr');
    await waitFor(async () => (await rows.count()) === 2, { timeoutMs: 15_000, message: 'two o-1 rows' });
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-job')))).toEqual([again, one]);
    await screenshot(page, 'jobs-payload-filter');
    // A filter that is not field = value is explained, not sent.
    await page.getByLabel('Payload field').fill('just words');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('Write the payload filter as field = value').waitFor();
  });

  it('shows an event with the jobs it fanned out to, linked from a job', async () => {
    const { page } = admin;
    const sent = await node.request('POST', '/v1/events', { name: 'order.created', id: 'evt-console-1', data: { orderId: 'o-50' } });
    expect(sent.status).toBe(202);
    const jobs = sent.body.jobs as Array<{ id: string }>;
    expect(jobs).toHaveLength(2);
    await page.goto(`/console/#/jobs/${jobs[0]!.id}`);
    await page.getByRole('link', { name: 'evt-console-1' }).click();
    await page.getByRole('heading', { name: 'Jobs it fanned out to' }).waitFor();
    for (const job of jobs) await page.getByRole('link', { name: `#${job.id}` }).waitFor();
    await page.locator('.badge.state-succeeded').nth(1).waitFor();
  });

  it('retries a dead job from its page', async () => {
    const { page } = admin;
    const id = await enqueue('flaky', { orderId: 'o-9' });
    await waitFor(async () => (await jobState(id)) === 'dead', { timeoutMs: 15_000, message: 'the job dead' });
    await page.goto(`/console/#/jobs/${id}`);
    await page.getByText('the card was declined').first().waitFor();
    await screenshot(page, 'job-dead');
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.locator('h1 .badge.state-succeeded').waitFor({ timeout: 20_000 });
    expect(await jobState(id)).toBe('succeeded');
    // The attempts table now holds both attempts.
    await waitFor(async () => (await page.locator('section[aria-labelledby="attempts-title"] tbody tr').count()) === 2, { message: 'two attempts shown' });
  });

  it('retries every dead job a filter matches, as one run on the node', async () => {
    const { page } = admin;
    const ids = [await enqueue('flaky', { batch: 'b-1' }), await enqueue('flaky', { batch: 'b-1' }), await enqueue('flaky', { batch: 'b-1' })];
    for (const id of ids) await waitFor(async () => (await jobState(id)) === 'dead', { timeoutMs: 15_000, message: `job ${id} dead` });
    await page.goto('/console/#/jobs?state=dead&payload.batch=b-1');
    await waitFor(async () => (await page.locator('[data-testid="jobs-table"] tbody tr').count()) === 3, { timeoutMs: 15_000, message: 'three dead rows' });
    await page.getByRole('button', { name: 'Retry all matching' }).click();
    await page.getByRole('button', { name: 'Yes, retry them' }).click();
    const progress = page.getByTestId('bulk-progress');
    await page.locator('[data-testid="bulk-progress"][data-state="done"]').waitFor();
    expect(await progress.textContent()).toContain('3 changed');
    for (const id of ids) await waitFor(async () => (await jobState(id)) === 'succeeded', { timeoutMs: 15_000, message: `job ${id} retried` });
    // The list (state=dead) empties as the stream reports the retried jobs.
    await waitFor(async () => (await page.locator('[data-testid="jobs-table"] tbody tr').count()) === 0, { timeoutMs: 15_000, message: 'no dead rows left' });
  });

  it('resets a quarantined handler', async () => {
    const { page } = admin;
    steer.fragileBroken = true;
    await enqueue('fragile');
    await enqueue('fragile');
    await waitFor(async () => ((await node.request('GET', '/v1/handlers')).body.handlers as Array<{ name: string; quarantined: boolean }>).find((h) => h.name === 'fragile')!.quarantined, {
      timeoutMs: 15_000,
      message: 'fragile quarantined',
    });
    await page.goto('/console/#/');
    await page.getByText('fragile is quarantined').waitFor();
    await page.goto('/console/#/handlers');
    const row = page.locator('tr[data-handler="fragile"]');
    await row.getByText('quarantined').waitFor();
    await screenshot(page, 'handlers-quarantined');
    steer.fragileBroken = false;
    await row.getByRole('button', { name: 'Reset' }).click();
    await row.getByText('recent failures').waitFor();
    expect(((await node.request('GET', '/v1/handlers')).body.handlers as Array<{ name: string; quarantined: boolean }>).find((h) => h.name === 'fragile')!.quarantined).toBe(false);
    const audit = (await node.request('GET', '/v1/audit?limit=5')).body.records as Array<{ action: string; target: string }>;
    expect(audit.some((r) => r.action === 'handler.reset' && r.target === 'handler:fragile')).toBe(true);
  });

  it('resumes an interrupt through the form generated from its schema; the node\'s schema check is shown when it refuses', async () => {
    const { page } = admin;
    const id = await enqueue('approve-refund', { orderId: 'o-77', amount: 120 });
    const waiting = await enqueue('approve-refund', { orderId: 'o-78', amount: 5 }); // left pending for the accessibility check
    await waitFor(async () => (await jobState(id)) === 'suspended' && (await jobState(waiting)) === 'suspended', { timeoutMs: 15_000, message: 'both jobs suspended' });
    await page.goto('/console/#/');
    await page.getByTestId('pending-interrupts').getByText('2').waitFor();
    await page.goto(`/console/#/jobs/${id}`);
    await page.getByText('Answer it in the inbox').click();
    const card = page.locator('article.interrupt', { hasText: 'Refund 120 for o-77?' });
    await card.waitFor();
    await card.getByLabel('approve').check();
    await card.getByLabel('reason (required)').selectOption('damaged');
    // Too long for the schema's maxLength: the node refuses it (422) and the form says why.
    await card.getByLabel('note').fill('the box arrived crushed flat');
    await card.getByRole('button', { name: 'Resume' }).click();
    await card.getByRole('alert').waitFor();
    expect(await jobState(id)).toBe('suspended');
    await screenshot(page, 'inbox');
    await card.getByLabel('note').fill('box crushed');
    await card.getByRole('button', { name: 'Resume' }).click();
    await card.waitFor({ state: 'detached' });
    await waitFor(async () => (await jobState(id)) === 'succeeded', { timeoutMs: 15_000, message: 'the job resumed and finished' });
    expect((await node.request('GET', `/v1/jobs/${id}`)).body.result).toEqual({ refunded: true, decision: { approve: true, reason: 'damaged', note: 'box crushed' } });
    await page.goto(`/console/#/jobs/${id}`);
    await page.locator('section[aria-labelledby="steps-title"] td', { hasText: 'manager-approval' }).waitFor();
  });

  it('has no serious accessibility violations on any screen, in the light and the dark theme', async () => {
    const { page } = admin;
    const job = await enqueue('orders', { orderId: 'o-axe' });
    // The README's picture: the overview after the tests above ran jobs through it.
    await page.goto('/console/#/');
    await page.locator('main h1').waitFor();
    const shown = [];
    for (let i = 0; i < 6; i++) shown.push(await enqueue('orders', { orderId: `o-${100 + i}` }));
    shown.push(await enqueue('flaky', { orderId: 'o-200' }));
    for (const id of shown) await page.locator(`.activity li[data-job="${id}"]:is([data-state="succeeded"], [data-state="dead"])`).waitFor();
    await screenshot(page, 'console-overview', { fullPage: false });
    const screens = ['#/', '#/jobs', `#/jobs/${job}`, '#/events/evt-console-1', '#/handlers', '#/queues', '#/inbox', '#/audit', '#/keys'];
    const found: Record<string, unknown> = {};
    for (const theme of ['light', 'dark'] as const) {
      await page.goto('/console/#/');
      await page.getByRole('combobox', { name: 'Theme' }).selectOption(theme);
      await page.waitForFunction((t) => document.documentElement.dataset.theme === t, theme);
      for (const screen of screens) {
        await page.goto(`/console/${screen}`);
        await page.locator('main h1').waitFor();
        await page.waitForLoadState('networkidle').catch(() => undefined); // the SSE stream never idles; settle on what loaded
        await page.locator('main table, main .cards, main .facts, main article').first().waitFor();
        const violations = await seriousViolations(page);
        if (violations.length > 0) found[`${theme} ${screen}`] = violations;
        if (theme === 'dark' && screen === '#/handlers') await screenshot(page, 'handlers-dark');
      }
    }
    expect(found).toEqual({});
    await page.getByRole('combobox', { name: 'Theme' }).selectOption('light');
  });

  it('the audit screen says the hash chain holds; keys can be created and revoked', async () => {
    const { page } = admin;
    await page.goto('/console/#/audit');
    await page.getByTestId('chain-status').getByText('Hash chain intact').waitFor();
    await page.goto('/console/#/keys');
    await page.getByLabel('Name').fill('dashboards');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByText('Copy the secret now').waitFor();
    const row = page.locator('tr', { hasText: 'dashboards' });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.getByText('revoked').waitFor();
  });

  it('a forged action (the session cookie without the CSRF token) is refused by the API', async () => {
    const { page } = admin;
    const id = await enqueue('greet', { gate: 'forged' });
    const status = await page.evaluate(async (jobId) => (await fetch(`/v1/jobs/${jobId}/cancel`, { method: 'POST', credentials: 'same-origin' })).status, id);
    expect(status).toBe(403);
    expect(await jobState(id)).not.toBe('cancelled');
    await waitFor(() => gates.has('forged'), { message: 'the gated job running' });
    gates.get('forged')!();
  });

  it('is readable on a phone: nothing wider than the screen, navigation wraps', async () => {
    const phone = await open({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await signInWithKeyboard(phone.page, ADMIN_KEY);
    for (const screen of ['#/', '#/jobs', '#/handlers', '#/queues']) {
      await phone.page.goto(`/console/${screen}`);
      await phone.page.locator('main h1').waitFor();
      const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${screen} is wider than the phone`).toBeLessThanOrEqual(0);
    }
    await phone.page.goto('/console/#/');
    await phone.page.getByRole('heading', { name: 'Overview' }).waitFor();
    await screenshot(phone.page, 'overview-phone');
    await phone.context.close();
  });

  it('shows timestamps in the viewer\'s time zone, UTC on hover', async () => {
    const tokyo = await open({ timezoneId: 'Asia/Tokyo' });
    await signInWithKeyboard(tokyo.page, ADMIN_KEY);
    const id = await enqueue('orders', { orderId: 'o-tz' });
    const created = (await node.request('GET', `/v1/jobs/${id}`)).body.createdAt as string;
    await tokyo.page.goto(`/console/#/jobs/${id}`);
    const time = tokyo.page.locator('.timeline time').first();
    await time.waitFor();
    const expected = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'Asia/Tokyo' }).format(new Date(created));
    expect(await time.textContent()).toBe(expected);
    expect(await time.getAttribute('title')).toBe(`${created.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`);
    await tokyo.context.close();
  });
});

describe('a read-only key', { timeout: 120_000 }, () => {
  it('sees no action buttons and no admin screens, and its forged actions are refused', async () => {
    const reader = await open();
    await signInWithKeyboard(reader.page, await keyWith(node, ['read'], 'console-reader'));
    const dead = await enqueue('flaky');
    await waitFor(async () => (await jobState(dead)) === 'dead', { timeoutMs: 15_000, message: 'the job dead' });
    await reader.page.goto(`/console/#/jobs/${dead}`);
    await reader.page.locator('h1 .badge.state-dead').waitFor();
    await reader.page.goto('/console/#/handlers');
    await reader.page.locator('tr[data-handler="greet"]').waitFor();
    await reader.page.goto('/console/#/queues');
    await reader.page.locator('tr[data-queue="billing"]').waitFor();
    expect(await reader.page.locator('main button').count()).toBe(0);
    await reader.page.goto(`/console/#/jobs/${dead}`);
    await reader.page.locator('h1 .badge.state-dead').waitFor();
    expect(await reader.page.getByRole('button', { name: 'Retry' }).count()).toBe(0);
    await screenshot(reader.page, 'job-read-only');
    expect(await reader.page.getByRole('link', { name: 'Audit' }).count()).toBe(0);
    expect(await reader.page.getByRole('link', { name: 'Keys' }).count()).toBe(0);
    expect(await reader.page.getByRole('link', { name: 'Inbox' }).count()).toBe(0);
    // Forged from the page, with the session's own CSRF token: the scope still refuses it.
    const answer = await reader.page.evaluate(async (jobId) => {
      const me = await (await fetch('/v1/session')).json();
      const res = await fetch(`/v1/jobs/${jobId}/retry`, { method: 'POST', headers: { 'x-drover-csrf': me.csrfToken } });
      return { status: res.status, type: (await res.json()).type };
    }, dead);
    expect(answer).toEqual({ status: 403, type: 'https://drover.dev/problems/forbidden' });
    expect(await jobState(dead)).toBe('dead');
    await reader.context.close();
  });
});

describe('a resume-only key', { timeout: 120_000 }, () => {
  it('gets the inbox and nothing else, and answers an interrupt there', async () => {
    const approver = await open();
    const key = await keyWith(node, ['resume'], 'console-approver');
    await approver.page.goto('/console/');
    await approver.page.getByLabel('API key').fill(key);
    await approver.page.getByRole('button', { name: 'Sign in' }).click();
    await approver.page.getByRole('heading', { name: 'Interrupts inbox' }).waitFor();
    const nav = await approver.page.getByRole('navigation', { name: 'Sections' }).getByRole('link').allTextContents();
    expect(nav).toEqual(['Inbox']);
    // The interrupt the admin left pending above.
    const card = approver.page.locator('article.interrupt', { hasText: 'Refund 5 for o-78?' });
    await card.getByLabel('reason (required)').selectOption('late');
    await card.getByRole('button', { name: 'Resume' }).click();
    await card.waitFor({ state: 'detached' });
    const audit = (await node.request('GET', '/v1/audit?limit=10')).body.records as Array<{ action: string; actor: string }>;
    const approverId = ((await node.request('GET', '/v1/keys')).body.keys as Array<{ id: string; name: string }>).find((k) => k.name === 'console-approver')!.id;
    expect(audit.some((r) => r.action === 'interrupt.resume' && r.actor === approverId)).toBe(true);
    expect(await approver.page.evaluate(async () => (await fetch('/v1/jobs')).status)).toBe(403);
    await approver.context.close();
  });
});

describe('sign-out', { timeout: 60_000 }, () => {
  it('ends the session on the server: the old cookie no longer works', async () => {
    const { page, context } = admin;
    await page.goto('/console/#/');
    const cookie = (await context.cookies())[0]!;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await context.cookies()).toEqual([]);
    const replayed = await node.app.inject({ method: 'GET', url: '/v1/jobs', headers: { cookie: `${cookie.name}=${cookie.value}` } });
    expect(replayed.statusCode).toBe(401);
    await page.goto('/console/#/jobs');
    await page.getByLabel('API key').waitFor();
  });
});
