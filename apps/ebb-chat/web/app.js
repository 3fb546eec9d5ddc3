// ebb chat: the browser client. Plain JavaScript, no build step.
//
// Protocol: docs/PROTOCOL.md (room.*) and apps/ebb-chat/chat_service.hpp
// (chat.*). Transport: WebSocket at /ws; the long-polling bridge at /lp when
// the browser has no WebSocket, or when WebSocket keeps failing while plain
// HTTP works (a proxy that strips Upgrade).
//
// The connection state is shown in #status, whose data-state attribute is
// stable for tests: connecting, connected, restarting (the server announced
// its drain), reconnecting, resumed (reconnected, and every joined room
// replayed what it missed), longpoll (connected over the fallback).
// data-transport says which transport (websocket, longpoll); the text of a
// resume over the fallback says so too.
//
// Exactly once: every room keeps the highest seq it has seen; a reconnect
// sends room.resume with them. Every publish carries an id and stays pending
// until its room.ack or its own room.message arrives; after a reconnect,
// pending publishes whose message came back in the replay are not sent again.
// User text only ever reaches the page through textContent.
'use strict';

(() => {
  const WS_FAILURES_BEFORE_FALLBACK = 2;  // failed WebSocket attempts while HTTP works
  const BACKOFF_MIN_MS = 250;
  const BACKOFF_MAX_MS = 3000;
  const WS_OPEN_TIMEOUT_MS = 5000;
  const DEFAULT_ROOM = 'general';
  const MAX_ROOM_BYTES = 128;  // ReliableRoomsOptions::max_room_name

  const LABELS = {
    connecting: 'Connecting…',
    connected: 'Connected',
    restarting: 'Server restarting…',
    reconnecting: 'Reconnecting…',
    resumed: 'Connected (resumed)',
    longpoll: 'Connected (long-polling fallback)',
  };
  // A resume over the fallback still says so: "resumed" alone would hide
  // that WebSocket is not getting through.
  const LONGPOLL_LABELS = {...LABELS, resumed: 'Resumed (long-polling fallback)'};

  // For tests and the curious: what the client saw.
  const debug = (window.chatDebug = {
    states: [],        // every status change, in order
    duplicates: 0,     // room.message with a seq already shown (the page shows it once)
    gaps: 0,           // a live seq that skipped one
    resumes: 0,        // completed resumes after a reconnect
    resent: 0,         // publishes sent again after a reconnect
    transport: null,
    lastError: null,
  });

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // ------------------------------------------------------------ state ---

  const clientId = 'c' + Math.random().toString(36).slice(2, 10);
  let publishCounter = 0;

  const S = {
    name: null,
    myId: null,
    status: null,
    transport: null,       // the live transport object, or null
    generation: 0,         // counts connections, to know what was sent on this one
    useLongPoll: !('WebSocket' in window),
    wsFailuresWhileHttpOk: 0,
    backoff: BACKOFF_MIN_MS,
    reconnectHintMs: null, // from server.shutdown
    restarting: false,
    lastCloseWasDrain: false,
    everConnected: false,
    resuming: false,       // waiting for room.joined of every room after a reconnect
    rooms: new Map(),      // joined rooms: name -> Room
    active: null,
    roomList: [],
    pending: new Map(),    // id -> {room, text, sentGeneration, li}
    timer: null,
  };

  function makeRoom(name) {
    const list = el('ul', 'messages');
    list.dataset.room = name;
    list.hidden = true;
    $('message-panes').appendChild(list);
    return {
      name,
      lastSeq: 0,
      synced: false,       // room.joined received on the current connection
      everSynced: false,   // room.joined received at least once: lastSeq is meaningful
      seqs: new Set(),
      presence: [],
      unread: 0,
      list,
    };
  }

  // ------------------------------------------------------------ status ---

  function setStatus(state) {
    if (S.status === state) return;
    S.status = state;
    debug.states.push(state);
    const badge = $('status');
    badge.dataset.state = state;
    const transport = S.transport ? S.transport.kind : (S.useLongPoll ? 'longpoll' : 'websocket');
    badge.dataset.transport = transport;
    badge.textContent = (transport === 'longpoll' ? LONGPOLL_LABELS : LABELS)[state];
    // Presence and the count are the server's word: stale while away from it.
    const live = ['connected', 'resumed', 'longpoll'].includes(state);
    $('presence').classList.toggle('stale', !live);
    $('room-list').classList.toggle('stale', !live);
    if (!live) {
      $('count').dataset.count = '0';
      $('count').textContent = '– online';
    }
    const banner = $('banner');
    if (state === 'restarting') {
      banner.textContent = 'The server is restarting. Your messages are kept; the page reconnects by itself.';
      banner.hidden = false;
    } else if (state === 'reconnecting' && S.everConnected) {
      banner.textContent = S.lastCloseWasDrain ?
          'The server is restarting. Reconnecting…' :
          'Connection lost. Reconnecting…';
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    updateComposer();
  }

  function showNotice(text) {
    debug.lastError = text;
    const room = S.rooms.get(S.active);
    if (room) room.list.appendChild(el('li', 'msg system', text));
    scrollToEnd();
  }

  // ------------------------------------------------------------ transports ---

  // Both transports call: onopen(), onmessage(text), onclose({code, reason,
  // reconnectMs, wasOpen}) exactly once.
  class WsTransport {
    constructor(handlers) {
      this.kind = 'websocket';
      this.h = handlers;
      this.done = false;
      this.opened = false;
      const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
      this.ws = new WebSocket(url);
      this.openTimer = setTimeout(() => {
        if (!this.opened) this.ws.close();
        this.finish({code: 1006, reason: 'open timed out'});
      }, WS_OPEN_TIMEOUT_MS);
      this.ws.onopen = () => {
        clearTimeout(this.openTimer);
        this.opened = true;
        if (!this.done) this.h.onopen();
      };
      this.ws.onmessage = (e) => {
        if (!this.done) this.h.onmessage(e.data);
      };
      this.ws.onclose = (e) => this.finish({code: e.code, reason: e.reason});
      this.ws.onerror = () => {};  // onclose follows
    }
    finish(info) {
      clearTimeout(this.openTimer);
      if (this.done) return;
      this.done = true;
      this.h.onclose({...info, wasOpen: this.opened});
    }
    send(text) {
      if (this.done || this.ws.readyState !== WebSocket.OPEN) return false;
      this.ws.send(text);
      return true;
    }
    close() {
      this.done = true;
      clearTimeout(this.openTimer);
      try { this.ws.close(1000); } catch (e) { /* already closing */ }
    }
  }

  class LongPollTransport {
    constructor(handlers) {
      this.kind = 'longpoll';
      this.h = handlers;
      this.done = false;
      this.opened = false;
      this.sid = null;
      this.ack = 0;
      this.sendChain = Promise.resolve();
      this.abort = new AbortController();
      this.start();
    }
    async start() {
      try {
        const r = await fetch('/lp/open', {method: 'POST', signal: this.abort.signal});
        if (!r.ok) throw new Error('open: HTTP ' + r.status);
        this.sid = (await r.json()).sid;
      } catch (e) {
        this.finish({code: 1006, reason: String(e)});
        return;
      }
      if (this.done) return;
      this.opened = true;
      this.h.onopen();
      this.pollLoop();
    }
    async pollLoop() {
      while (!this.done) {
        let answer;
        try {
          const url = `/lp/poll?sid=${encodeURIComponent(this.sid)}&ack=${this.ack}`;
          const r = await fetch(url, {cache: 'no-store', signal: this.abort.signal});
          if (r.status === 404) return this.finish({code: 1006, reason: 'session expired'});
          if (!r.ok) throw new Error('poll: HTTP ' + r.status);
          answer = await r.json();
        } catch (e) {
          return this.finish({code: 1006, reason: String(e)});
        }
        this.ack = answer.next;
        for (const m of answer.messages) {
          if (this.done) return;
          this.h.onmessage(m);
        }
        if (answer.closed) {
          return this.finish({
            code: answer.closed.code,
            reason: answer.closed.reason,
            reconnectMs: answer.closed.reconnect_ms,
          });
        }
      }
    }
    finish(info) {
      if (this.done) return;
      this.done = true;
      this.h.onclose({...info, wasOpen: this.opened});
    }
    send(text) {
      if (this.done || !this.sid) return false;
      // One at a time, in order: the server handles them as they arrive.
      this.sendChain = this.sendChain.then(async () => {
        if (this.done) return;
        try {
          const r = await fetch(`/lp/send?sid=${encodeURIComponent(this.sid)}`, {
            method: 'POST',
            headers: {'Content-Type': 'text/plain;charset=utf-8'},
            body: text,
          });
          if (!r.ok) this.finish({code: 1006, reason: 'send: HTTP ' + r.status});
        } catch (e) {
          this.finish({code: 1006, reason: String(e)});
        }
      });
      return true;
    }
    close() {
      const wasDone = this.done;
      this.done = true;
      this.abort.abort();
      if (!wasDone && this.sid)
        fetch(`/lp/close?sid=${encodeURIComponent(this.sid)}`, {method: 'POST', keepalive: true})
            .catch(() => {});
    }
  }

  // ------------------------------------------------------------ connection ---

  function connect() {
    S.timer = null;
    if (S.transport) return;
    setStatus(S.everConnected ? 'reconnecting' : 'connecting');
    const Kind = S.useLongPoll ? LongPollTransport : WsTransport;
    debug.transport = S.useLongPoll ? 'longpoll' : 'websocket';
    const t = new Kind({
      onopen: () => onOpen(t),
      onmessage: (text) => onMessage(text),
      onclose: (info) => onClose(t, info),
    });
    S.transport = t;
  }

  function scheduleConnect(delayMs) {
    if (S.timer) clearTimeout(S.timer);
    S.timer = setTimeout(connect, delayMs);
  }

  function send(type, payload) {
    if (!S.transport) return false;
    return S.transport.send(JSON.stringify({type, payload}));
  }

  function onOpen(t) {
    if (t !== S.transport) return;
    const reconnect = S.everConnected;
    S.generation++;
    S.everConnected = true;
    S.backoff = BACKOFF_MIN_MS;
    S.wsFailuresWhileHttpOk = 0;
    S.restarting = false;
    S.lastCloseWasDrain = false;
    S.reconnectHintMs = null;
    if (S.name) send('chat.hello', {name: S.name});
    send('chat.rooms', {});
    // Rooms we had joined: resume from their last seq, or join afresh.
    // "resumed" waits for the rooms we had; a room whose first join never
    // completed is joined again without holding the status back.
    const resume = {};
    for (const room of S.rooms.values()) {
      room.synced = false;
      if (room.everSynced) resume[room.name] = room.lastSeq;
      else send('room.join', {room: room.name});
    }
    const resuming = Object.keys(resume).length > 0;
    if (resuming) send('room.resume', {rooms: resume});
    S.resuming = reconnect && resuming;
    if (S.resuming) return;  // the status changes when every room is back
    setStatus(reconnect ? 'resumed' : (t.kind === 'longpoll' ? 'longpoll' : 'connected'));
    if (reconnect) debug.resumes++;
    flushPending();
  }

  // Ready, not just live: a draining server refuses upgrades (503) while
  // still answering HTTP, which must not look like "WebSocket is blocked".
  async function httpWorks() {
    try {
      const r = await fetch('/health/ready', {cache: 'no-store'});
      return r.ok;
    } catch (e) {
      return false;
    }
  }

  async function onClose(t, info) {
    if (t !== S.transport) return;
    S.transport = null;
    for (const room of S.rooms.values()) room.synced = false;
    S.resuming = false;
    const draining = info.code === 1001 || S.restarting;
    if (draining) S.lastCloseWasDrain = true;
    if (draining) {
      // The server announced its drain (server.shutdown, then Close 1001):
      // come back after the delay it asked for, with a little jitter.
      S.restarting = false;
      setStatus('restarting');
      const hint = info.reconnectMs ?? S.reconnectHintMs ?? 1000;
      scheduleConnect(hint + Math.random() * 250);
      return;
    }
    if (t.kind === 'websocket' && !info.wasOpen) {
      // WebSocket could not even open. If plain HTTP works, something on
      // the way blocks WebSocket: after a few tries, use long-polling.
      if (await httpWorks()) S.wsFailuresWhileHttpOk++;
      else S.wsFailuresWhileHttpOk = 0;
      if (S.wsFailuresWhileHttpOk >= WS_FAILURES_BEFORE_FALLBACK) {
        S.useLongPoll = true;
        connect();
        return;
      }
    }
    setStatus(S.everConnected ? 'reconnecting' : 'connecting');
    const delay = S.backoff * (0.75 + Math.random() * 0.5);
    S.backoff = Math.min(BACKOFF_MAX_MS, S.backoff * 2);
    scheduleConnect(delay);
  }

  // ------------------------------------------------------------ messages ---

  function onMessage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      return;
    }
    const p = msg.payload || {};
    switch (msg.type) {
      case 'server.shutdown':
        S.restarting = true;
        S.reconnectHintMs = p.reconnect_ms;
        setStatus('restarting');
        break;
      case 'chat.welcome':
        S.myId = p.id;
        showCount(p.connections);
        break;
      case 'chat.rooms':
        S.roomList = p.rooms || [];
        renderRoomList();
        break;
      case 'chat.presence': {
        const room = S.rooms.get(p.room);
        if (room) {
          room.presence = p.members || [];
          if (p.room === S.active) renderPresence();
        }
        break;
      }
      case 'chat.stats':
        showCount(p.connections);
        break;
      case 'room.message':
        onRoomMessage(p);
        break;
      case 'room.joined':
        onRoomJoined(p);
        break;
      case 'room.ack': {
        const pend = S.pending.get(p.id);
        if (pend) {
          S.pending.delete(p.id);
          pend.acked = true;
        }
        break;
      }
      case 'room.nack': {
        const pend = S.pending.get(p.id);
        if (pend) {
          S.pending.delete(p.id);
          pend.li.remove();
        }
        showNotice(`Not sent: ${p.error}`);
        break;
      }
      case 'room.left':
        break;
      case 'error':
        if (p.for === 'chat.hello') {
          // The server refused the name: ask again.
          S.name = null;
          $('name-error').textContent = p.message;
          $('name-error').hidden = false;
          $('name-screen').hidden = false;
          $('chat').hidden = true;
          updateComposer();
        } else {
          showNotice(`Error: ${p.message}`);
        }
        break;
    }
  }

  function onRoomMessage(p) {
    const room = S.rooms.get(p.room);
    if (!room) return;  // left already
    if (room.seqs.has(p.seq)) {
      debug.duplicates++;
      return;
    }
    if (room.everSynced && room.lastSeq > 0 && p.seq > room.lastSeq + 1) debug.gaps++;
    room.seqs.add(p.seq);
    if (p.seq > room.lastSeq) room.lastSeq = p.seq;
    const pend = p.id ? S.pending.get(p.id) : null;
    if (pend) S.pending.delete(p.id);
    // An ack may have come first (it removed the entry); the element stays
    // until its message arrives.
    const li = p.id ? room.list.querySelector(`li.pending[data-id="${CSS.escape(p.id)}"]`) : null;
    if (li) li.remove();
    insertMessage(room, p);
    if (p.room !== S.active) {
      room.unread++;
      renderTabs();
    }
  }

  function onRoomJoined(p) {
    const room = S.rooms.get(p.room);
    if (!room) return;
    if (p.last_seq < room.lastSeq) {
      // The server's history is older than what we saw (its data was reset):
      // what we show no longer matches its seqs. Start the room over.
      room.seqs.clear();
      room.list.replaceChildren(el('li', 'msg system', 'The server history was reset.'));
      room.lastSeq = 0;
      room.everSynced = false;
      send('room.join', {room: room.name});
      return;
    }
    if (p.gap && room.everSynced) showNotice('Some older messages are no longer available.');
    room.lastSeq = Math.max(room.lastSeq, p.last_seq);
    room.synced = true;
    room.everSynced = true;
    if (S.resuming && [...S.rooms.values()].every((r) => r.synced || !r.everSynced)) {
      S.resuming = false;
      debug.resumes++;
      setStatus('resumed');
    }
    if (!S.resuming) flushPending();
    scrollToEnd();
  }

  // ------------------------------------------------------------ actions ---

  function flushPending() {
    if (!S.transport || S.resuming) return;
    for (const [id, pend] of S.pending) {
      if (pend.sentGeneration === S.generation) continue;
      const room = S.rooms.get(pend.room);
      if (!room || !room.synced) continue;
      if (pend.sentGeneration !== null) debug.resent++;
      if (send('room.publish', {room: pend.room, id, body: {text: pend.text}}))
        pend.sentGeneration = S.generation;
    }
  }

  function publish(text) {
    const room = S.rooms.get(S.active);
    if (!room) return;
    const id = `${clientId}-${++publishCounter}`;
    const li = el('li', 'msg mine pending');
    li.dataset.id = id;
    li.append(el('span', 'time', ''), el('span', 'who', S.name), el('span', 'text', text));
    room.list.appendChild(li);
    scrollToEnd();
    S.pending.set(id, {room: room.name, text, sentGeneration: null, li});
    flushPending();
  }

  function joinRoom(name) {
    name = name.trim();
    if (!name) return;
    if (new TextEncoder().encode(name).length > MAX_ROOM_BYTES) {
      showNotice(`A room name has at most ${MAX_ROOM_BYTES} bytes.`);
      return;
    }
    if (!S.rooms.has(name)) {
      S.rooms.set(name, makeRoom(name));
      // Not open yet: onOpen joins every room in S.rooms.
      send('room.join', {room: name});
    }
    activate(name);
  }

  function leaveRoom(name) {
    const room = S.rooms.get(name);
    if (!room) return;
    send('room.leave', {room: name});
    room.list.remove();
    S.rooms.delete(name);
    for (const [id, pend] of S.pending)
      if (pend.room === name) S.pending.delete(id);
    if (S.active === name) S.active = null;
    activate(S.active || (S.rooms.keys().next().value ?? null));
  }

  function activate(name) {
    S.active = name;
    for (const room of S.rooms.values()) {
      room.list.hidden = room.name !== name;
      if (room.name === name) room.unread = 0;
    }
    $('room-title').textContent = name ? `# ${name}` : 'No room';
    $('leave-button').hidden = !name;
    renderTabs();
    renderPresence();
    renderRoomList();
    updateComposer();
    scrollToEnd();
  }

  // ------------------------------------------------------------ rendering ---

  function formatTime(ts) {
    const d = new Date(ts);
    return d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit'});
  }

  function insertMessage(room, p) {
    const body = p.body || {};
    const li = el('li', 'msg');
    li.dataset.seq = String(p.seq);
    if (p.id) li.dataset.id = p.id;
    if (p.id && p.id.startsWith(clientId + '-')) li.classList.add('mine');
    li.append(
        el('span', 'time', formatTime(p.ts)),
        el('span', 'who', typeof body.name === 'string' ? body.name : '?'),
        el('span', 'text', typeof body.text === 'string' ? body.text : JSON.stringify(body)));
    // Seq order; almost always an append. Pending (unsent) ones stay last.
    let before = null;
    for (let n = room.list.lastElementChild; n; n = n.previousElementSibling) {
      if (n.classList.contains('pending') || n.classList.contains('system')) {
        before = n;
        continue;
      }
      if (Number(n.dataset.seq) > p.seq) {
        before = n;
        continue;
      }
      break;
    }
    room.list.insertBefore(li, before);
    if (room.name === S.active) scrollToEnd();
  }

  function renderRoomList() {
    const names = new Map(S.roomList.map((r) => [r.name, r.members]));
    for (const name of S.rooms.keys())
      if (!names.has(name)) names.set(name, 0);
    const ul = $('room-list');
    ul.replaceChildren();
    for (const name of [...names.keys()].sort()) {
      const li = el('li');
      li.dataset.room = name;
      if (S.rooms.has(name)) li.classList.add('joined');
      if (name === S.active) li.classList.add('active');
      li.append(el('span', 'room-name', `# ${name}`), el('span', 'members', String(names.get(name))));
      li.addEventListener('click', () => joinRoom(name));
      ul.appendChild(li);
    }
  }

  function renderTabs() {
    const nav = $('joined-tabs');
    nav.replaceChildren();
    for (const room of S.rooms.values()) {
      const b = el('button', room.name === S.active ? 'active' : '', `# ${room.name}`);
      b.type = 'button';
      b.dataset.room = room.name;
      if (room.unread) b.appendChild(el('span', 'unread', String(room.unread)));
      b.addEventListener('click', () => activate(room.name));
      nav.appendChild(b);
    }
  }

  function renderPresence() {
    const box = $('presence');
    box.replaceChildren();
    const room = S.rooms.get(S.active);
    if (!room) return;
    box.dataset.room = room.name;
    box.append(el('span', '', `${room.presence.length} here: `));
    for (const name of room.presence) box.appendChild(el('span', 'who', name));
  }

  function showCount(n) {
    if (typeof n !== 'number') return;
    $('count').dataset.count = String(n);
    $('count').textContent = `${n} online`;
  }

  function updateComposer() {
    const usable = Boolean(S.name && S.active);
    $('message-input').disabled = !usable;
    $('send-button').disabled = !usable;
  }

  function scrollToEnd() {
    const panes = $('message-panes');
    panes.scrollTop = panes.scrollHeight;
  }

  // ------------------------------------------------------------ wiring ---

  $('name-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('name-input').value.trim();
    if (!name) return;
    S.name = name;
    try { localStorage.setItem('ebb-chat-name', name); } catch (err) { /* private mode */ }
    $('name-error').hidden = true;
    $('name-screen').hidden = true;
    $('chat').hidden = false;
    $('me').textContent = `you are ${name}`;
    send('chat.hello', {name});
    joinRoom(DEFAULT_ROOM);
  });

  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('message-input');
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    publish(text);
  });

  $('new-room-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('new-room-input');
    joinRoom(input.value);
    input.value = '';
  });

  $('leave-button').addEventListener('click', () => leaveRoom(S.active));

  window.addEventListener('pagehide', () => {
    if (S.transport) S.transport.close();
  });

  try {
    const saved = localStorage.getItem('ebb-chat-name');
    if (saved) $('name-input').value = saved;
  } catch (err) { /* private mode */ }

  connect();
})();
