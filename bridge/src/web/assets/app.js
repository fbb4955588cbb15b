// The steward's window: renders the bridge's status from its event stream (api/events),
// live, with nothing but the DOM. Every value goes in as text, never as markup.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

const short = (hex) => hex.slice(0, 8);
const num = (x, digits) => (x === null || x === undefined ? '–' : x.toFixed(digits));

function ago(secs) {
  if (secs < 1) return 'now';
  if (secs < 90) return Math.round(secs) + ' s ago';
  if (secs < 5400) return Math.round(secs / 60) + ' min ago';
  return Math.round(secs / 3600) + ' h ago';
}

const STATES = {
  ready: 'ok', connected: 'ok', busy: 'ok',
  connecting: 'warn', reconnecting: 'warn',
  failed: 'bad', stopped: 'bad', closed: 'bad',
};

function badge(state) {
  return el('span', { class: 'badge ' + (STATES[state] || 'off') }, state);
}

// Bars from 0 to `max`, oldest first.
function bars(values, max) {
  const s = svg('svg', { class: 'spark', viewBox: `0 0 ${values.length} 100`, preserveAspectRatio: 'none' });
  values.forEach((v, i) => {
    const h = v > 0 ? Math.max(4, Math.min(100, (100 * v) / max)) : 0;
    s.append(svg('rect', { x: i + 0.1, width: 0.8, y: 100 - h, height: h }));
  });
  return s;
}

// A line between `lo` and `hi`, oldest first; gaps (no reading) are skipped.
function line(values, lo, hi) {
  const s = svg('svg', { class: 'spark', viewBox: '0 0 100 100', preserveAspectRatio: 'none' });
  const step = values.length > 1 ? 100 / (values.length - 1) : 0;
  const points = values
    .map((v, i) => (v === null ? null : `${i * step},${100 - (100 * (v - lo)) / (hi - lo)}`))
    .filter((p) => p !== null);
  // One reading: a level line across.
  if (points.length === 1) points.push('100,' + points[0].split(',')[1]);
  s.append(svg('polyline', { points: points.join(' ') }));
  return s;
}

function rows(id, items, row) {
  $(id).querySelector('tbody').replaceChildren(...items.map(row));
  const empty = $('no-' + id);
  if (empty) empty.hidden = items.length > 0;
}

function counter(label, value) {
  return el('span', {}, label + ' ', el('b', {}, String(value)));
}

function transport(t) {
  const card = el('div', { class: 'card', 'data-transport': t.name }, el('h3', {}, t.name, badge(t.state)));
  if (t.state === 'disabled') {
    card.append(el('p', { class: 'quiet' }, 'not configured'));
  } else if (t.name === 'iroh') {
    card.append(el('div', { class: 'counters' },
      counter('peers', t.peers.length), counter('operations received', t.ops_received)));
    if (t.peers.length) card.append(el('p', { class: 'id' }, t.peers.map(short).join(' ')));
  } else {
    const c = el('div', { class: 'counters' },
      counter('frames sent', t.frames_sent), counter('frames heard', t.frames_heard),
      counter('frames rejected', t.frames_rejected), counter('ops sent', t.ops_sent),
      counter('ops received', t.ops_received), counter('ops rejected', t.ops_rejected),
      counter('queued', t.queue_depth), counter('send failures', t.send_failures),
      counter('neighbours', t.neighbours.length));
    if (t.name === 'reticulum') c.append(counter('peers', t.peers.length));
    card.append(c);
  }
  return card;
}

function neighbour(n) {
  return el('tr', { 'data-tag': n.tag, 'data-via': n.via },
    el('td', {}, el('span', { class: 'id' }, n.tag), el('small', {}, n.via)),
    el('td', {}, num(n.rssi_dbm, 0) + ' dBm', el('small', {}, 'SNR ' + num(n.snr_db, 1) + ' dB')),
    el('td', {}, ago(n.last_heard_secs_ago), el('small', {}, n.frames + ' frames')),
    el('td', { class: 'trend' }, line(n.history.map((s) => s.rssi_dbm), -140, -30)));
}

// A sub-band's airtime in the rolling hour against its budget, and its last hour, minute
// by minute, drawn against the same budget (any use at all stays visible).
function band(b) {
  const budget = b.budget_secs;
  const share = budget > 0 ? ` ${num((100 * b.used_secs) / budget, 1)} %` : '';
  const history = b.used_secs_history.concat([b.used_secs]);
  const max = budget > 0 ? budget : Math.max(...history);
  return el('tr', { 'data-sub-band': b.sub_band, 'data-used': String(b.used_secs) },
    el('td', {}, b.sub_band), el('td', { class: 'n' }, num(b.used_secs, 1) + ' s', el('small', {}, share)),
    el('td', { class: 'n' }, budget > 0 ? num(budget, 0) + ' s' : 'no limit'),
    el('td', { class: 'trend' }, bars(history, max)));
}

function operation(op) {
  const when = new Date(op.timestamp / 1000).toLocaleTimeString();
  return el('tr', { 'data-op': op.operation_id, 'data-via': op.via },
    el('td', {}, when), el('td', {}, op.app_id || 'region admin'), el('td', {}, op.via),
    el('td', { class: 'id' }, short(op.author)), el('td', { class: 'id' }, short(op.operation_id)),
    el('td', { class: 'n' }, String(op.payload_bytes)));
}

function render(s) {
  $('node-id').textContent = s.node_id;
  $('network-id').textContent = s.network_id;
  $('backlog').textContent = s.import_backlog
    ? s.import_backlog + ' operations from the mesh waiting to be stored' : 'nothing waiting';
  rows('topics', s.topics, (t) => el('tr', { 'data-topic': t.topic_id },
    el('td', {}, t.app_id || 'region admin'), el('td', { class: 'id' }, short(t.region_id)),
    el('td', { class: 'n' }, String(t.operations))));
  $('transports').replaceChildren(...s.transports.map(transport));
  const heard = s.transports.flatMap((t) => t.neighbours.map((n) => Object.assign({ via: t.name }, n)));
  rows('neighbours', heard, neighbour);
  const bands = s.transports.filter((t) => t.name === 'lora').flatMap((t) => t.airtime);
  rows('airtime', bands, band);
  rows('recent', s.recent_operations, operation);
}

function live(text, kind) {
  const b = $('live');
  b.textContent = text;
  b.className = 'badge ' + kind;
}

const events = new EventSource('api/events');
events.addEventListener('status', (e) => {
  render(JSON.parse(e.data));
  live('live', 'ok');
});
events.addEventListener('problem', (e) => live(e.data, 'bad'));
events.onerror = () => live('reconnecting…', 'warn');
