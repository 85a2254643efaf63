// The portfolio manager's dashboard: signs in at /oauth/token, reads the /v1 endpoints and
// draws the tables and plots. Plain DOM (textContent only: no API value is ever parsed as
// HTML) and SVG built here; no library, nothing fetched from anywhere but this service.
"use strict";

(() => {
  // The API lives beside the page: /dashboard -> /, or /prefix/dashboard -> /prefix/.
  const API = new URL(".", document.baseURI);
  const TOKEN_KEY = "quant.dashboard.token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PAGE_SIZE = 50;

  // ---------------------------------------------------------------- small helpers
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  };
  const svg = (tag, attrs = {}) => {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  };
  const show = (node, on) => node.classList.toggle("hidden", !on);
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  // ---------------------------------------------------------------- banner
  function banner(message) {
    $("banner-text").textContent = message;
    show($("banner"), true);
  }
  function clearBanner() {
    show($("banner"), false);
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // A readable sentence for a refused or failed request.
  function describe(status, path, detail, retryAfter) {
    const what = detail ? `: ${detail}` : "";
    if (status === 401) return `Not signed in, or the session expired or the key was revoked (${path})${what}. Sign in again.`;
    if (status === 403) return `The key is not allowed to read ${path}${what}. It needs the read scope.`;
    if (status === 404) return `Nothing found at ${path}${what}.`;
    if (status === 422 || status === 400) return `The request for ${path} was refused${what}.`;
    if (status === 429) return `Too many requests: the rate limit was reached on ${path}.` + (retryAfter ? ` Retry in ${retryAfter} s.` : " Retry in a moment.");
    if (status >= 500) return `The server failed on ${path} (HTTP ${status})${what}. The other panels still show what they have.`;
    return `HTTP ${status} on ${path}${what}.`;
  }

  async function errorFrom(response, path) {
    let detail = "";
    try {
      const body = await response.json();
      const d = body && (body.detail ?? body.error_description ?? body.error ?? body.message);
      detail = typeof d === "string" ? d : Array.isArray(d) ? d.map((x) => x.msg || JSON.stringify(x)).join("; ") : "";
    } catch (_) {
      /* not JSON: the status says enough */
    }
    return new ApiError(response.status, describe(response.status, path, detail, response.headers.get("Retry-After")));
  }

  // ---------------------------------------------------------------- sign-in and tokens
  // The token lives in sessionStorage (this tab only, gone when it closes; never localStorage,
  // which every tab and every later visit would share and which outlives the session on disk).
  // The key's secret stays in this closure only, to renew the token before it expires.
  let credentials = null; // {clientId, secret}
  let renewTimer = null;

  function storedToken() {
    try {
      const t = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
      return t && t.access_token && t.expires_at > Date.now() ? t : null;
    } catch (_) {
      return null;
    }
  }

  function forget() {
    sessionStorage.removeItem(TOKEN_KEY);
    credentials = null;
    clearTimeout(renewTimer);
  }

  // A key pasted whole (qk_<id>.<secret>, as `keys create` prints it) carries its own id.
  function splitKey(clientId, secret) {
    const whole = /^qk_(k[0-9a-f]{16})\.(\S+)$/.exec(secret);
    return whole ? [whole[1], whole[2]] : [clientId, secret];
  }

  async function exchange(clientId, secret) {
    [clientId, secret] = splitKey(clientId, secret);
    const form = new URLSearchParams({ grant_type: "client_credentials", scope: "read" });
    if (clientId) form.set("client_id", clientId);
    form.set("client_secret", secret);
    const response = await fetch(new URL("oauth/token", API), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: form,
      credentials: "omit",
      cache: "no-store",
    });
    if (!response.ok) throw await errorFrom(response, "/oauth/token");
    const body = await response.json();
    const lifetime = Math.max(30, Number(body.expires_in) || 300);
    const token = { access_token: body.access_token, expires_at: Date.now() + lifetime * 1000, scope: body.scope || "", client: clientId };
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(token));
    clearTimeout(renewTimer);
    // Renew at 80% of the lifetime, while the old token still works.
    renewTimer = setTimeout(renew, lifetime * 800);
    showWho(token);
    return token;
  }

  async function renew() {
    if (!credentials) return;
    try {
      await exchange(credentials.clientId, credentials.secret);
    } catch (err) {
      banner(`The session could not be renewed: ${err.message}`);
    }
  }

  function showWho(token) {
    const until = new Date(token.expires_at).toLocaleTimeString();
    $("who").textContent = `${token.client || "key"} · token until ${until}${credentials ? " (renewed automatically)" : ""}`;
  }

  function signedIn(on) {
    show($("sign-in"), !on);
    show($("board"), on);
    show($("sign-out"), on);
    if (!on) $("who").textContent = "";
  }

  // ---------------------------------------------------------------- reading the API
  async function get(path, params = {}, { as = "json" } = {}) {
    const url = new URL(path.replace(/^\//, ""), API);
    for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) url.searchParams.set(k, v);
    for (let attempt = 0; ; attempt++) {
      const token = storedToken();
      if (!token && credentials && attempt === 0) {
        await renew();
        continue;
      }
      if (!token) {
        signedIn(false);
        throw new ApiError(401, describe(401, path));
      }
      let response;
      try {
        response = await fetch(url, {
          headers: { Authorization: `Bearer ${token.access_token}`, Accept: as === "json" ? "application/json" : "text/html" },
          credentials: "omit",
          cache: "no-store",
        });
      } catch (_) {
        throw new ApiError(0, `The service cannot be reached (${path}). Is it running?`);
      }
      if (response.status === 401 && credentials && attempt === 0) {
        sessionStorage.removeItem(TOKEN_KEY);
        await renew();
        continue;
      }
      if (!response.ok) {
        if (response.status === 401) {
          forget();
          signedIn(false);
        }
        throw await errorFrom(response, path);
      }
      return as === "json" ? response.json() : response.text();
    }
  }

  // The body, or null when the API has nothing for the request (404: an empty panel, no banner).
  async function getOrNone(path, params = {}) {
    try {
      return await get(path, params);
    } catch (err) {
      if (err.status === 404) return null;
      throw err;
    }
  }

  // The list inside a response, whatever its key (items, rows, series, ...).
  function listOf(body, ...keys) {
    if (Array.isArray(body)) return body;
    if (!body || typeof body !== "object") return [];
    for (const k of [...keys, "items", "rows", "data", "series", "results"]) if (Array.isArray(body[k])) return body[k];
    return [];
  }

  // One level of nesting flattened into columns ({metrics: {auc: 0.6}} -> {auc: 0.6}).
  function flatten(row) {
    const out = {};
    for (const [k, v] of Object.entries(row)) {
      if (v && typeof v === "object" && !Array.isArray(v)) for (const [k2, v2] of Object.entries(v)) out[k2 in row ? `${k}.${k2}` : k2] = v2;
      else out[k] = v;
    }
    return out;
  }

  // ---------------------------------------------------------------- formatting
  const PCT = /(^|_)(weight|return|returns|drawdown|probability|volatility|turnover|hit_rate|excess)($|_)/;
  const pct = (v, digits = 2) => `${(v * 100).toFixed(digits)}%`;
  const label = (key) => key.replace(/[._]/g, " ").replace(/^\w/, (c) => c.toUpperCase()).replace(/\bic\b/gi, "IC").replace(/\bicir\b/gi, "ICIR");

  function format(key, value) {
    if (value == null) return "";
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (Array.isArray(value)) return value.join(", ");
    if (typeof value === "object") return JSON.stringify(value);
    if (isNum(value)) {
      if (PCT.test(key)) return pct(value);
      if (/(_s|_seconds)$/.test(key)) return value.toFixed(1);
      if (Number.isInteger(value)) return /(^|_)(year|version|id)$/.test(key) ? String(value) : value.toLocaleString("en-US");
      if (/score|ic|corr/i.test(key)) return value.toFixed(4);
      return Math.abs(value) >= 1000 ? value.toLocaleString("en-US", { maximumFractionDigits: 2 }) : value.toFixed(Math.abs(value) >= 10 ? 2 : 4);
    }
    const s = String(value);
    // ISO times to the minute; plain dates as they are.
    const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})/.exec(s);
    return m ? `${m[1]} ${m[2]}` : s;
  }

  // ---------------------------------------------------------------- sortable tables
  // Columns: the preferred ones first (when the API returns them), then any others it returns.
  // Columns empty in every row (no risk notes today, runs without times) are left out.
  function columnsOf(rows, preferred = [], hidden = []) {
    const seen = new Set();
    const blank = (v) => v == null || v === "" || (Array.isArray(v) && !v.length);
    for (const r of rows) for (const [k, v] of Object.entries(r)) if (!blank(v)) seen.add(k);
    const cols = preferred.filter((k) => seen.has(k));
    for (const k of seen) if (!cols.includes(k) && !hidden.includes(k)) cols.push(k);
    return cols;
  }

  const numericColumn = (rows, key) => rows.some((r) => isNum(r[key])) && rows.every((r) => r[key] == null || isNum(r[key]));

  function compare(a, b, numeric) {
    const na = a == null || a === "";
    const nb = b == null || b === "";
    if (na || nb) return na === nb ? 0 : na ? 1 : -1; // blanks last either way
    return numeric ? a - b : collator.compare(String(a), String(b));
  }

  // Fills `table` with `rows`; a click on a header sorts by that column (numbers as numbers).
  function renderTable(table, rows, opts = {}) {
    const { preferred = [], hidden = [], rowClass = () => "", cell = null, empty = "Nothing to show." } = opts;
    const cols = columnsOf(rows, preferred, hidden);
    const numeric = Object.fromEntries(cols.map((k) => [k, numericColumn(rows, k)]));
    let sortKey = null;
    let direction = 1;
    table.replaceChildren();
    const head = el("tr");
    for (const k of cols) {
      const th = el("th", { scope: "col", "data-key": k, class: numeric[k] ? "num" : "", text: label(k) });
      if (table.classList.contains("sortable")) {
        th.setAttribute("aria-sort", "none");
        th.setAttribute("title", "Sort by this column");
        th.addEventListener("click", () => {
          direction = sortKey === k ? -direction : numeric[k] ? -1 : 1; // numbers: largest first
          sortKey = k;
          for (const other of head.children) other.setAttribute("aria-sort", "none");
          th.setAttribute("aria-sort", direction > 0 ? "ascending" : "descending");
          body(rows.slice().sort((a, b) => direction * compare(a[k], b[k], numeric[k]) || compare(a[k], b[k], numeric[k])));
        });
      }
      head.append(th);
    }
    table.append(el("thead", {}, head));
    const tbody = el("tbody");
    table.append(tbody);
    const body = (sorted) => {
      tbody.replaceChildren();
      if (!sorted.length) {
        tbody.append(el("tr", { class: "empty" }, el("td", { colspan: Math.max(1, cols.length), text: empty })));
        return;
      }
      for (const r of sorted) {
        const tr = el("tr", { class: rowClass(r) });
        for (const k of cols) {
          const td = el("td", { "data-key": k });
          if (numeric[k]) td.className = "num";
          if (isNum(r[k])) td.dataset.value = String(r[k]);
          const custom = cell && cell(k, r[k], r);
          if (custom) td.append(custom);
          else td.textContent = format(k, r[k]);
          if (/reason|note|expression|formula|description|message/.test(k)) td.classList.add("wrap");
          if (k === "action" && r[k]) td.classList.add(String(r[k]).toLowerCase());
          if (numeric[k] && r[k] < 0 && /return|pnl|drawdown/.test(k)) td.classList.add("neg");
          tr.append(td);
        }
        tbody.append(tr);
      }
    };
    body(rows);
  }

  const badge = (text, kind) => el("span", { class: `badge ${kind}`, text });

  // ---------------------------------------------------------------- recommendations
  const recState = { date: "", symbol: "", industry: "", page: 1, total: 0, pageSize: PAGE_SIZE };
  const industries = new Set();

  async function loadRecommendations() {
    const body = (await getOrNone("/v1/recommendations", {
      date: recState.date,
      symbol: recState.symbol,
      industry: recState.industry,
      page: recState.page,
      page_size: recState.pageSize,
    })) || { items: [], total: 0, date: recState.date };
    const rows = listOf(body, "recommendations");
    const day = body.date || (rows[0] && rows[0].date) || recState.date;
    const forDay = body.for_date || (rows[0] && rows[0].for_date);
    if (day && !$("rec-date").value) $("rec-date").value = String(day).slice(0, 10);
    $("rec-title").textContent = day ? `scored after the close of ${day}${forDay ? `, to trade on ${forDay}` : ""}` : "no recommendations stored yet";
    for (const r of rows) if (r.industry) industries.add(r.industry);
    $("industries").replaceChildren(...[...industries].sort(collator.compare).map((i) => el("option", { value: i })));
    renderTable($("rec-table"), rows, {
      preferred: ["rank", "symbol", "name", "industry", "action", "weight", "shares", "score", "probability", "confidence", "close", "reason", "risk_note", "status"],
      hidden: ["date", "for_date"],
      empty: recState.symbol || recState.industry ? "No recommendation matches these filters." : "No recommendations for this day.",
    });
    recState.total = Number(body.total ?? rows.length);
    recState.pageSize = Number(body.page_size || recState.pageSize);
    const pages = Math.max(1, Math.ceil(recState.total / recState.pageSize));
    $("rec-page").textContent = `page ${recState.page} of ${pages} · ${recState.total} name${recState.total === 1 ? "" : "s"}`;
    $("rec-prev").disabled = recState.page <= 1;
    $("rec-next").disabled = recState.page >= pages;
  }

  // ---------------------------------------------------------------- performance
  const pick = (row, keys) => keys.find((k) => isNum(row[k]));

  // Dates, cumulative returns and drawdowns from the daily P&L series, whatever it carries
  // (equity, a daily return, a cumulative return, a drawdown).
  function curves(rows) {
    rows = rows.filter((r) => r && (r.date || r.day)).sort((a, b) => collator.compare(String(a.date || a.day), String(b.date || b.day)));
    if (!rows.length) return null;
    const dates = rows.map((r) => String(r.date || r.day).slice(0, 10));
    const first = rows[0];
    let cum;
    const eqKey = pick(first, ["equity", "nav", "total_equity", "value", "portfolio_value"]);
    const cumKey = pick(first, ["cumulative_return", "cum_return", "total_return"]);
    const retKey = pick(first, ["return", "daily_return", "returns", "ret"]);
    if (cumKey) cum = rows.map((r) => r[cumKey]);
    else if (eqKey && first[eqKey]) cum = rows.map((r) => r[eqKey] / first[eqKey] - 1);
    else if (retKey) {
      let w = 1;
      cum = rows.map((r) => (w *= 1 + (isNum(r[retKey]) ? r[retKey] : 0)) - 1);
    } else return null;
    const ddKey = pick(first, ["drawdown", "dd"]);
    let dd;
    if (ddKey) {
      dd = rows.map((r) => (isNum(r[ddKey]) ? r[ddKey] : 0));
      if (dd.every((v) => v >= 0)) dd = dd.map((v) => -v); // a magnitude: drawn below zero
    } else {
      let peak = -Infinity;
      dd = cum.map((c) => {
        peak = Math.max(peak, 1 + c);
        return (1 + c) / peak - 1;
      });
    }
    return { dates, cum, dd };
  }

  // Round steps (1, 2, 5 x 10^k) covering [lo, hi].
  function ticks(lo, hi, count = 5) {
    if (lo === hi) {
      lo -= 0.01;
      hi += 0.01;
    }
    const raw = (hi - lo) / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return { lo: Math.min(lo, out[0]), hi: Math.max(hi, out[out.length - 1]), values: out, step };
  }

  // A line (or an area down from zero) of `values` over `dates`, as inline SVG.
  function plot(container, dates, values, { area = false } = {}) {
    const W = 560, H = 220, L = 54, R = 12, T = 10, B = 26;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": container.id });
    container.replaceChildren(root);
    if (!values.length) {
      root.append(Object.assign(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "none" }), { textContent: "No history yet" }));
      return;
    }
    const y = ticks(Math.min(0, ...values), Math.max(0, ...values));
    const digits = y.step >= 0.01 ? 0 : y.step >= 0.001 ? 1 : 2;
    const n = values.length;
    const px = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    const py = (v) => T + ((y.hi - v) * (H - T - B)) / (y.hi - y.lo);
    for (const v of y.values) {
      root.append(svg("line", { x1: L, x2: W - R, y1: py(v), y2: py(v), class: v === 0 ? "zero" : "gridline" }));
      const t = svg("text", { x: L - 6, y: py(v) + 3, "text-anchor": "end", class: "tick" });
      t.textContent = pct(v, digits);
      root.append(t);
    }
    const every = Math.max(1, Math.ceil(n / 5));
    for (let i = 0; i < n; i += every) {
      const t = svg("text", { x: px(i), y: H - 8, "text-anchor": i === 0 ? "start" : "middle", class: "tick" });
      t.textContent = dates[i];
      root.append(t);
    }
    root.append(svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    root.append(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
    const points = values.map((v, i) => `${px(i).toFixed(1)},${py(v).toFixed(1)}`);
    if (area) {
      const zero = py(0).toFixed(1);
      root.append(svg("polygon", { points: `${px(0).toFixed(1)},${zero} ${points.join(" ")} ${px(n - 1).toFixed(1)},${zero}`, class: "area" }));
    } else {
      root.append(svg("polyline", { points: points.join(" "), class: "line", "data-count": n }));
    }
    // Points with their value on hover, while they stay readable (a year of days or less).
    if (n <= 260) {
      const layer = svg("g", { class: "points" });
      values.forEach((v, i) => {
        const c = svg("circle", { cx: px(i).toFixed(1), cy: py(v).toFixed(1), r: n <= 60 ? 2.2 : 1.2, class: "point" });
        const title = svg("title");
        title.textContent = `${dates[i]}: ${pct(v)}`;
        c.append(title);
        layer.append(c);
      });
      root.append(layer);
    }
  }

  // key -> [label, percent?] for the figures the report computes (others shown by their key).
  const FIGURES = {
    total_return: "Total return", excess_total_return: "Excess over the universe", annual_return: "Annual return",
    annual_volatility: "Annual volatility", sharpe: "Sharpe ratio", sortino: "Sortino ratio",
    information_ratio: "Information ratio", calmar: "Calmar ratio", max_drawdown: "Maximum drawdown",
    turnover: "Turnover a day", hit_rate: "Hit rate", holding_days: "Holding period (days)", names_held: "Names held", fees: "Fees paid (CNY)",
  };

  function figure(key, v) {
    if (/return|drawdown|volatility|turnover|hit_rate/.test(key)) return pct(v);
    if (key === "fees") return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return v.toFixed(/days|names/.test(key) ? 1 : 2);
  }

  function figuresOf(body) {
    const f = body.figures ?? body.summary ?? body.metrics ?? body.items ?? body;
    const pairs = Array.isArray(f) ? f.filter((r) => r && (r.figure || r.name)).map((r) => [r.figure || r.name, r.value]) : Object.entries(f).filter(([, v]) => isNum(v));
    // The report's order (returns, risk, trading), then any others by name.
    const order = Object.keys(FIGURES);
    const at = (k) => (order.includes(k) ? order.indexOf(k) : order.length);
    return pairs.sort(([a], [b]) => at(a) - at(b) || collator.compare(a, b));
  }

  let perfDay = ""; // the report's day, for the link to it
  async function loadPerformance() {
    const body = (await getOrNone("/v1/performance")) || { report: null };
    const day = body.date || body.day || body.report_date || "";
    $("perf-title").textContent = day ? `as of ${day}` : "";
    const rows = figuresOf(body);
    const table = $("perf-figures");
    table.replaceChildren();
    if (!rows.length) table.append(el("tr", {}, el("td", { text: "No figures yet." })));
    for (const [k, v] of rows) {
      const td = el("td", { text: isNum(v) ? figure(k, v) : String(v ?? "") });
      if (isNum(v) && v < 0) td.classList.add("neg");
      table.append(el("tr", { "data-key": k }, el("th", { text: FIGURES[k] || label(k) }), td));
    }
    perfDay = day;
    $("report-open").disabled = body.report === null;
    $("report-open").title = body.report === null ? "No report page stored for this day" : "";
  }

  async function loadPnl() {
    // Every stored day, a page of 500 at a time (two years a page).
    const rows = [];
    for (let page = 1; page <= 40; page++) {
      const body = (await getOrNone("/v1/pnl", { page, page_size: 500 })) || { items: [], total: 0 };
      const items = listOf(body, "pnl", "days");
      rows.push(...items);
      if (!items.length || body.total == null || rows.length >= Number(body.total)) break;
    }
    const c = curves(rows);
    plot($("plot-return"), c ? c.dates : [], c ? c.cum : []);
    plot($("plot-drawdown"), c ? c.dates : [], c ? c.dd : [], { area: true });
  }

  // The report needs the token, which a plain link cannot carry, so it is fetched and saved as
  // a file: opened from disk it shows complete (it embeds its plots and styles). Shown from a
  // blob: URL in a tab instead, it would inherit this page's Content-Security-Policy, which
  // rightly blocks the report's inline styles.
  async function downloadReport() {
    try {
      const text = await get("/v1/performance/report", perfDay ? { date: perfDay } : {}, { as: "text" });
      const url = URL.createObjectURL(new Blob([text], { type: "text/html" }));
      const link = el("a", { href: url, download: `performance-report${perfDay ? `-${perfDay}` : ""}.html`, class: "hidden" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      banner(err.message);
    }
  }

  // ---------------------------------------------------------------- factor and model boards
  // AI (LLM-proposed) or traditional; a factor set's own name beside it when it says more.
  const originBadge = (v) => {
    const ai = /^(ai|llm)/i.test(String(v));
    const text = ai ? "AI" : /^traditional$/i.test(v) ? "traditional" : `traditional · ${v}`;
    return badge(text, ai ? "ai" : "traditional");
  };

  async function loadFactors() {
    const body = (await getOrNone("/v1/factors")) || { items: [] };
    const rows = listOf(body, "factors").map(flatten);
    $("factor-count").textContent = rows.length ? `${rows.length} active` : "";
    renderTable($("factor-table"), rows, {
      preferred: ["name", "factor", "origin", "factor_set", "ic", "ic_mean", "rank_ic", "rank_ic_mean", "rank_ic_std", "icir", "ic_ir", "rank_icir", "t_stat", "p_value", "n_days", "formula", "expression", "hypothesis"],
      hidden: ["date"],
      cell: (k, v) => (k === "origin" && v ? originBadge(v) : k === "factor_set" && v && !rows.some((r) => r.origin) ? originBadge(v) : null),
      empty: "No active factors.",
    });
  }

  const isChampion = (r) => r.champion === true || r.is_champion === true || r.role === "champion" || /(^|\W)champion(\W|$)/.test([].concat(r.alias ?? r.aliases ?? r.role ?? "").join(" "));

  async function loadModels() {
    const body = (await getOrNone("/v1/models")) || { items: [] };
    const rows = listOf(body, "models", "versions").map((r) => {
      const champ = isChampion(r);
      const flat = flatten(r);
      const aliases = [].concat(flat.aliases ?? flat.alias ?? []).join(", ");
      for (const k of ["champion", "challenger", "is_champion", "aliases", "alias"]) delete flat[k];
      return { ...flat, role: champ ? "champion" : flat.role || aliases };
    });
    renderTable($("model-table"), rows, {
      preferred: ["model", "name", "version", "role", "day", "decision", "reason", "created_at"],
      rowClass: (r) => (r.role === "champion" ? "champion" : ""),
      cell: (k, v) => (k === "role" && v ? badge(String(v), /champion/.test(v) ? "champion" : "challenger") : null),
      empty: "No registered model versions.",
    });
  }

  // ---------------------------------------------------------------- health
  const FAILED = /fail|error|cancel|crash|red|bad/i;
  const failed = (r) => r.passed === false || r.success === false || r.ok === false || FAILED.test(String(r.status ?? r.state ?? r.outcome ?? ""));

  // Rows from a list, or from an object keyed by job or check name.
  function rowsOf(v, nameKey) {
    if (Array.isArray(v)) return v.map(flatten);
    if (v && typeof v === "object") return Object.entries(v).map(([k, r]) => (r && typeof r === "object" ? { [nameKey]: k, ...flatten(r) } : { [nameKey]: k, status: r }));
    return [];
  }

  async function loadHealth() {
    const body = await get("/v1/health");
    const runs = rowsOf(body.runs ?? body.last_runs ?? body.jobs ?? [], "job");
    const checks = rowsOf(body.checks ?? body.check_evaluations ?? body.evaluations ?? [], "check");
    const statusCell = (k, v, r) => (/^(status|state|outcome|passed|success)$/.test(k) && v != null ? badge(format(k, v), failed(r) ? "bad" : "ok") : null);
    renderTable($("run-table"), runs, { preferred: ["job", "job_name", "status", "partition", "start", "start_time", "end", "end_time", "run_id"], rowClass: (r) => (failed(r) ? "failed" : ""), cell: statusCell, empty: "No runs recorded." });
    renderTable($("check-table"), checks, { preferred: ["check", "check_name", "name", "asset", "asset_key", "passed", "severity", "partition", "description", "timestamp"], rowClass: (r) => (failed(r) ? "failed" : ""), cell: statusCell, empty: "No check evaluations recorded." });
    // which inputs the market's days have (a bars-only market skips the intraday and news stages)
    const inputs = body.market_inputs;
    if (inputs) {
      const skipped = Object.entries(inputs.skipped || {}).map(([kind, stages]) => `${kind.replace("_", " ")} (${stages})`);
      $("market-inputs").textContent = `Inputs of each day: ${inputs.delivered.join(", ").replaceAll("_", " ")}` + (skipped.length ? `. Not delivered by this market, so skipped: ${skipped.join("; ")}.` : ". Every kind is delivered.");
    }
    const bad = runs.filter(failed).length + checks.filter(failed).length;
    const summary = $("health-summary");
    summary.textContent = bad ? `${bad} failed` : runs.length || checks.length ? "all passed" : "";
    summary.classList.toggle("neg", bad > 0);
  }

  // ---------------------------------------------------------------- wiring
  // Each panel loads on its own: one failing endpoint leaves the others on screen.
  async function loadAll() {
    const panels = [loadRecommendations, loadPerformance, loadPnl, loadFactors, loadModels, loadHealth];
    const results = await Promise.allSettled(panels.map((p) => p()));
    const errors = [...new Set(results.filter((r) => r.status === "rejected").map((r) => r.reason.message || String(r.reason)))];
    if (errors.length) banner(errors.join(" "));
    document.body.dataset.loaded = errors.length ? "with-errors" : "ok";
  }

  async function runRecommendations() {
    try {
      await loadRecommendations();
      clearBanner();
    } catch (err) {
      banner(err.message);
    }
  }

  function start() {
    $("sign-in-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const clientId = $("key-id").value.trim();
      const secret = $("key-secret").value.trim();
      try {
        await exchange(clientId, secret);
        credentials = { clientId, secret };
        showWho(storedToken());
        $("key-secret").value = "";
        clearBanner();
        signedIn(true);
        await loadAll();
      } catch (err) {
        banner(err.status === 401 || err.status === 400 ? `Sign-in refused: the key id or secret is wrong, revoked or expired. (${err.message})` : err.message);
      }
    });
    $("sign-out").addEventListener("click", () => {
      forget();
      signedIn(false);
    });
    $("banner-close").addEventListener("click", clearBanner);
    $("rec-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      recState.date = $("rec-date").value;
      recState.symbol = $("rec-symbol").value.trim();
      recState.industry = $("rec-industry").value.trim();
      recState.page = 1;
      runRecommendations();
    });
    $("rec-reset").addEventListener("click", () => {
      Object.assign(recState, { date: "", symbol: "", industry: "", page: 1 });
      for (const id of ["rec-date", "rec-symbol", "rec-industry"]) $(id).value = "";
      runRecommendations();
    });
    $("rec-prev").addEventListener("click", () => {
      recState.page = Math.max(1, recState.page - 1);
      runRecommendations();
    });
    $("rec-next").addEventListener("click", () => {
      recState.page += 1;
      runRecommendations();
    });
    $("report-open").addEventListener("click", downloadReport);

    const token = storedToken();
    signedIn(Boolean(token));
    if (token) {
      showWho(token);
      loadAll();
    }
  }

  start();
})();
