// Browser end-to-end tests of ebb-chat (issue 6): Debian's Chromium, driven
// by playwright-core, against a real ebb-chat process with its own data
// directory on a free port.
//
//   EBB_CHAT=build/debug/apps/ebb-chat/ebb-chat node --test tests/e2e/chat_e2e.mjs
//
// The tests run in order and share the server and the browser (a chat is a
// story: people meet, talk, the server restarts under them). Screenshots of
// every connection state go to $E2E_ARTIFACTS (ctest: the build's
// tests/e2e/artifacts/). Every wait has a deadline; the whole file is
// bounded by the per-test timeouts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {after, before, describe, test} from 'node:test';

import {
  ChatServer,
  freePort,
  launchBrowser,
  makeTempDir,
  screenshot,
  serverBinary,
  START_MS,
  STEP_MS,
  waitFor,
} from './chat_harness.mjs';

const TEST_MS = 90000;

/** One person in one browser context (own storage, own connection). */
class ChatPage {
  constructor(browser, base, name, {noWebSocket = false} = {}) {
    this.browser = browser;
    this.base = base;
    this.name = name;
    this.noWebSocket = noWebSocket;
    this.errors = [];
  }

  async open() {
    this.context = await this.browser.newContext({viewport: {width: 1100, height: 700}});
    if (this.noWebSocket) await this.context.addInitScript(() => { delete window.WebSocket; });
    this.page = await this.context.newPage();
    this.page.on('pageerror', (e) => this.errors.push(String(e)));
    await this.page.goto(this.base + '/');
    await this.page.fill('#name-input', this.name);
    await this.page.click('#name-form button[type=submit]');
    const want = this.noWebSocket ? 'longpoll' : 'connected';
    await this.waitState(want);
    await this.waitPresence('general', this.name);
    return this;
  }

  state() {
    return this.page.getAttribute('#status', 'data-state');
  }

  async waitState(state, ms = STEP_MS) {
    await this.page.waitForSelector(`#status[data-state="${state}"]`, {timeout: ms});
  }

  /** True once the page has been in `state` at some point (states are transient). */
  async waitStateSeen(state, ms = STEP_MS) {
    await this.page.waitForFunction((s) => window.chatDebug.states.includes(s), state, {timeout: ms});
  }

  debug() {
    return this.page.evaluate(() => ({...window.chatDebug, states: [...window.chatDebug.states]}));
  }

  async send(text) {
    await this.page.fill('#message-input', text);
    await this.page.press('#message-input', 'Enter');
  }

  async joinRoom(room) {
    await this.page.fill('#new-room-input', room);
    await this.page.press('#new-room-input', 'Enter');
    await this.page.waitForSelector(`#presence[data-room="${room}"]`, {timeout: STEP_MS});
  }

  /** Rendered (stored) messages of `room`, in DOM order. */
  messages(room) {
    return this.page.$$eval(`ul.messages[data-room="${room}"] li.msg[data-seq]`, (lis) => lis.map((li) => ({
      seq: Number(li.dataset.seq),
      who: li.querySelector('.who').textContent,
      text: li.querySelector('.text').textContent,
    })));
  }

  async waitMessage(room, text, ms = STEP_MS) {
    return waitFor(async () => (await this.messages(room)).find((m) => m.text === text), ms,
                   `${this.name} to see "${text}" in ${room}`);
  }

  async waitPresence(room, name, ms = STEP_MS) {
    await this.page.waitForFunction(([r, n]) => {
      const box = document.getElementById('presence');
      return box.dataset.room === r &&
          [...box.querySelectorAll('.who')].some((e) => e.textContent === n);
    }, [room, name], {timeout: ms});
  }

  async close() {
    if (this.context) await this.context.close();
  }
}

/** Every message once, in strictly increasing seq order. */
function assertExactlyOnceInOrder(list, who) {
  for (let i = 1; i < list.length; i++)
    assert.ok(list[i - 1].seq < list[i].seq,
              `${who}: seq ${list[i].seq} after ${list[i - 1].seq} (not strictly increasing)`);
}

function countText(list, text) {
  return list.filter((m) => m.text === text).length;
}

describe('ebb-chat command line', () => {
  test('--help names every setting with its default; a bad setting is a start-up error', async () => {
    const {execFileSync, spawnSync} = await import('node:child_process');
    const help = execFileSync(serverBinary(), ['--help'], {encoding: 'utf8'});
    for (const key of ['SERVER_PORT', 'SERVER_HOST', 'DATA_DIR', 'SHUTDOWN_TIMEOUT (default: 10s)',
                       'WEBSOCKET_SHUTDOWN_NOTICE', 'LONGPOLL_TTL', 'CHAT_WEB_DIR'])
      assert.ok(help.includes(key), `--help mentions ${key}`);
    const dir = makeTempDir('ebb-chat-bad-');
    try {
      const bad = spawnSync(serverBinary(), ['--data-dir', path.join(dir, 'data')], {
        cwd: dir, encoding: 'utf8', timeout: START_MS,
        env: {...process.env, SERVER_PORT: '0', SHUTDOWN_TIMEOUT: 'soon'},
      });
      assert.equal(bad.status, 1, `exit status for a bad SHUTDOWN_TIMEOUT: ${bad.status}`);
      assert.match(bad.stderr, /SHUTDOWN_TIMEOUT/);
      const unknown = spawnSync(serverBinary(), ['--bogus'], {encoding: 'utf8', timeout: START_MS});
      assert.equal(unknown.status, 1);
      assert.match(unknown.stderr, /--bogus/);
    } finally {
      fs.rmSync(dir, {recursive: true, force: true});
    }
  });
});

describe('ebb-chat in Chromium', () => {
  let server;
  let browser;
  let workDir;
  let dataDir;
  const pages = [];
  let alice, bob, lena, dash, dashErrors = [];

  before(async () => {
    workDir = makeTempDir('ebb-chat-e2e-');
    dataDir = path.join(workDir, 'data');  // created by the server on first run
    server = new ChatServer({
      port: await freePort(),
      dataDir,
      workDir,
      env: {
        // Long enough to photograph the "restarting" state before the page
        // reconnects; spread so the dashboard sees sessions leave one by one.
        WEBSOCKET_SHUTDOWN_RECONNECT_MS: '1500',
        WEBSOCKET_SHUTDOWN_SPREAD_MS: '1000',
      },
    });
    await server.start();
    assert.ok(fs.existsSync(path.join(dataDir, 'chat.db')), 'the history file was created');
    browser = await launchBrowser();
  }, {timeout: START_MS * 3});

  after(async () => {
    for (const p of pages) await p.close().catch(() => {});
    if (browser) await browser.close().catch(() => {});
    if (server) server.kill();
    if (workDir) fs.rmSync(workDir, {recursive: true, force: true});
  });

  async function person(name, opts) {
    const p = new ChatPage(browser, server.base, name, opts);
    pages.push(p);
    return p.open();
  }

  test('two pages chat in a room, with presence and the live count', {timeout: TEST_MS}, async () => {
    alice = await person('alice');
    bob = await person('bob');
    await alice.waitPresence('general', 'bob');
    await bob.waitPresence('general', 'alice');

    await alice.send('hi bob');
    await bob.waitMessage('general', 'hi bob');
    await bob.send('hi alice');
    await alice.waitMessage('general', 'hi alice');
    const seen = await alice.messages('general');
    assert.deepEqual(seen.map((m) => [m.who, m.text]), [['alice', 'hi bob'], ['bob', 'hi alice']]);
    assert.deepEqual(seen, await bob.messages('general'));

    // The live connection count reaches every page.
    await alice.page.waitForFunction(() => Number(document.getElementById('count').dataset.count) >= 2,
                                     null, {timeout: STEP_MS});
    // Rooms list shows general with its two members.
    await alice.page.waitForSelector('#room-list li[data-room="general"] .members:text-is("2")', {timeout: STEP_MS});
    await screenshot(alice.page, 'connected');
  });

  test('history shows on join', {timeout: TEST_MS}, async () => {
    await alice.joinRoom('history');
    for (const text of ['first', 'second', 'third']) await alice.send(text);
    await alice.waitMessage('history', 'third');

    const carol = await person('carol');
    await carol.joinRoom('history');
    const got = await waitFor(async () => {
      const m = await carol.messages('history');
      return m.length >= 3 && m;
    }, STEP_MS, 'carol to see the history of room "history"');
    assert.deepEqual(got.map((m) => m.text), ['first', 'second', 'third']);
    assertExactlyOnceInOrder(got, 'carol');
    await carol.waitPresence('history', 'alice');
    await screenshot(carol.page, 'history-on-join');
    // Leaving updates everyone's presence.
    await carol.page.click('#leave-button');
    await alice.page.waitForFunction(() => {
      const box = document.getElementById('presence');
      return box.dataset.room === 'history' &&
          ![...box.querySelectorAll('.who')].some((e) => e.textContent === 'carol');
    }, null, {timeout: STEP_MS});
    await carol.close();
    pages.splice(pages.indexOf(carol), 1);
    // Back to general for the rest of the story.
    await alice.page.click('#joined-tabs button[data-room="general"]');
  });

  test('a page without WebSocket chats over long-polling with a WebSocket page', {timeout: TEST_MS}, async () => {
    lena = await person('lena', {noWebSocket: true});
    assert.equal(await lena.page.evaluate(() => 'WebSocket' in window), false);
    assert.equal(await lena.page.getAttribute('#status', 'data-transport'), 'longpoll');
    await lena.waitPresence('general', 'alice');
    await lena.send('hello over long-polling');
    await alice.waitMessage('general', 'hello over long-polling');
    await alice.send('hello lena, over WebSocket');
    await lena.waitMessage('general', 'hello lena, over WebSocket');
    assert.deepEqual(await lena.messages('general'), await alice.messages('general'));
    assert.ok((await server.stats()).longpoll_sessions >= 1, 'the server counts the long-poll session');
    await screenshot(lena.page, 'longpoll');
  });

  test('a page whose WebSocket never connects falls back to long-polling', {timeout: TEST_MS}, async () => {
    // As behind a proxy that drops Upgrade: WebSocket exists but fails.
    const ctx = await browser.newContext();
    await ctx.addInitScript(() => {
      window.WebSocket = class {
        static OPEN = 1;
        constructor() {
          this.readyState = 0;
          setTimeout(() => {
            this.readyState = 3;
            if (this.onerror) this.onerror(new Event('error'));
            if (this.onclose) this.onclose({code: 1006, reason: ''});
          }, 20);
        }
        send() { throw new Error('not open'); }
        close() {}
      };
    });
    const page = await ctx.newPage();
    try {
      await page.goto(server.base + '/');
      await page.fill('#name-input', 'mo');
      await page.click('#name-form button[type=submit]');
      await page.waitForSelector('#status[data-state="longpoll"]', {timeout: STEP_MS});
      const states = await page.evaluate(() => window.chatDebug.states);
      assert.deepEqual(states, ['connecting', 'longpoll']);
      await page.waitForFunction(() => [...document.querySelectorAll('#presence .who')]
                                     .some((e) => e.textContent === 'mo'), null, {timeout: STEP_MS});
      await alice.send('can you read me, mo?');
      await page.waitForFunction(() => [...document.querySelectorAll('li.msg[data-seq] .text')]
                                     .some((e) => e.textContent === 'can you read me, mo?'),
                                 null, {timeout: STEP_MS});
    } finally {
      await ctx.close();
    }
  });

  test('SIGTERM: pages show the restart, reconnect, resume; nothing lost or doubled', {timeout: TEST_MS}, async (t) => {
    // The dashboard, live before the drain.
    const ctx = await browser.newContext({viewport: {width: 1300, height: 800}});
    dash = await ctx.newPage();
    pages.push({close: () => ctx.close()});
    dash.on('pageerror', (e) => dashErrors.push(String(e)));
    await dash.goto(server.base + '/dashboard');
    await dash.waitForFunction(() => window.dashDebug.samples >= 4, null, {timeout: STEP_MS});
    await dash.waitForFunction(() => Number(document.getElementById('connections').dataset.value) >= 4,
                               null, {timeout: STEP_MS});
    await screenshot(dash, 'dashboard-live');

    // A message sent just before the restart: it may be committed before the
    // drain, or still pending when the connection goes; either way it must
    // show exactly once everywhere.
    const lastWord = 'sent just before the restart';
    await alice.send(lastWord);
    const exit = server.terminate();

    // The notice keeps the badge on "restarting" for the reconnect delay it
    // asks for (1.5 s here, plus the page's spread offset).
    await alice.waitState('restarting');
    await screenshot(alice.page, 'restarting');
    await bob.waitStateSeen('restarting');
    const {code, signal} = await exit;
    assert.equal(signal, null, `ebb-chat died by ${signal}\n${server.log}`);
    assert.equal(code, 0, `ebb-chat exit status ${code} (0 = clean drain)\n${server.log}`);

    // The server is down: everyone keeps trying. What bob writes meanwhile
    // waits, shown as pending, and goes out once after the resume.
    await Promise.all([alice, bob, lena].map((p) => p.waitState('reconnecting')));
    const offline = 'written while the server was down';
    await bob.send(offline);
    await bob.page.waitForSelector('ul.messages[data-room="general"] li.msg.pending', {timeout: STEP_MS});
    await screenshot(bob.page, 'reconnecting');
    // The dashboard saw the drain: sessions left, before its own close.
    await dash.waitForSelector('#drain[data-drain="restarting"]', {timeout: STEP_MS});
    const drainSeen = await dash.evaluate(() => window.dashDebug);
    assert.ok(drainSeen.drainSamples.length >= 1, 'the dashboard received drain samples');
    assert.ok(drainSeen.maxSessionsLeft >= 4,
              `sessions left during the drain: ${drainSeen.maxSessionsLeft} (alice, bob, lena, dashboard)`);
    await screenshot(dash, 'dashboard-drain');

    await server.start();  // same port, same data directory
    await Promise.all([alice, bob, lena].map((p) => p.waitState('resumed', 20000)));
    await screenshot(alice.page, 'resumed');
    await screenshot(lena.page, 'resumed-longpoll');
    await dash.waitForSelector('#drain[data-drain="done"]', {timeout: STEP_MS});
    // Everyone is back, once: alice, bob, lena (long-polling) and the dashboard.
    await waitFor(async () => {
      const st = await server.stats();
      t.diagnostic(`after restart: ${JSON.stringify(st)}`);
      return st.connections === 4 && st.longpoll_sessions === 1;
    }, STEP_MS, '4 sessions after the restart, 1 of them long-polling', 500);
    await dash.waitForFunction(() => document.getElementById('connections').dataset.value === '4',
                               null, {timeout: STEP_MS});
    await screenshot(dash, 'dashboard-after-restart');

    for (const p of [alice, bob, lena]) {
      await p.waitMessage('general', lastWord);
      await p.waitMessage('general', offline);
    }
    await bob.page.waitForFunction(
        () => !document.querySelector('ul.messages[data-room="general"] li.msg.pending'), null,
        {timeout: STEP_MS});
    const lists = await Promise.all([alice, bob, lena].map((p) => p.messages('general')));
    for (const [i, list] of lists.entries()) {
      const who = ['alice', 'bob', 'lena'][i];
      assertExactlyOnceInOrder(list, who);
      assert.equal(countText(list, lastWord), 1, `${who} shows "${lastWord}" once`);
      assert.equal(countText(list, offline), 1, `${who} shows "${offline}" once`);
    }
    assert.deepEqual(lists[1], lists[0], 'bob and alice show the same messages');
    assert.deepEqual(lists[2].map((m) => m.seq), lists[0].slice(-lists[2].length).map((m) => m.seq),
                     'lena shows the same messages as alice since she joined');
    for (const p of [alice, bob, lena]) {
      const d = await p.debug();
      assert.equal(d.duplicates, 0, `${p.name} received no duplicate`);
      assert.equal(d.gaps, 0, `${p.name} saw no gap`);
      assert.ok(d.resumes >= 1, `${p.name} resumed`);
      t.diagnostic(`${p.name}: states ${d.states.join(' → ')}; resent ${d.resent}`);
    }

    // Life goes on, both ways, over both transports.
    await bob.send('welcome back');
    await alice.waitMessage('general', 'welcome back');
    await lena.waitMessage('general', 'welcome back');
    await lena.send('long-polling is back too');
    await bob.waitMessage('general', 'long-polling is back too');
  });

  test('the last drain is clean too, and the pages made no script errors', {timeout: TEST_MS}, async () => {
    const {code} = await server.terminate();
    assert.equal(code, 0, `exit status ${code}\n${server.log}`);
    for (const p of [alice, bob, lena]) assert.deepEqual(p.errors, [], `${p.name}: page errors`);
    assert.deepEqual(dashErrors, [], 'dashboard: page errors');
  });
});
