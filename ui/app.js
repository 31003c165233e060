// reactor dashboard. Plain DOM, no build step; charts by Chart.js (Debian's
// libjs-chart.js, served by the agent from /usr/share/javascript). Every
// live number arrives through one Server-Sent Events stream per page
// (/v1/stream), never a poll per chart. Data is written with textContent
// only, so nothing the agent returns can become markup.
"use strict";

const PAGE_SIZE = 25;          // endpoints per overview page
const HISTORY_S = 600;         // the endpoint page charts the last 10 minutes
const SPARK_POINTS = 60;       // the overview's sparklines: the last minute
const LOG_LINES = 300;

const app = {
  csrf: "",
  manager: "",
  stream: null,                // the page's EventSource
  charts: [],                  // Chart instances of the page
  timers: [],
  overviewPage: 0,
  overviewFilter: "",
};

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function main() { return document.getElementById("main"); }

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || ("HTTP " + status));
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body) {
  const headers = {"Accept": "application/json"};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = app.csrf;
  const res = await fetch(path, {method, headers, credentials: "same-origin",
                                 body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401 && path !== "/v1/session") { showLogin("Your session ended; log in again."); }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const d = digits === undefined ? 1 : digits;
  return Number(v).toFixed(d);
}
function fmtMs(seconds) { return seconds === null || seconds === undefined ? "–" : fmt(seconds * 1000, 0) + " ms"; }
function fmtRange(r) {
  if (!r) return "contradicting rules";
  return "[" + r[0] + ", " + (r[1] === null ? "∞" : r[1]) + "]";
}
function stateBadge(s) { return el("span", {class: "state state-" + s, text: s}); }
function timeText(ms) { return new Date(ms).toLocaleTimeString(); }

function teardown() {
  if (app.stream) { app.stream.close(); app.stream = null; }
  for (const c of app.charts) c.destroy();
  app.charts = [];
  for (const t of app.timers) { clearInterval(t); clearTimeout(t); }
  app.timers = [];
}

function openStream(query, handlers, onOpen) {
  const es = new EventSource("/v1/stream?" + query, {withCredentials: true});
  for (const [name, fn] of Object.entries(handlers)) {
    es.addEventListener(name, (ev) => {
      let data = null;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      fn(data);
    });
  }
  es.onerror = async () => {
    const note = document.getElementById("stream-note");
    if (note) note.textContent = "Live updates interrupted; reconnecting…";
    if (es.readyState !== EventSource.CLOSED || app.stream !== es) return;
    // Refused (not a network blip): a session lost with an agent restart
    // asks for the token again; a full stream (503) is retried later.
    try {
      await api("GET", "/v1/session");
    } catch (e) {
      if (e.status === 401) { showLogin("Your session ended; log in again."); return; }
    }
    app.timers.push(setTimeout(() => { if (app.stream === es) route(); }, 5000));
  };
  es.onopen = () => {
    const note = document.getElementById("stream-note");
    if (note) note.textContent = "";
    if (onOpen) onOpen();
  };
  app.stream = es;
  return es;
}

// ---------------------------------------------------------------- charts

function lineChart(canvas, series, opts) {
  const o = opts || {};
  /* global Chart */
  const chart = new Chart(canvas, {
    type: "line",
    data: {datasets: series.map((s) => ({
      label: s.label, data: [], borderColor: s.color, backgroundColor: s.color, borderWidth: 1.5,
      pointRadius: 0, stepped: !!s.stepped, borderDash: s.dash || [], spanGaps: true,
    }))},
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      interaction: {mode: "nearest", intersect: false},
      plugins: {legend: {display: !o.spark && series.length > 1, labels: {boxWidth: 12}},
                tooltip: {enabled: !o.spark}},
      scales: {
        x: {type: "linear", display: !o.spark,
            ticks: {maxTicksLimit: 6, callback: (v) => {
              const ago = Math.round((Date.now() / 1000) - v);
              return ago <= 0 ? "now" : "-" + (ago >= 60 ? Math.round(ago / 60) + "m" : ago + "s");
            }}},
        y: {display: !o.spark, beginAtZero: true, ticks: {maxTicksLimit: 5}},
      },
    },
  });
  app.charts.push(chart);
  return chart;
}

function pushPoints(chart, t, values, keep) {
  chart.data.datasets.forEach((ds, i) => {
    const y = values[i];
    ds.data.push({x: t, y: (y === null || y === undefined) ? null : y});
    while (ds.data.length > 0 && ds.data[0].x < t - keep) ds.data.shift();
  });
  chart.options.scales.x.min = t - keep;
  chart.options.scales.x.max = t;
  chart.update("none");
}

// ---------------------------------------------------------------- login

function showLogin(message) {
  teardown();
  app.csrf = "";
  document.getElementById("nav").hidden = true;
  const err = el("p", {class: "error", id: "login-error", role: "alert", text: message || ""});
  const input = el("input", {type: "password", id: "token", name: "token", autocomplete: "current-password",
                              "aria-describedby": "token-help login-error", required: true});
  const form = el("form", {class: "login", id: "login-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    err.textContent = "Checking…";
    try {
      const r = await api("POST", "/v1/session", {token: input.value});
      app.csrf = r.csrf;
      app.manager = r.manager;
      input.value = "";
      loggedIn();
    } catch (e) {
      err.textContent = e.message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    } finally {
      button.disabled = false;
    }
  }},
    el("h2", {text: "Log in"}),
    el("div", {class: "field"},
       el("label", {for: "token", text: "API token"}),
       input,
       el("p", {class: "muted", id: "token-help",
                text: "Paste the agent's token once (the contents of its token_file, e.g. /etc/reactor/token). " +
                      "The browser keeps only a session cookie."})),
    err,
    el("button", {type: "submit", class: "primary", id: "login-button", text: "Log in"}));
  main().replaceChildren(form);
  input.focus();
}

function loggedIn() {
  const nav = document.getElementById("nav");
  nav.hidden = false;
  document.getElementById("who").textContent = app.manager ? "manager " + app.manager : "";
  route();
}

// ---------------------------------------------------------------- overview

async function showOverview() {
  const root = el("section", {"aria-labelledby": "overview-title"});
  const filter = el("input", {type: "search", id: "filter", placeholder: "name contains…", value: app.overviewFilter,
                               "aria-label": "Filter endpoints by name"});
  const prevButton = el("button", {type: "button", id: "page-prev", text: "‹ Previous",
                                   onclick: () => { app.overviewPage--; render(); }});
  const pageInfo = el("span", {id: "page-info"});
  const nextButton = el("button", {type: "button", id: "page-next", text: "Next ›",
                                   onclick: () => { app.overviewPage++; render(); }});
  const pager = el("div", {class: "pager", role: "navigation", "aria-label": "Pages of endpoints"},
                   prevButton, pageInfo, nextButton);
  const tbody = el("tbody", {id: "endpoint-rows"});
  const table = el("table", {id: "endpoints"},
    el("caption", {id: "endpoints-caption", text: "Endpoints"}),
    el("thead", {}, el("tr", {},
      el("th", {scope: "col", text: "Endpoint"}), el("th", {scope: "col", text: "State"}),
      el("th", {scope: "col", class: "num", text: "Healthy / target"}),
      el("th", {scope: "col", class: "hide-narrow", text: "Range"}),
      el("th", {scope: "col", class: "num", text: "Rate /s"}),
      el("th", {scope: "col", class: "num", text: "p95"}),
      el("th", {scope: "col", class: "num", text: "Errors /s"}),
      el("th", {scope: "col", class: "hide-narrow", text: "Last minute"}))),
    tbody);
  const mgrBody = el("tbody", {id: "manager-rows"});
  root.append(
    el("h2", {id: "overview-title", text: "Overview"}),
    el("p", {class: "notice", id: "stream-note", role: "status"}),
    el("div", {class: "toolbar"}, el("label", {for: "filter", class: "muted", text: "Filter"}), filter),
    pager,
    el("div", {class: "table-wrap"}, table),
    el("h3", {text: "Managers"}),
    el("div", {class: "table-wrap"}, el("table", {id: "overview-managers"},
      el("thead", {}, el("tr", {}, el("th", {scope: "col", text: "Manager"}),
        el("th", {scope: "col", class: "num", text: "Slots used / total"}))),
      mgrBody)));
  main().replaceChildren(root);

  let all = [];
  const rows = new Map();      // name → {cells, spark}
  const load = async () => {
    try {
      const r = await api("GET", "/v1/endpoints");
      all = r.endpoints;
    } catch (e) {
      if (e.status !== 401) document.getElementById("stream-note").textContent = e.message;
      return;
    }
    render();
  };
  const render = () => {
    const f = app.overviewFilter;
    const shown = all.filter((e) => !f || e.name.includes(f));
    const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    app.overviewPage = Math.min(app.overviewPage, pages - 1);
    const page = shown.slice(app.overviewPage * PAGE_SIZE, (app.overviewPage + 1) * PAGE_SIZE);
    const names = page.map((e) => e.name);
    const same = names.length === rows.size && names.every((n) => rows.has(n));
    // The pager's controls are made once and updated in place: a reload
    // neither steals their focus nor swaps them under a click.
    prevButton.disabled = app.overviewPage === 0;
    nextButton.disabled = app.overviewPage >= pages - 1;
    pageInfo.textContent = "Page " + (app.overviewPage + 1) + " of " + pages + " (" + shown.length + " endpoints)";
    for (const e of page) {
      if (rows.has(e.name)) updateRow(rows.get(e.name), e);
    }
    if (same && app.stream) return;
    if (app.stream) { app.stream.close(); app.stream = null; }
    for (const c of app.charts) c.destroy();
    app.charts = [];
    rows.clear();
    tbody.replaceChildren();
    for (const e of page) {
      const cells = {
        state: el("td", {}), healthy: el("td", {class: "num"}), range: el("td", {class: "hide-narrow"}),
        rate: el("td", {class: "num"}), p95: el("td", {class: "num"}), errors: el("td", {class: "num"}),
      };
      const canvas = el("canvas", {"aria-hidden": "true"});
      const spark = el("td", {class: "hide-narrow"}, el("div", {class: "spark"}, canvas));
      tbody.append(el("tr", {"data-endpoint": e.name},
        el("th", {scope: "row"}, el("a", {href: "#/endpoint/" + encodeURIComponent(e.name), text: e.name})),
        cells.state, cells.healthy, cells.range, cells.rate, cells.p95, cells.errors, spark));
      const row = {cells, chart: lineChart(canvas, [{label: "rate", color: "#0b5cad"}], {spark: true})};
      rows.set(e.name, row);
      updateRow(row, e);
    }
    if (names.length === 0) {
      tbody.append(el("tr", {}, el("td", {colspan: 8, class: "muted", text: "No endpoints" + (f ? " match." : " yet.")})));
    }
    // Every log's live events: a manage or unmanage anywhere reloads the
    // list, and so does the stream's (re)opening, which covers what changed
    // before it connected.
    openStream("log=*&sample=" + names.map(encodeURIComponent).join(",") + "&managers=1", {
      log: (e) => { if (e.kind === "manage" || e.kind === "unmanage") reloadSoon(); },
      sample: (s) => {
        const t = s.time_ms / 1000;
        for (const [name, v] of Object.entries(s.endpoints || {})) {
          const row = rows.get(name);
          if (!row) continue;
          updateRow(row, v);
          pushPoints(row.chart, t, [v.rate], SPARK_POINTS);
        }
        renderManagerSlots(mgrBody, s.managers || []);
      },
    }, reloadSoon);
  };
  let reloadTimer = null;
  const reloadSoon = () => {
    if (reloadTimer !== null) return;
    reloadTimer = setTimeout(() => { reloadTimer = null; load(); }, 200);
    app.timers.push(reloadTimer);
  };
  filter.addEventListener("input", () => { app.overviewFilter = filter.value.trim(); app.overviewPage = 0; render(); });
  await load();
  app.timers.push(setInterval(load, 15000));  // states, and whatever a missed event left out
}

function updateRow(row, v) {
  const c = row.cells;
  c.state.replaceChildren(stateBadge(v.state));
  c.healthy.textContent = (v.healthy ?? 0) + " / " + (v.target ?? "–");
  c.range.textContent = fmtRange(v.range);
  if (v.rate !== undefined) {
    c.rate.textContent = fmt(v.rate, 1);
    c.p95.textContent = fmtMs(v.p95);
    c.errors.textContent = fmt(v.errors, 2);
  }
}

function renderManagerSlots(tbody, managers) {
  tbody.replaceChildren(...managers.map((m) => el("tr", {},
    el("th", {scope: "row", text: m.name}),
    el("td", {class: "num", text: (m.slots_used ?? 0) + " / " + (m.slots ?? 0)}))));
}

// ---------------------------------------------------------------- endpoint

async function showEndpoint(name) {
  let info;
  try {
    info = await api("GET", "/v1/endpoints/" + encodeURIComponent(name));
  } catch (e) {
    main().replaceChildren(el("p", {class: "error", role: "alert", text: e.message}));
    return;
  }
  const cfg = info.config || {};
  const scaling = cfg.scaling || {};
  const title = el("h2", {id: "endpoint-title"}, name + " ", el("span", {id: "endpoint-state"}, stateBadge(info.state)));
  const controlMsg = el("p", {class: "error", id: "control-error", role: "alert"});
  const control = (state) => async () => {
    controlMsg.textContent = "";
    try {
      await api("PUT", "/v1/endpoints/" + encodeURIComponent(name) + "/state", {state});
    } catch (e) { controlMsg.textContent = e.message; }
  };
  const summary = {
    instances: el("b", {id: "sum-instances", text: "–"}), target: el("b", {id: "sum-target", text: "–"}),
    range: el("b", {id: "sum-range", text: "–"}), rate: el("b", {id: "sum-rate", text: "–"}),
    p95: el("b", {id: "sum-p95", text: "–"}),
  };
  const problem = el("p", {class: "notice", id: "endpoint-problem", role: "status"});
  const decision = el("p", {class: "muted", id: "endpoint-decision"});

  const chartBox = (id, label) => {
    const canvas = el("canvas", {id: id, role: "img", "aria-label": label + ", last 10 minutes"});
    return [el("div", {class: "chart"}, el("h3", {text: label}), el("div", {class: "canvas"}, canvas)), canvas];
  };
  const [rateBox, rateCanvas] = chartBox("chart-rate", "Requests /s");
  const [respBox, respCanvas] = chartBox("chart-response", "Response time (ms)");
  const [errBox, errCanvas] = chartBox("chart-errors", "5xx errors /s");
  const [actBox, actCanvas] = chartBox("chart-active", "Open connections");
  const [instBox, instCanvas] = chartBox("chart-instances", "Instances, target and rule range");

  const instBody = el("tbody", {id: "instance-rows"});
  const drainMsg = el("p", {class: "error", id: "drain-error", role: "alert"});

  // Settings: min, max, rules, with errors in place.
  const minIn = el("input", {type: "number", id: "min_instances", min: 0, value: scaling.min_instances ?? "",
                              "aria-describedby": "min_instances-error"});
  const maxIn = el("input", {type: "number", id: "max_instances", min: 0, value: scaling.max_instances ?? "",
                              "aria-describedby": "max_instances-error"});
  const rulesIn = el("textarea", {id: "rules", spellcheck: "false", "aria-describedby": "rules-error rules-help"});
  rulesIn.value = scaling.rules ?? "";
  const fieldError = (id) => el("p", {class: "error", id: id + "-error", role: "alert"});
  const errs = {min_instances: fieldError("min_instances"), max_instances: fieldError("max_instances"),
                rules: fieldError("rules")};
  const saved = el("p", {class: "muted", id: "settings-saved", role: "status"});
  const previewOut = el("div", {class: "preview", id: "rules-preview", role: "status"});
  const inputs = {min_instances: minIn, max_instances: maxIn, rules: rulesIn};
  const clearErrors = () => {
    for (const [k, e] of Object.entries(errs)) { e.textContent = ""; inputs[k].removeAttribute("aria-invalid"); }
  };
  const showError = (key, message) => {
    errs[key].textContent = message;
    inputs[key].setAttribute("aria-invalid", "true");
  };
  const save = async (ev) => {
    ev.preventDefault();
    clearErrors();
    saved.textContent = "";
    // Raise max before min (and lower min before max) so each step is valid.
    const min = ["min_instances", minIn.value.trim()], max = ["max_instances", maxIn.value.trim()];
    const want = Number(max[1]) < Number(scaling.min_instances) ? [min, max] : [max, min];
    want.push(["rules", rulesIn.value]);
    let changed = 0;
    for (const [key, value] of want) {
      const current = String(scaling[key] ?? "");
      if (value === current) continue;
      try {
        await api("PUT", "/v1/endpoints/" + encodeURIComponent(name) + "/config", {section: "scaling", key, value});
        scaling[key] = value;
        changed++;
      } catch (e) {
        const lines = (e.body.details && e.body.details.errors) || [e.message];
        showError(key, lines.join("\n"));
        inputs[key].focus();
        return;
      }
    }
    saved.textContent = changed ? "Saved." : "Nothing changed.";
  };
  const preview = async () => {
    clearErrors();
    previewOut.textContent = "";
    try {
      const r = await api("POST", "/v1/endpoints/" + encodeURIComponent(name) + "/rules/preview",
                          {rules: rulesIn.value, min: Number(minIn.value), max: Number(maxIn.value)});
      const m = Object.entries(r.metrics).filter(([k]) => !k.startsWith("response.")).map(([k, v]) => k + "=" + fmt(v, 3));
      let text = "With " + r.instances + " instance(s) and " + m.join(", ") + ":\n" +
                 "ideal " + fmtRange(r.ideal) + ", clamped " + fmtRange(r.range) + " → target " + r.target;
      if (r.missing.length) text += "\nno value for: " + r.missing.join(", ") + " (those rules are skipped)";
      if (r.warning) text += "\nwarning: " + r.warning;
      previewOut.textContent = text;
    } catch (e) {
      if (e.body.details && e.body.details.column) {
        showError("rules", e.message + "\n(line " + e.body.details.line + ", column " + e.body.details.column + ")");
      } else {
        previewOut.textContent = e.message;
      }
    }
  };
  const settings = el("form", {id: "settings-form", onsubmit: save},
    el("div", {class: "two"},
      el("div", {class: "field"}, el("label", {for: "min_instances", text: "min_instances"}), minIn, errs.min_instances),
      el("div", {class: "field"}, el("label", {for: "max_instances", text: "max_instances"}), maxIn, errs.max_instances)),
    el("div", {class: "field"}, el("label", {for: "rules", text: "rules"}), rulesIn,
       el("p", {class: "muted", id: "rules-help", text: "e.g. 5 < rate < 20, response < 800ms"}), errs.rules),
    el("div", {class: "toolbar"},
      el("button", {type: "submit", class: "primary", id: "settings-save", text: "Save"}),
      el("button", {type: "button", id: "rules-preview-button", onclick: preview, text: "What would the rules do?"}),
      saved),
    previewOut);

  const log = el("ol", {class: "log", id: "event-log", "aria-label": "Event log, newest last"});

  main().replaceChildren(el("section", {"aria-labelledby": "endpoint-title"},
    el("p", {}, el("a", {href: "#/", text: "← Overview"})),
    title,
    el("p", {class: "muted", text: (cfg.endpoint && cfg.endpoint.url) || ""}),
    el("div", {class: "toolbar", role: "group", "aria-label": "Endpoint state"},
      el("button", {type: "button", id: "btn-start", onclick: control("running"), text: "Start"}),
      el("button", {type: "button", id: "btn-pause", onclick: control("paused"), text: "Pause"}),
      el("button", {type: "button", id: "btn-stop", class: "danger", onclick: control("stopped"), text: "Stop"})),
    controlMsg,
    el("p", {class: "notice", id: "stream-note", role: "status"}),
    el("div", {class: "summary"},
      el("div", {}, "healthy / instances", summary.instances), el("div", {}, "target", summary.target),
      el("div", {}, "rule range", summary.range), el("div", {}, "requests /s", summary.rate),
      el("div", {}, "p95", summary.p95)),
    problem, decision,
    el("div", {class: "charts"}, rateBox, respBox, errBox, actBox, instBox),
    el("h3", {id: "instances-title", text: "Instances"}),
    drainMsg,
    el("div", {class: "table-wrap"}, el("table", {id: "instances", "aria-labelledby": "instances-title"},
      el("thead", {}, el("tr", {},
        el("th", {scope: "col", text: "Instance"}), el("th", {scope: "col", text: "State"}),
        el("th", {scope: "col", text: "Manager"}), el("th", {scope: "col", text: "Address"}),
        el("th", {scope: "col", text: "Last health check"}), el("th", {scope: "col", text: "Since"}),
        el("th", {scope: "col", text: "Action"}))),
      instBody)),
    el("h3", {text: "Scaling"}),
    settings,
    el("h3", {text: "Event log"}),
    log));

  const rate = lineChart(rateCanvas, [{label: "requests/s", color: "#0b5cad"}]);
  const resp = lineChart(respCanvas, [{label: "p50", color: "#1a7f37"}, {label: "p95", color: "#9a6700"},
                                      {label: "p99", color: "#cf222e"}]);
  const errors = lineChart(errCanvas, [{label: "5xx/s", color: "#cf222e"}]);
  const active = lineChart(actCanvas, [{label: "open", color: "#6639ba"}]);
  const inst = lineChart(instCanvas, [
    {label: "healthy", color: "#1a7f37", stepped: true}, {label: "target", color: "#0b5cad", stepped: true},
    {label: "range min", color: "#8c959f", stepped: true, dash: [4, 3]},
    {label: "range max", color: "#57606a", stepped: true, dash: [4, 3]}]);
  window.reactorCharts = {rate, resp, errors, active, inst};  // for tests and the console

  const drain = (id) => async (ev) => {
    drainMsg.textContent = "";
    ev.target.disabled = true;
    try {
      await api("POST", "/v1/endpoints/" + encodeURIComponent(name) + "/instances/" + encodeURIComponent(id) + "/drain");
    } catch (e) { drainMsg.textContent = e.message; ev.target.disabled = false; }
  };
  // Rows are kept per instance and updated in place: a new health result
  // (a slow check under load says "timed out" once) changes a cell's text,
  // never the Drain button under the operator's click or focus.
  const instRows = new Map();  // id → {tr, cells, actionKey}
  const noInstances = el("tr", {}, el("td", {colspan: 7, class: "muted", text: "No instances."}));
  const renderInstances = (list) => {
    const seen = new Set();
    for (const i of list) {
      seen.add(i.id);
      let row = instRows.get(i.id);
      if (!row) {
        const cells = {state: el("td"), manager: el("td"), address: el("td"), health: el("td"), since: el("td"),
                       action: el("td")};
        const tr = el("tr", {"data-instance": i.id}, el("th", {scope: "row", text: i.id}), cells.state,
                      cells.manager, cells.address, cells.health, cells.since, cells.action);
        row = {tr, cells, actionKey: null};
        instRows.set(i.id, row);
      }
      const c = row.cells;
      if (c.state.textContent !== i.state) c.state.replaceChildren(stateBadge(i.state));
      c.manager.textContent = i.manager;
      c.address.textContent = i.address;
      c.health.textContent = i.health || "–";
      c.since.textContent = timeText(i.since_ms);
      const drainable = (i.state === "active" || i.state === "starting") && info.config.endpoint.cloud !== "static";
      if (row.actionKey !== drainable) {
        row.actionKey = drainable;
        c.action.replaceChildren(drainable
          ? el("button", {type: "button", class: "danger", "data-drain": i.id, onclick: drain(i.id),
                          "aria-label": "Drain " + i.id, text: "Drain"})
          : "");
      }
    }
    for (const [id, row] of instRows) {
      if (!seen.has(id)) { row.tr.remove(); instRows.delete(id); }
    }
    const want = list.length ? list.map((i) => instRows.get(i.id).tr) : [noInstances];
    // A row already in place is not moved (moving would drop its focus).
    want.forEach((tr, at) => { if (instBody.children[at] !== tr) instBody.insertBefore(tr, instBody.children[at] || null); });
    while (instBody.children.length > want.length) instBody.lastChild.remove();
  };

  const addLog = (e) => {
    log.append(el("li", {"data-seq": e.seq}, el("span", {class: "muted", text: timeText(e.time_ms) + " "}),
                  el("span", {class: "kind", text: e.kind}), e.message));
    while (log.children.length > LOG_LINES) log.firstChild.remove();
    log.scrollTop = log.scrollHeight;
  };

  openStream("log=" + encodeURIComponent(name) + "&after=0&sample=" + encodeURIComponent(name), {
    log: addLog,
    sample: (s) => {
      const v = (s.endpoints || {})[name];
      if (!v) return;
      const t = s.time_ms / 1000;
      document.getElementById("endpoint-state").replaceChildren(stateBadge(v.state));
      summary.instances.textContent = v.healthy + " / " + v.instances;
      summary.target.textContent = v.target ?? "–";
      summary.range.textContent = fmtRange(v.range);
      summary.rate.textContent = fmt(v.rate, 1);
      summary.p95.textContent = fmtMs(v.p95);
      problem.textContent = v.problem || "";
      decision.textContent = v.last_decision ? "Last decision: " + v.last_decision : "";
      pushPoints(rate, t, [v.rate], HISTORY_S);
      pushPoints(resp, t, [v.p50 * 1000, v.p95 * 1000, v.p99 * 1000], HISTORY_S);
      pushPoints(errors, t, [v.errors], HISTORY_S);
      pushPoints(active, t, [v.active], HISTORY_S);
      const r = v.range || [null, null];
      pushPoints(inst, t, [v.healthy, v.target, r[0], r[1] === null ? v.max : r[1]], HISTORY_S);
      renderInstances(v.instance_list || []);
    },
  });
}

// ---------------------------------------------------------------- managers

async function showManagers() {
  const tbody = el("tbody", {id: "managers-rows"});
  main().replaceChildren(el("section", {"aria-labelledby": "managers-title"},
    el("h2", {id: "managers-title", text: "Managers"}),
    el("p", {class: "notice", id: "stream-note", role: "status"}),
    el("p", {class: "muted", text: "Hosts that run instances; in a cluster each holds a lease in etcd. " +
                                   "Cordon: no new instances go to the host. Drain: cordon, and its instances " +
                                   "move to other hosts one at a time (each replacement healthy first). " +
                                   "Uncordon ends both."}),
    el("div", {class: "table-wrap"}, el("table", {id: "managers"},
      el("thead", {}, el("tr", {},
        el("th", {scope: "col", text: "Manager"}), el("th", {scope: "col", text: "Address"}),
        el("th", {scope: "col", text: "State"}), el("th", {scope: "col", class: "num", text: "Slots used / total"}),
        el("th", {scope: "col", class: "num", text: "Instances"}),
        el("th", {scope: "col", class: "num", text: "Endpoints owned"}),
        el("th", {scope: "col", class: "num", text: "Lease left"}),
        el("th", {scope: "col", text: "Placement"}))),
      tbody))));

  // Rows are made once per manager and updated in place, so the numbers
  // that change every second (lease left) neither take keyboard focus away
  // nor close a confirmation; a row's controls are rebuilt only when what
  // they offer changes. Under each manager's row a full-width row holds its
  // drain confirmation and the API's error, hidden while empty.
  const rows = new Map();       // name → {tr, cells, actions, detail, confirm, error, controlsKey}
  const confirming = new Set();  // names whose drain waits for its confirmation
  const busy = new Map();       // name → the verb being sent
  // What this page changed, shown until the stream agrees: a sample taken
  // just before the change can arrive after it, and must not undo it on
  // screen. Three samples that still disagree (someone else changed it
  // back) end the overlay.
  const expected = new Map();   // name → {state, draining, samples}
  const refocus = new Set();    // rows whose controls had focus when they were rebuilt
  let last = [];

  const hasFocus = (row) => row.actions.contains(document.activeElement) || row.confirm.contains(document.activeElement);
  const showDetail = (row) => { row.detail.hidden = !row.confirm.firstChild && !row.error.textContent; };

  const send = (name, verb) => async () => {
    const row = rows.get(name);
    if (row) {
      row.error.textContent = "";
      if (hasFocus(row)) refocus.add(name);
    }
    confirming.delete(name);
    busy.set(name, verb);
    render(last);
    try {
      await api("POST", "/v1/managers/" + encodeURIComponent(name) + "/" + verb);
      const now = last.find((m) => m.name === name) || {};
      expected.set(name, {state: verb === "uncordon" ? "up" : "cordoned",
                          draining: verb === "drain" || (verb === "cordon" && !!now.draining), samples: 3});
    } catch (e) {
      const r = rows.get(name);
      if (r) { r.error.textContent = e.message; showDetail(r); }   // plain text, under its row
    } finally {
      busy.delete(name);
    }
    // Read back at once (the stream's next sample may predate the change).
    try { last = await api("GET", "/v1/managers"); } catch (e) { /* the stream still updates */ }
    render(last);
  };

  const buttons = (m) => {
    const name = m.name;
    const draining = m.draining;
    const sending = busy.get(name);
    const cordonButton = m.state === "cordoned" || draining
      ? el("button", {type: "button", "data-uncordon": name, onclick: send(name, "uncordon"),
                      disabled: !!sending, text: sending === "uncordon" ? "Uncordoning…" : "Uncordon"})
      : el("button", {type: "button", "data-cordon": name, onclick: send(name, "cordon"),
                      disabled: m.state === "gone" || !!sending, text: sending === "cordon" ? "Cordoning…" : "Cordon"});
    const drainText = sending === "drain" ? "Draining…" : draining ? "Draining" : "Drain";
    const drainButton = el("button", {type: "button", class: "danger", "data-drain": name,
                                      disabled: draining || m.state === "gone" || !!sending,
                                      "aria-label": draining ? name + " is draining" : "Drain " + name,
                                      "aria-expanded": confirming.has(name) ? "true" : "false",
                                      onclick: () => {
                                        const r = rows.get(name);
                                        if (r) r.error.textContent = "";
                                        confirming.add(name);
                                        render(last);
                                      }, text: drainText});
    return [cordonButton, " ", drainButton];
  };

  const confirmation = (m, up) => {
    const name = m.name;
    const cancel = () => { confirming.delete(name); refocus.add(name); render(last); };
    const alone = up.length === 1 && up[0] === name;
    return el("div", {class: "confirm", role: "group", "aria-label": "Confirm draining " + name,
                      onkeydown: (ev) => { if (ev.key === "Escape") cancel(); }},
      el("span", {"data-drain-question": name,
                  text: "Drain " + name + "? No new instances go to it, and its instances move to other hosts " +
                        "one at a time." + (alone ? " It is the only host up: they have nowhere to go and keep " +
                                            "running here, and new instances wait until it is uncordoned." : "")}),
      " ",
      el("button", {type: "button", class: "danger", "data-drain-confirm": name, onclick: send(name, "drain"),
                    text: "Confirm drain"}),
      " ",
      el("button", {type: "button", "data-drain-cancel": name, onclick: cancel, text: "Cancel"}));
  };

  // `sampled`: the list is a stream sample (in order), not a read-back.
  const render = (list, sampled) => {
    list = list.map((m) => {
      const want = expected.get(m.name);
      if (!want || m.state === "gone") return m;
      const agrees = m.state === want.state && !!m.draining === want.draining;
      if (sampled && (agrees || --want.samples <= 0)) expected.delete(m.name);
      return agrees || !expected.has(m.name) ? m : Object.assign({}, m, {state: want.state, draining: want.draining});
    });
    last = list;
    const up = list.filter((m) => m.state !== "gone").map((m) => m.name);
    const seen = new Set();
    for (const m of list) {
      seen.add(m.name);
      if (m.state === "gone") confirming.delete(m.name);
      let row = rows.get(m.name);
      if (!row) {
        const cells = {address: el("td"), state: el("td"), slots: el("td", {class: "num"}),
                       instances: el("td", {class: "num"}), owned: el("td", {class: "num"}),
                       lease: el("td", {class: "num"})};
        const actions = el("td", {class: "actions"});
        const confirm = el("div");
        const error = el("p", {class: "error", role: "alert", "data-manager-error": m.name});
        const tr = el("tr", {"data-manager": m.name}, el("th", {scope: "row", text: m.name}),
                      cells.address, cells.state, cells.slots, cells.instances, cells.owned, cells.lease, actions);
        const detail = el("tr", {class: "detail", "data-manager-detail": m.name, hidden: true},
                          el("td", {colspan: 8}, confirm, error));
        row = {tr, cells, actions, detail, confirm, error, controlsKey: ""};
        rows.set(m.name, row);
      }
      const draining = !!m.draining;
      const c = row.cells;
      c.address.textContent = m.address || "";
      const state = draining ? "draining" : (m.state || "up");
      if (c.state.textContent !== state) c.state.replaceChildren(stateBadge(state));
      c.slots.textContent = (m.slots_used ?? 0) + " / " + (m.slots ?? 0);
      c.instances.textContent = m.instances ?? 0;
      c.owned.textContent = Array.isArray(m.owned) ? m.owned.length : (m.owned ?? 0);
      // GET /v1/managers says null when unknown, the stream -1.
      c.lease.textContent = typeof m.lease_left_ms === "number" && m.lease_left_ms >= 0
        ? fmt(m.lease_left_ms / 1000, 1) + " s" : "–";
      const key = JSON.stringify([m.state, draining, busy.get(m.name) || "", confirming.has(m.name),
                                  up.length === 1 && up[0] === m.name]);
      if (key !== row.controlsKey) {
        row.controlsKey = key;
        if (hasFocus(row)) refocus.add(m.name);
        row.actions.replaceChildren(...buttons(m));
        row.confirm.replaceChildren(...(confirming.has(m.name) ? [confirmation(m, up)] : []));
        showDetail(row);
        if (confirming.has(m.name)) {
          row.confirm.querySelector("[data-drain-confirm]").focus();
          refocus.delete(m.name);
        } else if (refocus.has(m.name)) {
          // Back to the drain button, else the other control; while a
          // request is out every button is disabled and focus waits.
          const next = row.actions.querySelector("button[data-drain]:not(:disabled)") ||
                       row.actions.querySelector("button:not(:disabled)");
          if (next) { next.focus(); refocus.delete(m.name); }
        }
      }
    }
    for (const [name, row] of rows) {
      if (!seen.has(name)) { row.tr.remove(); row.detail.remove(); rows.delete(name); }
    }
    // In the list's order, each detail row under its manager; a row already
    // in place is not moved (moving would drop its focus).
    let at = 0;
    for (const m of list) {
      const r = rows.get(m.name);
      for (const tr of [r.tr, r.detail]) {
        if (tbody.children[at] !== tr) tbody.insertBefore(tr, tbody.children[at] || null);
        at++;
      }
    }
  };
  try { render(await api("GET", "/v1/managers")); } catch (e) {
    if (e.status !== 401) document.getElementById("stream-note").textContent = e.message;
    return;
  }
  openStream("managers=1", {sample: (s) => render(s.managers || [], true)});
}

// ---------------------------------------------------------------- routing

function route() {
  teardown();
  if (!app.csrf) { showLogin(); return; }
  const h = location.hash || "#/";
  document.querySelectorAll("nav a").forEach((a) => a.removeAttribute("aria-current"));
  let m;
  if ((m = h.match(/^#\/endpoint\/(.+)$/))) {
    showEndpoint(decodeURIComponent(m[1]));
  } else if (h === "#/managers") {
    document.getElementById("nav-managers").setAttribute("aria-current", "page");
    showManagers();
  } else {
    document.getElementById("nav-overview").setAttribute("aria-current", "page");
    showOverview();
  }
  main().focus({preventScroll: true});
}

async function boot() {
  document.getElementById("logout").addEventListener("click", async () => {
    try { await api("DELETE", "/v1/session"); } catch (e) { /* the cookie is cleared either way */ }
    showLogin("Logged out.");
  });
  window.addEventListener("hashchange", route);
  try {
    const s = await api("GET", "/v1/session");
    app.csrf = s.csrf;
    app.manager = s.manager;
    loggedIn();
  } catch (e) {
    showLogin();
  }
}

document.addEventListener("DOMContentLoaded", boot);
