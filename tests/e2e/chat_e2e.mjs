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
  cleanEnv,
  freePort,
  launchBrowser,
  makeTempDir,
  openQuietSockets,
  runToExit,
  screenshot,
  serverBinary,
  START_MS,
  STEP_MS,
  waitFor,
} from './chat_harness.mjs';

const TEST_MS = 90000;

// Messages published from the pages (ChatPage.send), to compare with the
// server's ebb_chat_messages_total.
let published = 0;

// Lets a test lose a page's WebSocket frames in transit: every socket the
// page opens is kept in window.e2eSockets, and send() on a socket marked
// `lose` is counted in window.e2eLost and goes nowhere, as when the
// connection dies before the server reads the frame.
function lossyWebSocket() {
  const Real = window.WebSocket;
  window.e2eSockets = [];
  window.e2eLost = 0;
  window.WebSocket = class extends Real {
    constructor(...args) {
      super(...args);
      this.lose = false;
      window.e2eSockets.push(this);
    }
    send(data) {
      if (this.lose) {
        window.e2eLost++;
        return;
      }
      super.send(data);
    }
  };
}

/** One person in one browser context (own storage, own connection). */
class ChatPage {
  constructor(browser, base, name, {noWebSocket = false, lossy = false} = {}) {
    this.browser = browser;
    this.base = base;
    this.name = name;
    this.noWebSocket = noWebSocket;
    this.lossy = lossy;
    this.errors = [];
  }

  async open() {
    this.context = await this.browser.newContext({viewport: {width: 1100, height: 700}});
    if (this.noWebSocket) await this.context.addInitScript(() => { delete window.WebSocket; });
    if (this.lossy) await this.context.addInitScript(lossyWebSocket);
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

  /** Publishes `text` in the active room; waits for nothing from the server. */
  async send(text) {
    await this.page.fill('#message-input', text);
    await this.page.press('#message-input', 'Enter');
    published++;
  }

  statusText() {
    return this.page.textContent('#status');
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

  test('zero configuration: no flag, an empty directory; it serves the page and makes ./data/chat.db',
       {timeout: TEST_MS}, async () => {
    const dir = makeTempDir('ebb-chat-zero-');
    // SERVER_PORT=0 only so that runs do not fight over 8080; the port comes
    // from the line the program prints.
    const server = new ChatServer({workDir: dir, flags: false, env: {SERVER_PORT: '0'}});
    try {
      assert.deepEqual(fs.readdirSync(dir), [], 'the working directory starts empty');
      await server.start();
      assert.ok(server.port > 0, `announced port ${server.port}`);
      const page = await fetch(`${server.base}/`);
      assert.equal(page.status, 200, 'GET /');
      assert.match(await page.text(), /<title>ebb chat<\/title>/);
      const dash = await fetch(`${server.base}/dashboard`);
      assert.equal(dash.status, 200, 'GET /dashboard');
      assert.ok(fs.statSync(path.join(dir, 'data')).isDirectory(), './data was created');
      assert.ok(fs.statSync(path.join(dir, 'data', 'chat.db')).isFile(), './data/chat.db was created');
      const {code, signal} = await server.terminate();
      assert.equal(signal, null, `died by ${signal}\n${server.log}`);
      assert.equal(code, 0, `exit status ${code}\n${server.log}`);
    } finally {
      server.kill();
      fs.rmSync(dir, {recursive: true, force: true});
    }
  });

  test('.env in the working directory: a bad value is a start-up error naming the key; a port is obeyed',
       {timeout: TEST_MS}, async () => {
    const dir = makeTempDir('ebb-chat-dotenv-');
    try {
      // SERVER_PORT=0 in the environment: were the bad value ignored, it
      // would listen somewhere harmless, and the exit status would say so.
      fs.writeFileSync(path.join(dir, '.env'), 'SHUTDOWN_TIMEOUT=abc\n');
      const bad = await runToExit([], {cwd: dir, env: cleanEnv({SERVER_PORT: '0'})});
      assert.equal(bad.signal, null, `died by ${bad.signal}`);
      assert.equal(bad.status, 1, `exit status for SHUTDOWN_TIMEOUT=abc in .env: ${bad.status}\n${bad.stdout}${bad.stderr}`);
      assert.match(bad.stderr, /SHUTDOWN_TIMEOUT/, 'the error names the key');

      const port = await freePort();
      fs.writeFileSync(path.join(dir, '.env'),
                       `# ebb-chat settings\nSERVER_HOST=127.0.0.1\nSERVER_PORT=${port}\n`);
      const server = new ChatServer({workDir: dir, flags: false});  // no setting in the environment
      try {
        await server.start();
        assert.equal(server.announced, port, `listens on the .env port\n${server.log}`);
        assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200, 'GET / on the .env port');
        const {code} = await server.terminate();
        assert.equal(code, 0, `exit status ${code}\n${server.log}`);
      } finally {
        server.kill();
      }
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
  let quiet = [];  // plain WebSocket sessions that only take part in the drain
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
        // reconnects; closes spread over 1.5 s and a sample every 100 ms, so
        // the dashboard (closed last) sees the sessions leave one by one.
        WEBSOCKET_SHUTDOWN_RECONNECT_MS: '1500',
        WEBSOCKET_SHUTDOWN_SPREAD_MS: '1500',
        CHAT_STATS_INTERVAL_MS: '100',
      },
    });
    await server.start();
    assert.ok(fs.existsSync(path.join(dataDir, 'chat.db')), 'the history file was created');
    browser = await launchBrowser();
  }, {timeout: START_MS * 3});

  after(async () => {
    for (const ws of quiet) ws.terminate();
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
    alice = await person('alice', {lossy: true});  // the restart test loses one of her frames
    bob = await person('bob');
    await alice.waitPresence('general', 'bob');
    await bob.waitPresence('general', 'alice');

    await alice.send('hi bob');
    await bob.waitMessage('general', 'hi bob');
    await bob.send('hi alice');
    await alice.waitMessage('general', 'hi alice');
    await bob.waitMessage('general', 'hi alice');  // his own shows when the broadcast comes back
    const seen = await alice.messages('general');
    assert.deepEqual(seen.map((m) => [m.who, m.text]), [['alice', 'hi bob'], ['bob', 'hi alice']]);
    assert.deepEqual(seen, await bob.messages('general'));

    // The live connection count reaches every page.
    await alice.page.waitForFunction(() => Number(document.getElementById('count').dataset.count) >= 2,
                                     null, {timeout: STEP_MS});
    // Rooms list shows general with its two members.
    await alice.page.waitForSelector('#room-list li[data-room="general"] .members:text-is("2")', {timeout: STEP_MS});
    await screenshot(alice.page, 'connected');

    // The server's own view: alive, and both messages counted.
    assert.equal((await fetch(`${server.base}/health/live`)).status, 200, 'GET /health/live');
    assert.equal(published, 2);
    assert.equal(await server.metric('ebb_chat_messages_total'), published,
                 'ebb_chat_messages_total in /metrics counts the messages sent');
  });

  test('a room made on one page shows in another page\'s list; a click joins it, with its history',
       {timeout: TEST_MS}, async () => {
    const carol = await person('carol');  // open before the room exists
    assert.equal(await carol.page.$('#room-list li[data-room="history"]'), null);
    await alice.joinRoom('history');
    for (const text of ['first', 'second', 'third']) await alice.send(text);
    await alice.waitMessage('history', 'third');

    // The new room reaches carol's list on its own; she joins by clicking it.
    const entry = '#room-list li[data-room="history"]';
    await carol.page.click(entry, {timeout: STEP_MS});
    await carol.page.waitForSelector(`#presence[data-room="history"]`, {timeout: STEP_MS});
    await carol.page.waitForSelector(`${entry}.joined.active`, {timeout: STEP_MS});
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
    // alice shows her own message when the server's broadcast comes back,
    // which may be after lena's poll got it: compare once both have it.
    await alice.waitMessage('general', 'hello lena, over WebSocket');
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

  test('the dashboard shows the connections and the messages per second', {timeout: TEST_MS}, async () => {
    const ctx = await browser.newContext({viewport: {width: 1300, height: 800}});
    dash = await ctx.newPage();
    pages.push({close: () => ctx.close()});
    dash.on('pageerror', (e) => dashErrors.push(String(e)));
    await dash.goto(server.base + '/dashboard');
    await dash.waitForFunction(() => window.dashDebug.samples >= 4, null, {timeout: STEP_MS});
    // alice, bob, lena (long-polling) and the dashboard itself.
    await dash.waitForFunction(() => Number(document.getElementById('connections').dataset.value) >= 4,
                               null, {timeout: STEP_MS});

    // A burst of messages: the rate (over the last second) turns positive.
    for (const text of ['one', 'two', 'three']) await alice.send(text);
    await dash.waitForFunction(() => Number(document.getElementById('rate').dataset.value) > 0,
                               null, {timeout: STEP_MS});
    await bob.waitMessage('general', 'three');
    // Every message the pages sent, counted alike by the dashboard and /metrics.
    await dash.waitForFunction((n) => document.getElementById('messages-total').textContent ===
                                   `total since start: ${n}`, published, {timeout: STEP_MS});
    assert.equal(await server.metric('ebb_chat_messages_total'), published,
                 'ebb_chat_messages_total in /metrics counts the messages sent');
    await screenshot(dash, 'dashboard-live');
  });

  test('SIGTERM: pages show the restart, reconnect, resume; nothing lost or doubled', {timeout: TEST_MS}, async (t) => {
    // More sessions in the drain, in a random close order: without being
    // closed last, the dashboard would rarely be last by chance (1 in 8).
    const QUIET = 5;
    quiet = await openQuietSockets(server.base, QUIET);
    await dash.waitForFunction((n) => Number(document.getElementById('connections').dataset.value) >= n,
                               4 + QUIET, {timeout: STEP_MS});

    // Two messages sent just before the restart, neither waited for. bob's
    // goes out as usual with the signal right behind it: committed before
    // the drain or not, it is shown once. alice's frame is lost in transit
    // (her WebSocket drops it, as a connection that dies before the server
    // reads it): it stays pending and only the resend after the resume
    // delivers it.
    const lost = 'lost with the connection just before the restart';
    const racing = 'sent just before the restart';
    await alice.page.evaluate(() => window.e2eSockets.forEach((ws) => { ws.lose = true; }));
    await alice.send(lost);
    await alice.page.waitForFunction(() => window.e2eLost === 1, null, {timeout: STEP_MS});
    await bob.send(racing);
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
    await bob.page.waitForSelector(
        `ul.messages[data-room="general"] li.msg.pending .text:text-is("${offline}")`, {timeout: STEP_MS});
    await screenshot(bob.page, 'reconnecting');
    // The dashboard watched the drain to its end: the server closes it only
    // after every other session, so its samples show them leave, down to
    // itself alone (the sample the chat sends when the last other one ends).
    await dash.waitForSelector('#drain[data-drain="restarting"]', {timeout: STEP_MS});
    const drainSeen = await dash.evaluate(() => window.dashDebug);
    const left = drainSeen.drainSamples.map((d) => d.left);
    t.diagnostic(`dashboard drain samples (sessions left): ${left.join(' ')}`);
    assert.ok(left.length >= 3, `the dashboard received several drain samples: ${left.join(' ')}`);
    assert.ok(drainSeen.maxSessionsLeft >= 4 + QUIET,
              `sessions left during the drain: ${drainSeen.maxSessionsLeft} (alice, bob, lena, ` +
                  `the dashboard, ${QUIET} quiet ones)`);
    assert.ok(Math.min(...left) < Math.max(...left),
              `the dashboard saw sessions leave before its own close: ${left.join(' ')}`);
    // Samples come from each session's own I/O thread, so they may arrive
    // out of order; the lowest is the point the dashboard reached.
    assert.equal(Math.min(...left), 1, `the dashboard saw every other session leave: ${left.join(' ')}`);
    assert.equal(await dash.$eval('#drain-left', (e) => e.dataset.value), '1',
                 'the page shows the lowest count it was sent');
    assert.equal(drainSeen.closes[0]?.code, 1001, 'the drain closed the dashboard with 1001');
    await waitFor(() => quiet.every((ws) => ws.readyState === ws.CLOSED), STEP_MS,
                  'the quiet sessions to be closed by the drain');
    await screenshot(dash, 'dashboard-drain');

    await server.start();  // same port, same data directory
    await Promise.all([alice, bob, lena].map((p) => p.waitState('resumed', 20000)));
    // The fallback stays visible after a resume.
    assert.equal(await alice.statusText(), 'Connected (resumed)');
    assert.equal(await alice.page.getAttribute('#status', 'data-transport'), 'websocket');
    assert.equal(await lena.statusText(), 'Resumed (long-polling fallback)');
    assert.equal(await lena.page.getAttribute('#status', 'data-transport'), 'longpoll');
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

    for (const p of [alice, bob, lena])
      for (const text of [lost, racing, offline]) await p.waitMessage('general', text);
    for (const p of [alice, bob])
      await p.page.waitForFunction(
          () => !document.querySelector('ul.messages[data-room="general"] li.msg.pending'), null,
          {timeout: STEP_MS});
    const lists = await Promise.all([alice, bob, lena].map((p) => p.messages('general')));
    for (const [i, list] of lists.entries()) {
      const who = ['alice', 'bob', 'lena'][i];
      assertExactlyOnceInOrder(list, who);
      for (const text of [lost, racing, offline])
        assert.equal(countText(list, text), 1, `${who} shows "${text}" once`);
    }
    assert.ok((await alice.debug()).resent >= 1, 'alice sent the lost message again after the resume');
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
