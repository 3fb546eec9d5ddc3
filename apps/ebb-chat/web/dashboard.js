// ebb chat dashboard: live charts fed by the server's chat.stats samples
// (sent every CHAT_STATS_INTERVAL_MS to sessions that sent chat.dashboard).
// Charts are drawn by hand on <canvas>. During a drain the server keeps
// sending samples (state "draining"/"closing", sessions_left) until this
// page's own session is closed, which it does only after every other
// session has ended (or at the drain deadline); the drain panel keeps what
// it saw.
//
// #drain[data-drain] is stable for tests: none, draining (samples coming),
// restarting (our session was closed by the drain), done (reconnected).
'use strict';

(() => {
  const WINDOW_MS = 120000;
  const BACKOFF_MIN_MS = 250;
  const BACKOFF_MAX_MS = 3000;
  const POLL_MS = 500;  // without WebSocket: GET /api/stats

  const $ = (id) => document.getElementById(id);
  const debug = (window.dashDebug = {states: [], samples: 0, drainSamples: [], maxSessionsLeft: 0, closes: []});

  const samples = [];       // {t, connections, rate} (null values: disconnected)
  const drain = {active: false, startedAt: 0, atStart: null, points: [], endedAt: 0, backAt: 0};
  let transport = null;
  let backoff = BACKOFF_MIN_MS;
  let reconnectHint = null;
  let everConnected = false;

  // ------------------------------------------------------------ status ---

  const LABELS = {
    connecting: 'Connecting…',
    connected: 'Live',
    restarting: 'Server restarting…',
    reconnecting: 'Reconnecting…',
    polling: 'Live (HTTP polling)',
  };
  function setStatus(state) {
    const badge = $('status');
    if (badge.dataset.state === state) return;
    debug.states.push(state);
    badge.dataset.state = state === 'polling' ? 'longpoll' : state;
    badge.textContent = LABELS[state];
  }

  // ------------------------------------------------------------ samples ---

  function onStats(p, now = Date.now()) {
    if (typeof p.messages_per_second !== 'number') return;  // the pages' count-only sample
    debug.samples++;
    samples.push({t: now, connections: p.connections, rate: p.messages_per_second});
    while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();

    $('connections').textContent = String(p.connections);
    $('connections').dataset.value = String(p.connections);
    $('longpoll').textContent = `long-polling: ${p.longpoll_sessions}`;
    $('rate').textContent = p.messages_per_second.toFixed(1);
    $('rate').dataset.value = String(p.messages_per_second);
    $('messages-total').textContent = `total since start: ${p.messages_total}`;
    $('server-state').textContent = `server: ${p.state}`;
    $('server-state').dataset.serverState = p.state;

    if (p.state !== 'ready') onDrainSample(p, now);
    else if (drain.startedAt && !drain.active && !drain.backAt) onServerBack(now);
    draw();
  }

  function onDrainSample(p, now) {
    if (!drain.active) {
      drain.active = true;
      drain.startedAt = now;
      drain.points = [];
      drain.endedAt = 0;
      drain.backAt = 0;
      drain.atStart = p.sessions_at_drain_start || p.sessions_left;
    }
    if (p.sessions_at_drain_start) drain.atStart = p.sessions_at_drain_start;
    debug.drainSamples.push({t: now, state: p.state, left: p.sessions_left});
    debug.maxSessionsLeft = Math.max(debug.maxSessionsLeft, p.sessions_left);
    // A drain admits no one, so sessions left never rise; samples are sent
    // from each session's own I/O thread and may arrive out of order: show
    // the lowest seen.
    const prev = drain.points.at(-1);
    const left = prev ? Math.min(prev.left, p.sessions_left) : p.sessions_left;
    drain.points.push({t: now, left});
    $('drain').dataset.drain = 'draining';
    $('drain-headline').textContent = `draining: ${left} sessions left`;
    $('drain-started').textContent = new Date(drain.startedAt).toLocaleTimeString();
    $('drain-at-start').textContent = String(drain.atStart);
    $('drain-left').textContent = String(left);
    $('drain-left').dataset.value = String(left);
    $('drain-back').textContent = '–';
  }

  function onDrainCut(now) {
    if (!drain.active) return;
    drain.active = false;
    drain.endedAt = now;
    $('drain').dataset.drain = 'restarting';
    $('drain-headline').textContent =
        `drained: ${drain.points.length} samples, last ${drain.points.at(-1)?.left ?? '?'} left`;
    samples.push({t: now, connections: null, rate: null});  // a gap in the charts
    draw();
  }

  function onServerBack(now) {
    drain.backAt = now;
    $('drain').dataset.drain = 'done';
    const secs = ((now - drain.startedAt) / 1000).toFixed(1);
    $('drain-back').textContent = `${secs} s`;
    $('drain-headline').textContent = `last drain: ${drain.atStart} sessions, back after ${secs} s`;
  }

  // ------------------------------------------------------------ transport ---

  function connect() {
    if (!('WebSocket' in window)) return poll();
    setStatus(everConnected ? 'reconnecting' : 'connecting');
    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    transport = ws;
    ws.onopen = () => {
      everConnected = true;
      backoff = BACKOFF_MIN_MS;
      reconnectHint = null;
      setStatus('connected');
      ws.send(JSON.stringify({type: 'chat.dashboard', payload: {}}));
    };
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (m.type === 'chat.stats') onStats(m.payload || {});
      if (m.type === 'server.shutdown') {
        reconnectHint = (m.payload || {}).reconnect_ms ?? 1000;
        setStatus('restarting');
      }
    };
    ws.onclose = (e) => {
      transport = null;
      const now = Date.now();
      debug.closes.push({t: now, code: e.code, reason: e.reason});
      if (e.code === 1001 || reconnectHint !== null) {
        onDrainCut(now);
        setStatus('restarting');
        setTimeout(connect, (reconnectHint ?? 1000) + Math.random() * 250);
        reconnectHint = null;
        return;
      }
      onDrainCut(now);
      setStatus(everConnected ? 'reconnecting' : 'connecting');
      setTimeout(connect, backoff);
      backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
    };
  }

  async function poll() {
    for (;;) {
      try {
        const r = await fetch('/api/stats', {cache: 'no-store'});
        if (!r.ok) throw new Error('HTTP ' + r.status);
        setStatus('polling');
        onStats(await r.json());
      } catch (e) {
        onDrainCut(Date.now());
        setStatus('reconnecting');
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  // ------------------------------------------------------------ charts ---

  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim() || '#333';

  // A step for 4 grid lines that reads well: 1, 2, 2.5 or 5 times a power
  // of ten; whole numbers for counts.
  function niceStep(max, integer) {
    const raw = max / 4;
    if (!(raw > 0)) return integer ? 1 : 0.25;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) {
      const step = m * p;
      if (step >= raw && (!integer || Number.isInteger(step))) return step;
    }
    return 10 * p;
  }

  // points: [{x, y}] with y === null for a gap; x in [x0, x1].
  function drawChart(canvas, points, {x0, x1, stroke, xLabels, yUnit = '', step = false,
                                     integer = false, markers = []}) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const padL = 40, padR = 8, padT = 8, padB = 20;
    const pw = w - padL - padR, ph = h - padT - padB;
    const yStep = niceStep(Math.max(0, ...points.filter((p) => p.y !== null).map((p) => p.y)), integer);
    const yMax = 4 * yStep;
    const X = (x) => padL + ((x - x0) / (x1 - x0 || 1)) * pw;
    const Y = (y) => padT + ph - (y / yMax) * ph;

    g.font = '11px system-ui, sans-serif';
    g.strokeStyle = color('--line');
    g.fillStyle = color('--muted');
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = yStep * i;
      const y = Math.round(Y(v)) + 0.5;
      g.beginPath();
      g.moveTo(padL, y);
      g.lineTo(padL + pw, y);
      g.stroke();
      g.fillText(`${Number.isInteger(v) ? v : v.toFixed(1)}${yUnit}`, padL - 4, y);
    }
    g.textBaseline = 'top';
    xLabels.forEach(([x, label], i) => {
      g.textAlign = i === 0 ? 'left' : (i === xLabels.length - 1 ? 'right' : 'center');
      g.fillText(label, X(x), padT + ph + 4);
    });
    // Vertical dashed markers with a label at the top.
    for (const {x, label} of markers) {
      const mx = Math.round(X(x)) + 0.5;
      g.save();
      g.setLineDash([4, 3]);
      g.strokeStyle = color('--muted');
      g.beginPath();
      g.moveTo(mx, padT);
      g.lineTo(mx, padT + ph);
      g.stroke();
      g.restore();
      g.fillStyle = color('--muted');
      g.textAlign = 'left';
      g.fillText(label, mx + 4, padT);
    }

    // The line, broken at gaps, with a light area under it.
    const runs = [];
    let run = [];
    for (const p of points) {
      if (p.y === null) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push(p);
      }
    }
    if (run.length) runs.push(run);
    for (const r of runs) {
      g.beginPath();
      r.forEach((p, i) => {
        const x = X(p.x), y = Y(p.y);
        if (i === 0) g.moveTo(x, y);
        else if (step) {
          g.lineTo(x, Y(r[i - 1].y));
          g.lineTo(x, y);
        } else g.lineTo(x, y);
      });
      g.strokeStyle = stroke;
      g.lineWidth = 2;
      g.stroke();
      g.lineTo(X(r.at(-1).x), Y(0));
      g.lineTo(X(r[0].x), Y(0));
      g.closePath();
      g.globalAlpha = 0.12;
      g.fillStyle = stroke;
      g.fill();
      g.globalAlpha = 1;
      if (r.length === 1) {
        g.fillStyle = stroke;
        g.beginPath();
        g.arc(X(r[0].x), Y(r[0].y), 3, 0, 2 * Math.PI);
        g.fill();
      }
    }
  }

  function draw() {
    const now = Date.now();
    const x0 = now - 60000;
    const timeLabels = [[x0, '-60 s'], [now - 30000, '-30 s'], [now, 'now']];
    const recent = samples.filter((s) => s.t >= x0 - 1000);
    drawChart($('chart-connections'), recent.map((s) => ({x: s.t, y: s.connections})),
              {x0, x1: now, stroke: color('--accent'), xLabels: timeLabels, step: true, integer: true});
    drawChart($('chart-rate'), recent.map((s) => ({x: s.t, y: s.rate})),
              {x0, x1: now, stroke: color('--ok'), xLabels: timeLabels});
    if (drain.startedAt) {
      const end = Math.max(drain.points.at(-1)?.t ?? drain.startedAt, drain.startedAt + 2000);
      const dx0 = drain.startedAt - 250;
      const pts = drain.points.map((p) => ({x: p.t, y: p.left}));
      if (drain.endedAt) pts.push({x: drain.endedAt, y: pts.at(-1)?.y ?? 0});
      const x1 = Math.max(end, drain.endedAt) + 250;
      drawChart($('chart-drain'), pts, {
        x0: dx0, x1, stroke: color('--warn'), step: true, integer: true,
        xLabels: [[dx0, 'start'], [x1, `+${((x1 - drain.startedAt) / 1000).toFixed(1)} s`]],
        markers: drain.endedAt ? [{x: drain.endedAt, label: 'this dashboard closed'}] : [],
      });
    } else {
      drawChart($('chart-drain'), [], {x0: 0, x1: 1, stroke: color('--warn'), xLabels: [], integer: true});
    }
  }

  window.addEventListener('resize', draw);
  setInterval(draw, 1000);  // keep the time axis moving while nothing arrives
  connect();
})();
