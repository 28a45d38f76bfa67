/* The synclog console: reads /api/v1/ and draws the page for the route in the URL's hash (#/, #/topics,
 * #/topic/NAME, #/groups, #/group/NAME, #/sync). Every few seconds it reads again and swaps the new page in at
 * once (built off-screen, so nothing flickers), except while the operator types in a form field. Text from the
 * broker only ever goes through textContent, never innerHTML. No framework, no build step. */
"use strict";

const REFRESH_MS = 5000;
const state = { browse: {} }; /* the message browser's draft (browseForm) */
let timer = null, drawing = false, queued = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined) continue;
    e.appendChild(typeof kid === "object" ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

async function api(path) {
  const r = await fetch("/api/v1/" + path, { cache: "no-store" });
  const body = await r.json().catch(() => ({ error: "the broker answered " + r.status + " with no JSON" }));
  if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
  return body;
}

const num = (n) => (n === null || n === undefined) ? "-" : Number(n).toLocaleString("en-US");
const rate = (n) => Number(n || 0).toLocaleString("en-US", { maximumFractionDigits: 1 });
function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; n = Number(n || 0);
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function dur(ms) {
  ms = Number(ms || 0); if (ms < 0) return "-";
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + " s"; if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor(s % 86400 / 3600) + " h";
}
const when = (ms) => ms > 0 ? new Date(Number(ms)).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "-";
const ago = (ms, now) => ms > 0 ? dur((now || Date.now()) - ms) + " ago" : "-";
const stateTag = (s) => el("span", { class: "state " + (s || "") }, s || "-");
const card = (k, v) => el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: "v" }, v));
const enc = encodeURIComponent;

function table(heads, rows, caption) {
  return el("div", { class: "scroll" }, el("table", {},
    caption ? el("caption", { class: "note" }, caption) : null,
    el("thead", {}, el("tr", {}, heads.map((h) => el("th", { scope: "col", class: h.endsWith("#") ? "n" : null },
      h.replace(/#$/, ""))))),
    el("tbody", {}, rows.length ? rows : [el("tr", {}, el("td", { colspan: heads.length, class: "note" }, "none"))])));
}
const row = (...cells) => el("tr", {}, cells.map((c) => c && c.td ? c.td : el("td", {}, c)));
const n = (v) => ({ td: el("td", { class: "n" }, v) });

/* A line chart of points [{t_ms, a, b}] in SVG: two series, a shared scale from 0, labelled ends. */
function chart(points, keyA, keyB, labelA, labelB, fmt) {
  const W = 600, H = 140, P = 28, NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "chart"); svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...points.map((p) => Math.max(p[keyA] || 0, keyB ? p[keyB] || 0 : 0)));
  svg.setAttribute("aria-label", `${labelA}${keyB ? " and " + labelB : ""}: ${points.length} points, highest ${fmt(max)}`);
  const t0 = points.length ? points[0].t_ms : 0, t1 = points.length ? points[points.length - 1].t_ms : 1;
  const x = (t) => P + (W - 2 * P) * (t1 > t0 ? (t - t0) / (t1 - t0) : 1);
  const y = (v) => H - P + (2 * P - H) * (v / max) * 0.95;
  const line = (key, cls, scale) => {
    if (points.length < 1) return;
    const pl = document.createElementNS(NS, "polyline");
    pl.setAttribute("class", cls);
    pl.setAttribute("points", points.map((p) => `${x(p.t_ms).toFixed(1)},${y((p[key] || 0) * scale).toFixed(1)}`).join(" "));
    svg.appendChild(pl);
  };
  const text = (tx, ty, s) => { const t = document.createElementNS(NS, "text"); t.setAttribute("x", tx); t.setAttribute("y", ty); t.textContent = s; svg.appendChild(t); };
  line(keyA, "a", 1); if (keyB) line(keyB, "b", 1);
  text(2, 12, fmt(max)); text(2, H - P + 12, "0");
  if (points.length) { text(P, H - 4, when(t0)); text(W - P - 150, H - 4, when(t1)); }
  else text(W / 2 - 80, H / 2, "no samples yet (one every 10 s)");
  return el("figure", { class: "chart" }, svg,
    el("figcaption", { class: "legend" }, el("span", { class: "a" }, "\u2014 " + labelA), keyB ? el("span", { class: "b" }, "- - " + labelB) : null));
}

/* ---- pages ---- */

async function overview() {
  const o = await api("overview");
  const attention = o.groups.filter((g) => ["lost", "stalled", "stopped"].includes(g.summary.state));
  return [
    el("h1", {}, "Overview"),
    attention.length ? el("p", { class: "error", role: "alert" },
      `${attention.length} group${attention.length > 1 ? "s need" : " needs"} attention: ` +
      attention.map((g) => `${g.summary.group} (${g.summary.state})`).join(", ")) : null,
    failedChecks(o.contract_checks_failed),
    el("div", { class: "cards" },
      card("broker", o.broker_version), card("uptime", dur(o.uptime_ms)),
      card("disk used by data", bytes(o.data_bytes)), card("disk free", bytes(o.disk_free_bytes) + " of " + bytes(o.disk_total_bytes)),
      card("records/s in", rate(o.records_in_per_s)), card("records/s out", rate(o.records_out_per_s)),
      card("connections", num(o.connections)), card("topics", num(o.topics))),
    el("h2", {}, "Records per second, last hour"),
    chart(o.rates.points, "in_per_s", "out_per_s", "in", "out", rate),
    el("h2", {}, "Groups, worst first"),
    groupTable(o.groups.map((g) => ({ ...g.summary, applier: g.applier })), o.now_ms),
  ];
}

/* Topics whose last `synclog contract check` failed: a problem, like a stalled group. */
function failedChecks(runs) {
  if (!runs || !runs.length) return null;
  return el("p", { class: "error", role: "alert" },
    `${runs.length} topic${runs.length > 1 ? "s" : ""} failed the last contract check: `,
    runs.map((r, i) => [i ? ", " : "", el("a", { href: "#/topic/" + enc(r.topic) }, r.topic), ` (${r.summary}, ${when(r.finished_ms)})`]));
}

/* The topic's sync contract: the current version, who set it and when, what the broker saw of its produce
 * clause, the last `contract check`, and the text as the operator wrote it (textContent, never markup). */
function contractSection(t) {
  const c = t.contract, k = t.contract_check;
  const check = k ? el("p", { class: k.ok ? "" : "error" }, `last contract check ${when(k.finished_ms)}: ` + (k.ok ? "ok" : "FAILED") + " \u2014 " + k.summary)
    : el("p", { class: "note" }, "no `synclog contract check` has been reported for this topic");
  if (!c) return [el("h2", {}, "Sync contract"), el("p", { class: "note" }, "This topic has no sync contract (`synclog contract set TOPIC FILE` sets one)."), check];
  const v = c.current;
  /* The broker counts only for a produce clause (delivery.duplicates: idempotency-key); without one its zeros
   * would say nothing. */
  let clause = null;
  try { const d = JSON.parse(v.contract).delivery; clause = d && d.duplicates === "idempotency-key" ? (d.without_idempotency_key || "count") : null; }
  catch (err) { /* not JSON: no clause to show */ }
  const e = clause ? c.enforcement : null;
  return [
    el("h2", {}, "Sync contract"),
    el("div", { class: "cards" }, card("version", num(v.version)), card("set by", v.set_by || "-"), card("set", when(v.set_at_ms)),
      e ? card("live records since " + when(e.since_ms), num(e.live_records)) : null,
      e ? card("without idempotency key (" + clause + ")", num(e.records_without_idempotency_key)) : null,
      e ? card("refused", num(e.records_refused) + " records in " + num(e.batches_refused) + " batches") : null),
    clause ? null : el("p", { class: "note" }, "no produce clause (delivery.duplicates: idempotency-key): the broker enforces nothing of this contract on produce"),
    check,
    el("pre", { class: "value contract" }, v.text),
  ];
}

function groupTable(groups, now) {
  return table(["group", "state", "since", "members#", "lag (records)#", "lag (time)#", "applied#", "dead-lettered#"],
    groups.map((g) => row(el("a", { href: "#/group/" + enc(g.group) }, g.group), stateTag(g.state), ago(g.state_since_ms, now),
      n(num(g.members)), n(num(g.lag)), n(dur(g.lag_ms)), n(g.applier ? num(g.applier.applied) : "-"),
      n(g.applier ? num(g.applier.dead_lettered) : "-"))));
}

async function topics(q) {
  const t = await api("topics" + (q.start_after ? "?start_after=" + enc(q.start_after) : ""));
  const ret = (ms) => ms < 0 ? "forever" : dur(ms);
  return [
    el("h1", {}, `Topics (${num(t.total)})`),
    table(["topic", "partitions#", "records#", "size#", "retention", "retention bytes#", "compaction", "in/s#", "out/s#"],
      t.topics.map(({ config: c, status: s }) => row(el("a", { href: "#/topic/" + enc(c.name) }, c.name), n(num(c.partitions)),
        n(s ? num(s.records) : "-"), n(s ? bytes(s.bytes) : "-"), ret(c.retention_ms),
        n(c.retention_bytes < 0 ? "no limit" : bytes(c.retention_bytes)),
        c.compact ? "compact, tombstones kept " + dur(c.delete_retention_ms) : "delete",
        n(s ? rate(s.records_in_per_s) : "-"), n(s ? rate(s.records_out_per_s) : "-")))),
    t.next_start_after ? el("p", {}, el("a", { href: "#/topics?start_after=" + enc(t.next_start_after) }, "next topics \u2192")) : null,
  ];
}

/* The message browser's fields live in the page's address (#/topic/T?partition=P&offset=O|time=MS&limit=N), so a
 * page of records can be bookmarked and shared; what is typed but not yet submitted is a draft kept apart, so a
 * refresh does not undo it. */
function browseForm(name, q, partitions) {
  if (state.browse.hash !== location.hash) {
    state.browse = { hash: location.hash, partition: q.partition || "0", offset: q.offset || "", limit: q.limit || "20",
      time: q.time ? new Date(Number(q.time)).toISOString().slice(0, 19) : "" };
  }
  const b = state.browse;
  const set = (k) => (ev) => { b[k] = ev.target.value; };
  const submit = (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams({ partition: b.partition || "0", limit: b.limit || "20" });
    if (b.offset) p.set("offset", b.offset);
    else if (b.time && !isNaN(Date.parse(b.time + "Z"))) p.set("time", String(Date.parse(b.time + "Z")));
    history.replaceState(null, "", "#/topic/" + enc(name) + "?" + p.toString());
    state.browse.hash = location.hash;
    draw("submit");
  };
  return el("form", { class: "browse", onsubmit: submit },
    el("label", {}, "partition", el("input", { type: "number", min: 0, max: partitions - 1, value: b.partition, name: "partition", oninput: set("partition") })),
    el("label", {}, "up to offset", el("input", { type: "number", min: 0, value: b.offset, name: "offset", placeholder: "newest", oninput: set("offset") })),
    el("label", {}, "or up to time (UTC)", el("input", { type: "datetime-local", step: 1, value: b.time, name: "time", oninput: set("time") })),
    el("label", {}, "records", el("select", { name: "limit", onchange: set("limit") },
      [...new Set([10, 20, 50, 100, Number(b.limit) || 20])].sort((x, y) => x - y)
        .map((k) => el("option", { value: k, selected: String(b.limit) === String(k) }, k)))),
    el("button", { type: "submit" }, "Show"));
}

function messagesQuery(q) {
  const p = new URLSearchParams({ partition: q.partition || "0", limit: q.limit || "20" });
  if (q.offset) p.set("offset", q.offset);
  else if (q.time) p.set("time", q.time);
  return p.toString();
}

function prettyValue(v) {
  if (v === null) return "(null: a delete)";
  try { const j = JSON.parse(v); if (typeof j === "object" && j !== null) return JSON.stringify(j, null, 2); } catch (e) { /* not JSON */ }
  return v;
}

// Every header of a record, one a line: name=value; a value that is not UTF-8 as base64, said so; cut ones marked.
function headersCell(r) {
  if (!r.headers || r.headers.length === 0) return "-";
  return el("div", { class: "headers" }, ...r.headers.map((h) => el("div", { class: "header" },
    h.key + "=" + (h.value === null ? "(null)" : h.value) + (h.encoding === "base64" ? " (base64)" : "") + (h.value_truncated ? " \u2026" : ""))),
    r.headers_truncated ? el("div", { class: "note" }, "\u2026 (more headers or bytes not shown)") : null,
    r.headers_error ? el("div", { class: "error" }, r.headers_error) : null);
}

function messagesTable(m) {
  return [
    el("p", { class: "note" }, `partition ${m.partition}: offsets ${num(m.earliest_offset)} to ${num(m.next_offset - 1)} stored; ` +
      `showing ${m.range[0]}..${m.range[1] - 1}, newest first` + (m.complete ? "" : " (incomplete: the log moved while it was read)")),
    table(["offset#", "time", "key", "version#", "op", "origin", "headers", "value"],
      m.records.map((r) => row(n(r.offset), when(r.timestamp_ms), r.key === null ? "(null)" : r.key, n(r.version === null ? "-" : r.version),
        r.op, r.origin, headersCell(r),
        el("pre", { class: "value" }, prettyValue(r.value) + (r.value_truncated ? `\n\u2026 (${num(r.value_bytes)} bytes in all)` : ""))))),
    m.older_offset !== null ? el("p", {}, el("a", { href: `#/topic/${enc(m.topic)}?partition=${m.partition}&offset=${m.older_offset}&limit=${Math.max(1, m.range[1] - m.range[0])}` },
      "older records \u2192")) : null,
  ];
}

async function topic(name, q) {
  const from = q.from_partition || 0;
  const t = await api("topics/" + enc(name) + "?from_partition=" + enc(from));
  const c = t.config || {};
  let browsed = null;
  try { browsed = messagesTable(await api("topics/" + enc(name) + "/messages?" + messagesQuery(q))); }
  catch (e) { browsed = el("p", { class: "error" }, e.message); }
  return [
    el("h1", {}, "Topic " + name),
    el("div", { class: "cards" }, card("partitions", num(t.partition_count)),
      card("retention", c.retention_ms < 0 ? "forever" : dur(c.retention_ms)),
      card("retention bytes", c.retention_bytes < 0 ? "no limit" : bytes(c.retention_bytes)),
      card("cleanup", c.compact ? "compact" : "delete"), card("segment", bytes(c.segment_bytes) + " / " + dur(c.segment_ms))),
    el("h2", {}, "Partitions"),
    table(["partition#", "earliest offset#", "next offset#", "size#", "segments#", "state"],
      t.partitions.map((p) => row(n(p.partition), n(num(p.earliest_offset)), n(num(p.next_offset)), n(bytes(p.bytes)), n(num(p.segments)),
        p.error && p.error !== "NONE" ? el("span", { class: "error" }, p.error_message || p.error) : "open"))),
    t.next_from_partition !== null ? el("p", {}, el("a", { href: `#/topic/${enc(name)}?from_partition=${t.next_from_partition}` }, "next partitions \u2192")) : null,
    contractSection(t),
    el("h2", {}, "Messages"),
    browseForm(name, q, t.partition_count),
    browsed,
  ];
}

async function groups(q) {
  const g = await api("groups" + (q.start_after ? "?start_after=" + enc(q.start_after) : ""));
  return [
    el("h1", {}, "Groups"),
    groupTable(g.groups, Date.now()),
    g.next_start_after ? el("p", {}, el("a", { href: "#/groups?start_after=" + enc(g.next_start_after) }, "next groups \u2192")) : null,
  ];
}

async function group(name, q) {
  const r = await api("groups/" + enc(name) + (q.from ? "?from=" + enc(q.from) : ""));
  const d = r.describe, a = d.applier;
  return [
    el("h1", {}, "Group " + name + " ", stateTag(d.state)),
    el("div", { class: "cards" }, card("members", num(d.members.length)), card("generation", num(d.generation)),
      card("stalled after", d.settings ? (d.settings.stall_after_ms ? dur(d.settings.stall_after_ms) : "broker default") : "-")),
    a ? [el("h2", {}, "Applier " + (a.target || "")),
      el("div", { class: "cards" }, card("applied", num(a.applied)), card("stale", num(a.stale)), card("duplicate", num(a.duplicate)),
        card("deleted", num(a.deleted)), card("dead-lettered", num(a.dead_lettered)), card("reported", ago(a.reported_ms)))] : null,
    el("h2", {}, "Lag, last ten minutes"),
    r.lag_history.tracked ? [chart(r.lag_history.points, "lag", null, "records not yet consumed (all partitions)", "", num),
      chart(r.lag_history.points, "lag_ms", null, "age of the oldest unconsumed record (largest partition)", "", dur)]
      : el("p", { class: "note" }, "no lag history for this group (kept for the first 1,024 groups by name)"),
    el("h2", {}, "Partitions"),
    table(["topic", "partition#", "state", "since", "committed#", "next offset#", "lag (records)#", "lag (time)#", "member", "last commit"],
      d.partitions.map((p) => row(el("a", { href: "#/topic/" + enc(p.topic) }, p.topic), n(p.partition), stateTag(p.state), ago(p.state_since_ms),
        n(p.committed < 0 ? "none" : num(p.committed)), n(num(p.next_offset)), n(num(p.lag)), n(dur(p.lag_ms)), p.member_id || "-", ago(p.last_commit_ms)))),
    r.next_from !== null ? el("p", {}, el("a", { href: `#/group/${enc(name)}?from=${r.next_from}` }, "next partitions \u2192")) : null,
    el("h2", {}, "Members"),
    table(["member", "client", "host", "last heartbeat"], d.members.map((m) => row(m.member_id, m.client_id, m.client_host || "-", ago(m.last_heartbeat_ms)))),
  ];
}

async function sync() {
  const s = await api("sync");
  const letters = [];
  for (const d of s.dead_letter_topics.slice(0, 20)) {
    letters.push(el("h2", {}, `Newest dead letters of ${d.source_topic} (${num(d.letters)} in ${d.topic})`));
    try { letters.push(messagesTable(await api("topics/" + enc(d.topic) + "/messages?partition=0&limit=5"))); }
    catch (e) { letters.push(el("p", { class: "error" }, e.message)); }
  }
  return [
    el("h1", {}, "Sync"),
    el("h2", {}, "Dead-letter topics"),
    table(["topic", "of topic", "letters#", "size#"], s.dead_letter_topics.map((d) =>
      row(el("a", { href: "#/topic/" + enc(d.topic) }, d.topic), d.source_topic, n(num(d.letters)), n(bytes(d.bytes))))),
    letters,
    failedChecks(s.contract_checks_failed),
    el("h2", {}, "Last backfill, reconcile and contract check runs"),
    table(["kind", "topic", "target", "finished", "result", "rows#", "differences#", "diff ratio#", "repaired#", "summary"],
      s.runs.map((r) => row(r.kind, r.topic, r.target, when(r.finished_ms), r.ok ? "ok" : el("span", { class: "error" }, "failed"),
        n(num(r.rows)), n(r.kind === "reconcile" ? num(r.differences) : "-"), n(r.kind === "reconcile" ? (r.diff_ratio * 100).toFixed(2) + " %" : "-"), n(r.kind === "reconcile" ? num(r.repaired) : "-"), r.summary))),
    el("p", { class: "note" }, "A topic's sync contract is on its page; runs of kind contract are `synclog contract check`."),
  ];
}

/* ---- routing and refresh ---- */

function route() {
  const h = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const [path, qs] = h.split("?");
  const q = Object.fromEntries(new URLSearchParams(qs || ""));
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "topics") return { nav: "topics", page: () => topics(q) };
  if (parts[0] === "topic" && parts[1]) return { nav: "topics", page: () => topic(parts.slice(1).join("/"), q) };
  if (parts[0] === "groups") return { nav: "groups", page: () => groups(q) };
  if (parts[0] === "group" && parts[1]) return { nav: "groups", page: () => group(parts.slice(1).join("/"), q) };
  if (parts[0] === "sync") return { nav: "sync", page: () => sync() };
  return { nav: "overview", page: () => overview() };
}

/* mode: "nav" (a new page: focus it, from the top), "submit" (the browser's form: redraw, keep the place) or
 * "refresh" (the timer: skipped while the operator types in a field). */
async function draw(mode) {
  if (drawing) { queued = mode === "refresh" ? queued || mode : mode; return; }
  drawing = true;
  clearTimeout(timer);
  const main = document.getElementById("main");
  const r = route();
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.nav === r.nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  let content;
  try { content = await r.page(); }
  catch (e) { content = [el("p", { class: "error", role: "alert" }, "Could not load this page: " + e.message)]; }
  const active = document.activeElement;
  const typing = main.contains(active) && ["INPUT", "SELECT"].includes(active.tagName);
  if (!typing || mode !== "refresh") {
    const y = window.scrollY, field = main.contains(active) && active.name ? active.name : null;
    main.replaceChildren(...[content].flat(3).filter(Boolean));
    if (mode === "nav") { main.focus({ preventScroll: true }); window.scrollTo(0, 0); } else window.scrollTo(0, y);
    /* The keyboard stays where it was: the same field of the new form. */
    const again = field && mode !== "nav" ? main.querySelector(`[name="${field}"]`) : null;
    if (again) again.focus({ preventScroll: true });
    document.getElementById("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
  }
  drawing = false;
  if (queued) { const m = queued; queued = null; draw(m); return; }
  timer = setTimeout(() => draw("refresh"), REFRESH_MS);
}

window.addEventListener("hashchange", () => draw("nav"));
draw("nav");
