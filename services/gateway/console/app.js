// Jiandu operations console: plain JS over the gateway's read API (no CDN, no build step).
"use strict";

const state = { token: sessionStorage.getItem("jiandu.token"), me: null, charts: {}, feed: null,
  list: { kind: "complaints", offset: 0, limit: 25, total: 0, filters: {} } };

const VERBS = {
  registered: "登记 registered", routed: "派单 routed", acknowledged: "签收 acknowledged",
  returned: "退单 returned", rerouted: "改派 rerouted", extension_requested: "申请延期 extension requested",
  extension_decided: "延期审批 extension decided", resolved: "办结 resolved", rated: "回访 rated",
  overdue: "超期 overdue", escalated: "通报 escalated", defects_found: "发现瑕疵 defects found",
  sampled: "抽中 sampled", review_assigned: "分配评查 review assigned", scored: "评分 scored",
  rectification_required: "整改 rectification required", decided: "处罚决定 decided",
  top_tier_detected: "顶格处罚 top-tier", filed: "备案 filed", late_filing: "逾期备案 late filing",
  missing_filing: "未备案 missing filing", disproportion_flagged: "过罚不当 disproportion",
  anomaly_detected: "异常 anomaly", created: "生成 created", sent: "送达 sent", failed: "失败 failed",
  raised: "线索 raised", recorded: "记录 recorded", repeated: "重复检查 repeated",
  changed: "变更 changed", crossed: "越线 crossed",
};
const LISTS = {
  complaints: { title: "投诉工单 Complaints", cols: [["id", "工单 Order"], ["district", "区 District"], ["unit", "承办单位 Unit"], ["status", "状态 Status"], ["returns", "退单 Returns"], ["overdue", "超期 Overdue"], ["event_time", "更新 Updated"]] },
  cases: { title: "案卷 Case files", cols: [["id", "案件 Case"], ["district", "区 District"], ["unit", "单位 Unit"], ["status", "状态 Status"], ["grade", "等次 Grade"], ["event_time", "更新 Updated"]] },
  filings: { title: "顶格处罚备案 Top-tier filings", cols: [["id", "案件 Case"], ["district", "区 District"], ["unit", "单位 Unit"], ["status", "状态 Status"], ["top_tier", "顶格 Top-tier"], ["late", "逾期 Late"], ["event_time", "更新 Updated"]] },
  inspections: { title: "检查记录 Inspections", cols: [["id", "检查 Inspection"], ["district", "区 District"], ["unit", "单位 Unit"], ["enterprise", "企业 Enterprise"], ["code_scanned", "亮码 Code"], ["planned", "备案 Planned"], ["status", "状态 Status"], ["event_time", "更新 Updated"]] },
  officers: { title: "执法人员 Officer registry", cols: [["id", "人员 Officer"], ["district", "区 District"], ["unit", "单位 Unit"], ["status", "证件 Certificate"], ["valid", "有效 Valid"], ["event_time", "更新 Updated"]] },
  notices: { title: "通知 Notices", cols: [["id", "通知 Notice"], ["district", "区 District"], ["unit", "单位 Unit"], ["status", "状态 Status"], ["event_time", "更新 Updated"]] },
};

const $ = (sel) => document.querySelector(sel);
const el = (tag, text, attrs) => {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
};
const fmtTime = (t) => (t ? new Date(t).toLocaleString("zh-CN", { hour12: false }) : "");
const status = (msg) => { $("#status").textContent = msg; };

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) { logout(); throw new Error("请重新登录 session expired"); }
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error((body && body.detail) || response.statusText);
  return body;
}

// ---------------------------------------------------------------- login

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#login-error").textContent = "";
  const form = new URLSearchParams({ grant_type: "password", username: $("#username").value, password: $("#password").value });
  const response = await fetch("/v1/auth/token", { method: "POST", body: form, headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) { $("#login-error").textContent = `登录失败 Sign-in failed: ${body.detail || response.status}`; return; }
  state.token = body.access_token;
  sessionStorage.setItem("jiandu.token", state.token);
  await start();
});

function logout() {
  state.token = null; state.me = null;
  sessionStorage.removeItem("jiandu.token");
  if (state.feed) { state.feed.close(); state.feed = null; }
  $("#nav").hidden = true; $("#who").textContent = "";
  show("login");
}

async function start() {
  state.me = await api("/v1/me");
  $("#nav").hidden = false;
  const who = $("#who");
  who.textContent = `${state.me.sub} · ${state.me.role}${state.me.district ? " · " + state.me.district : ""}${state.me.unit ? " · " + state.me.unit : ""}`;
  const out = el("button", "退出 Sign out"); out.onclick = logout; who.appendChild(out);
  if (!location.hash || location.hash === "#/login") location.hash = "#/overview"; else route();
}

// ---------------------------------------------------------------- routing

function show(view) {
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${view}`; });
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", location.hash.startsWith(`#/${a.dataset.view}`)));
}

async function route() {
  if (!state.token) { show("login"); return; }
  const [, view, id] = location.hash.split("/");
  try {
    if (view === "overview" || !view) { show("overview"); await overview(); }
    else if (LISTS[view] && id) { show("detail"); await detail(view, decodeURIComponent(id)); }
    else if (LISTS[view]) { show("list"); state.list.kind = view; state.list.offset = 0; await list(); }
    else if (view === "checks") { show("checks"); await checks(); }
    else if (view === "leads") { show("leads"); await leads(); }
    else if (view === "feed") { show("feed"); feed(); }
    else if (view === "ops") { show("ops"); await ops(); }
    status(`更新于 Updated ${new Date().toLocaleTimeString("zh-CN", { hour12: false })}`);
  } catch (err) { status(`错误 Error: ${err.message}`); }
}
window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- overview

function chart(id) {
  if (!state.charts[id]) state.charts[id] = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
  return state.charts[id];
}
window.addEventListener("resize", () => Object.values(state.charts).forEach((c) => c.resize()));

async function overview() {
  const data = await api("/v1/overview");
  const rows = data.districts;
  const t = data.totals;
  $("#scope-label").textContent = state.me.district ? `(${state.me.district})` : "(全市 whole city)";
  const kpis = [
    ["线索 Leads raised", t.leads_raised], ["已处置 Disposed", t.leads_disposed],
    ["线索处置率 Disposal rate", t.disposal_rate == null ? "—" : `${(t.disposal_rate * 100).toFixed(1)}%`],
    ["超期投诉 Overdue complaints", t.overdue_complaints], ["推诿 Bounces", t.bounce_leads + " / " + t.bounced_complaints],
    ["顶格按时备案 Filed on time", `${t.filed_on_time} / ${t.top_tier_filings}`], ["异常 Anomalies", t.anomalies],
  ];
  const box = $("#kpis"); box.replaceChildren();
  for (const [label, value] of kpis) { const k = el("div", null, { class: "kpi" }); k.append(el("b", value ?? 0), el("span", label)); box.appendChild(k); }
  const names = rows.map((r) => r.name);
  const base = { tooltip: { trigger: "axis" }, legend: {}, grid: { left: 40, right: 40, bottom: 70 },
    xAxis: { type: "category", data: names, axisLabel: { rotate: 40 } } };
  chart("chart-leads").setOption(Object.assign({}, base, {
    yAxis: [{ type: "value", name: "件" }, { type: "value", name: "%", max: 100 }],
    series: [
      { name: "线索 raised", type: "bar", data: rows.map((r) => r.leads_raised) },
      { name: "已处置 disposed", type: "bar", data: rows.map((r) => r.leads_disposed) },
      { name: "处置率 rate %", type: "line", yAxisIndex: 1, data: rows.map((r) => (r.disposal_rate == null ? null : +(r.disposal_rate * 100).toFixed(1))) },
    ] }), true);
  chart("chart-complaints").setOption(Object.assign({}, base, { yAxis: { type: "value" },
    series: [
      { name: "投诉 complaints", type: "bar", data: rows.map((r) => r.complaints) },
      { name: "超期 overdue", type: "bar", data: rows.map((r) => r.overdue_complaints) },
      { name: "推诿工单 bounced", type: "bar", data: rows.map((r) => r.bounced_complaints) },
      { name: "推诿线索 bounce leads", type: "bar", data: rows.map((r) => r.bounce_leads) },
    ] }), true);
  const grades = [...new Set(rows.flatMap((r) => Object.keys(r.grades || {})))];
  for (const g of ["优秀", "合格", "不合格"]) if (!grades.includes(g)) grades.push(g);
  chart("chart-grades").setOption(Object.assign({}, base, { yAxis: { type: "value" },
    series: grades.map((g) => ({ name: g, type: "bar", stack: "grade", data: rows.map((r) => (r.grades || {})[g] || 0) })) }), true);
  chart("chart-filings").setOption(Object.assign({}, base, { yAxis: { type: "value" },
    series: [
      { name: "顶格 top-tier", type: "bar", data: rows.map((r) => r.top_tier_filings) },
      { name: "按时备案 on time", type: "bar", data: rows.map((r) => r.filed_on_time) },
      { name: "逾期 late", type: "bar", data: rows.map((r) => r.filed_late) },
      { name: "未备案 missing", type: "bar", data: rows.map((r) => r.missing_filings) },
      { name: "异常 anomalies", type: "line", data: rows.map((r) => r.anomalies) },
    ] }), true);
}

// ---------------------------------------------------------------- lists and drill-down

$("#list-filter").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.list.filters = Object.fromEntries([...new FormData(ev.target)].filter(([, v]) => v));
  state.list.offset = 0; list();
});
$("#prev").onclick = () => { state.list.offset = Math.max(0, state.list.offset - state.list.limit); list(); };
$("#next").onclick = () => { if (state.list.offset + state.list.limit < state.list.total) { state.list.offset += state.list.limit; list(); } };

async function list() {
  const { kind, offset, limit, filters } = state.list;
  const spec = LISTS[kind];
  $("#list-title").textContent = spec.title;
  const query = new URLSearchParams(Object.assign({ limit, offset }, filters));
  const page = await api(`/v1/${kind}?${query}`);
  state.list.total = page.total;
  const head = el("tr"); spec.cols.forEach(([, label]) => head.appendChild(el("th", label)));
  $("#list-head").replaceChildren(head);
  const body = $("#list-body"); body.replaceChildren();
  for (const item of page.items) {
    const row = el("tr", null, { "data-id": item.id });
    for (const [key] of spec.cols) {
      let v = item[key];
      if (key === "event_time") v = fmtTime(v);
      if (typeof v === "boolean") v = v ? "是 yes" : "";
      row.appendChild(el("td", v ?? ""));
    }
    row.onclick = () => { location.hash = `#/${kind}/${encodeURIComponent(item.id)}`; };
    body.appendChild(row);
  }
  $("#page-info").textContent = `${page.total ? offset + 1 : 0}–${offset + page.items.length} / ${page.total}`;
}

async function detail(kind, id) {
  $("#back").setAttribute("href", `#/${kind}`);
  const data = await api(`/v1/${kind}/${encodeURIComponent(id)}`);
  const item = data.item;
  $("#detail-title").textContent = `${LISTS[kind].title.split(" ")[0]} ${item.id}`;
  const dl = $("#detail-fields"); dl.replaceChildren();
  const fields = [["区 District", item.district], ["单位 Unit", item.unit], ["状态 Status", item.status],
    ["事件数 Events", item.events], ["标记 Flags", (item.flags || []).join(", ")]];
  for (const [k, v] of fields) dl.append(el("dt", k), el("dd", v ?? ""));
  if (item.trace_url) { const dd = el("dd"); dd.appendChild(el("a", "在 Jaeger 中查看 Open trace", { href: item.trace_url, target: "_blank", rel: "noopener" })); dl.append(el("dt", "追踪 Trace"), dd); }
  $("#detail-snapshot").textContent = JSON.stringify(item.snapshot, null, 2);
  const ol = $("#timeline"); ol.replaceChildren();
  for (const t of data.timeline) {
    const li = el("li");
    li.append(el("span", VERBS[t.verb] || t.verb, { class: "verb" }), el("span", fmtTime(t.time), { class: "when" }));
    if (t.status) li.append(el("div", `状态 status: ${t.status}`));
    const change = Object.entries(t.change || {}).filter(([k]) => k !== "at").map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ");
    if (change) li.append(el("div", change));
    if (t.trace_url) { const a = el("a", `trace ${t.trace_id.slice(0, 8)}…`, { href: t.trace_url, target: "_blank", rel: "noopener", class: "trace" }); li.append(" ", a); }
    ol.appendChild(li);
  }
}

// ---------------------------------------------------------------- inspections (涉企检查)

const pct = (r) => (r == null ? "—" : `${(r * 100).toFixed(1)}%`);

async function checks() {
  const [summary, rates] = await Promise.all([api("/v1/inspection-summary"), api("/v1/inspection-rates")]);
  $("#checks-window").textContent = `(自 since ${fmtTime(summary.since)})`;
  const body = $("#checks-body"); body.replaceChildren();
  for (const d of summary.items) {
    const row = el("tr", null, { "data-district": d.district });
    const top = d.top_enterprises.map((e) => `${e.enterprise} ${e.visits}/${e.units}`).join("；");
    [d.name, d.inspections, d.code_scanned, pct(d.code_rate), d.unplanned, d.uncertified, top].forEach((v) => row.appendChild(el("td", v ?? "")));
    body.appendChild(row);
  }
  const rb = $("#rates-body"); rb.replaceChildren();
  for (const r of rates.items) {
    const row = el("tr");
    const crossings = Object.entries(r.crossings || {}).map(([m, n]) => `${m === "certification" ? "持证率" : "被纠错率"} ×${n}`).join(" ");
    [r.scope === "unit" ? "单位 unit" : "区 district", r.district, r.unit, r.officers, `${pct(r.certification_rate)} (${r.certified})`, r.reviews, `${pct(r.correction_rate)} (${r.corrected})`, crossings].forEach((v) => row.appendChild(el("td", v ?? "")));
    rb.appendChild(row);
  }
}

// ---------------------------------------------------------------- leads

async function leads() {
  const page = await api("/v1/leads?limit=100");
  const body = $("#leads-body"); body.replaceChildren();
  const canDispose = (state.me.scopes || []).includes("leads:dispose");
  for (const lead of page.items) {
    const row = el("tr");
    [lead.id, lead.kind, lead.district, lead.unit, lead.summary, lead.status === "disposed" ? "已处置 disposed" : "待处置 open"].forEach((v) => row.appendChild(el("td", v ?? "")));
    const cell = el("td");
    if (canDispose && lead.status !== "disposed") {
      const button = el("button", "处置 Dispose");
      button.onclick = async () => {
        const note = prompt("处置说明 Note") || "";
        try { await api(`/v1/leads/${encodeURIComponent(lead.id)}/dispose`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ outcome: "substantiated", note }) }); await leads(); }
        catch (err) { status(`错误 Error: ${err.message}`); }
      };
      cell.appendChild(button);
    }
    row.appendChild(cell); body.appendChild(row);
  }
}

// ---------------------------------------------------------------- live feed (SSE)

function feed() {
  if (state.feed) return;
  const source = new EventSource(`/v1/stream?access_token=${encodeURIComponent(state.token)}`);
  state.feed = source;
  source.onopen = () => { $("#feed-state").textContent = "● 已连接 connected"; };
  source.onerror = () => { $("#feed-state").textContent = "○ 重连中 reconnecting"; };
  source.addEventListener("entity", (msg) => {
    const e = JSON.parse(msg.data);
    const row = el("tr");
    row.append(el("td", fmtTime(e.time)), el("td", `${e.entity} ${e.entity_id}`), el("td", VERBS[e.verb] || e.verb), el("td", e.district), el("td", e.unit ?? ""));
    const cell = el("td");
    if (e.trace_url) cell.appendChild(el("a", e.trace_id.slice(0, 8), { href: e.trace_url, target: "_blank", rel: "noopener" }));
    row.appendChild(cell);
    const body = $("#feed-body"); body.prepend(row);
    while (body.children.length > 200) body.lastChild.remove();
  });
}

// ---------------------------------------------------------------- operations

async function ops() {
  const scopes = state.me.scopes || [];
  if (!scopes.includes("ops:read")) { $("#health-body").replaceChildren(el("tr", "无权限 not permitted for this role")); return; }
  const [health, lag, dlt] = await Promise.all([api("/v1/health"), api("/v1/lag").catch((e) => ({ groups: [], error: e.message })), api("/v1/dead-letters?limit=100")]);
  const hb = $("#health-body"); hb.replaceChildren();
  for (const p of health.services) {
    const row = el("tr");
    row.append(el("td", p.service), el("td", p.url), el("td", p.ok ? "✔ 正常 ready" : "✖ 异常 not ready", { class: p.ok ? "ok" : "bad" }), el("td", `${p.ms} ms`), el("td", p.error || ""));
    hb.appendChild(row);
  }
  const lb = $("#lag-body"); lb.replaceChildren();
  for (const g of lag.groups) for (const t of g.topics) { const row = el("tr"); row.append(el("td", g.group), el("td", t.topic), el("td", t.lag)); lb.appendChild(row); }
  chart("chart-lag").setOption({ tooltip: {}, grid: { left: 160, right: 20 }, xAxis: { type: "value" },
    yAxis: { type: "category", data: lag.groups.map((g) => g.group) }, series: [{ name: "积压 lag", type: "bar", data: lag.groups.map((g) => g.lag) }] }, true);
  const db = $("#dlt-body"); db.replaceChildren();
  for (const d of dlt.items) {
    const row = el("tr");
    row.append(el("td", d.id), el("td", d.original_topic || "—"), el("td", d.exception || ""), el("td", d.replays || 0));
    const cell = el("td");
    if (scopes.includes("deadletters:replay") && d.original_topic) {
      const button = el("button", "重放 Replay", { "data-replay": d.id });
      button.onclick = async () => { button.disabled = true; try { await api(`/v1/dead-letters/${encodeURIComponent(d.id)}/replay`, { method: "POST" }); await ops(); } catch (err) { status(`错误 Error: ${err.message}`); button.disabled = false; } };
      cell.appendChild(button);
    }
    row.appendChild(cell); db.appendChild(row);
  }
  if (scopes.includes("quarantine:read")) {
    const q = await api("/v1/quarantine?limit=50");
    const qb = $("#quarantine-body"); qb.replaceChildren();
    for (const item of q.items) { const row = el("tr"); row.append(el("td", fmtTime(item.at)), el("td", item.source || ""), el("td", item.code || ""), el("td", item.reason || "")); qb.appendChild(row); }
  }
}

// ---------------------------------------------------------------- boot

if (state.token) start().catch(() => logout()); else show("login");
