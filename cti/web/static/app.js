// cti web: the agent toolbar (坐席工具条) and the supervisor wallboard (班长监控台).
// Plain JavaScript, no build step, nothing loaded from elsewhere. Test hooks that never change
// with the language or the styling: data-seat / data-state on every seat, data-action="<verb>"
// on every action, data-pop / data-caller on the screen pop, data-waiting on waiting callers,
// data-error on the visible refusal, name="seat" / name="password" on the login form, and on the
// call controls name="number" (call), name="target" (transfer, consult), name="keys" (dtmf).
"use strict";

const T = {
  en: {
    title: "Agent toolbar", title_sup: "Supervisor wallboard", wall_title: "Floor",
    login_title: "Sign in to cti", seat: "Seat", password: "Password", login: "Log in", logout: "Log out",
    lang: "中文", busy_reason: "Busy reason",
    signed_out: "Signed out", idle: "Idle", busy: "Busy", ringing: "Ringing", in_call: "In call", wrap_up: "Wrap-up",
    checkin: "Sign in", checkout: "Sign out", busy_act: "Busy", idle_act: "Idle", end_wrap: "End wrap-up",
    help: "Ask for help", help_cancel: "Cancel help", monitor: "Monitor", whisper: "Whisper", barge: "Barge",
    robcall: "Take over", stopcall: "Stop call", unlock: "Unlock",
    hotlines: "Hotlines", phone: "Phone", external: "external number", as_supervisor: "as supervisor",
    caller: "Caller", hotline: "Hotline", waited: "Waited", wrap_left: "Wrap-up ends in",
    no_call: "No call", waiting: "Waiting", nobody_waiting: "Nobody waiting",
    offered: "Offered", answered: "Answered", abandoned: "Abandoned", asa: "ASA", sl: "Service level",
    today: "Today", last15: "Last 15 min", chart: "Answered per hour (today)",
    help_from: "asks for help", answer_help: "Answer (whisper)", locked: "locked",
    online: "Live", offline: "Switch unreachable", lost: "Connection lost — reconnecting…",
    expired: "Your session expired: log in again.", for_: "for",
    switch_down: "unreachable", switch_up: "live", call_on: "call on switch",
    held: "On hold", rec_pause: "Pause recording", rec_resume: "Resume recording", call: "Call", hangup: "Hang up", hold: "Hold", unhold: "Resume", transfer: "Transfer",
    consult: "Consult", complete: "Complete transfer", threeway: "Three-way", cancel: "Cancel consult", dtmf: "Send keys",
    number: "Number to call", target: "Seat, hotline or number", keys: "Keys", via: "Caller ID of hotline",
    inbound: "Inbound", outbound: "Outbound", callee: "Called", consulting: "Consulting",
    records: "Call records", back_tool: "Toolbar", back_wall: "Wallboard", from: "From", to: "To", all: "All",
    caller_no: "Caller number", outcome: "Outcome", search: "Search", export: "Export CSV", more: "More",
    none_found: "No calls found", time: "Time", direction: "Direction", seats: "Seats", talk: "Talk", hold_s: "Hold",
    hangup_by: "Hung up by", survey: "Survey", recording: "Recording", play: "Play", entered: "Entered", masked: "Masked",
    no_score: "no score", timeline: "Timeline", nobody: "nobody",
    pruned: "deleted after keep_days", pruned_on: "Recording deleted after keep_days on",
    missing: "Not in this list: the records of switch {0}, which does not answer now.",
    o_answered: "Answered", o_abandoned: "Abandoned (waiting)", o_abandoned_ringing: "Abandoned (ringing)",
    o_overflowed: "Overflowed", o_transferred_out: "Transferred out", o_outbound_answered: "Outbound, answered",
    o_outbound_unanswered: "Outbound, unanswered",
    by_caller: "caller", by_agent: "agent", by_supervisor: "supervisor", by_system: "system",
  },
  zh: {
    title: "坐席工具条", title_sup: "班长监控台", wall_title: "坐席监控",
    login_title: "登录 cti", seat: "坐席", password: "密码", login: "登录", logout: "退出",
    lang: "English", busy_reason: "示忙原因",
    signed_out: "未签入", idle: "空闲", busy: "忙碌", ringing: "振铃中", in_call: "通话中", wrap_up: "话后处理",
    checkin: "签入", checkout: "签出", busy_act: "示忙", idle_act: "示闲", end_wrap: "结束话后处理",
    help: "求助", help_cancel: "取消求助", monitor: "监听", whisper: "密语", barge: "强插",
    robcall: "强接", stopcall: "强拆", unlock: "解锁",
    hotlines: "热线", phone: "话机", external: "外线号码", as_supervisor: "以班长签入",
    caller: "来电", hotline: "热线", waited: "已等待", wrap_left: "话后处理剩余",
    no_call: "无通话", waiting: "排队", nobody_waiting: "无人排队",
    offered: "呼入", answered: "接通", abandoned: "放弃", asa: "平均应答", sl: "服务水平",
    today: "今日", last15: "近15分钟", chart: "今日每小时接通",
    help_from: "请求求助", answer_help: "应答（密语）", locked: "已锁定",
    online: "实时", offline: "交换机不可达", lost: "连接中断，正在重连…",
    expired: "登录已过期，请重新登录。", for_: "持续",
    switch_down: "不可达", switch_up: "在线", call_on: "通话所在交换机",
    held: "保持中", rec_pause: "暂停录音", rec_resume: "恢复录音", call: "外呼", hangup: "挂断", hold: "保持", unhold: "取消保持", transfer: "转接",
    consult: "咨询", complete: "完成转接", threeway: "三方", cancel: "取消咨询", dtmf: "按键",
    number: "外呼号码", target: "坐席、热线或号码", keys: "按键", via: "外显热线",
    inbound: "呼入", outbound: "外呼", callee: "被叫", consulting: "咨询中",
    records: "通话记录", back_tool: "工作台", back_wall: "监控台", from: "开始日期", to: "结束日期", all: "全部",
    caller_no: "主叫号码", outcome: "结果", search: "查询", export: "导出 CSV", more: "更多",
    none_found: "没有找到通话", time: "时间", direction: "方向", seats: "坐席", talk: "通话", hold_s: "保持",
    hangup_by: "挂断方", survey: "满意度", recording: "录音", play: "播放", entered: "进线", masked: "屏蔽录音",
    no_score: "未评价", timeline: "通话经过", nobody: "无人接听",
    pruned: "已过保存期删除", pruned_on: "录音已过保存期（keep_days），删除于",
    missing: "本列表缺少交换机 {0} 的通话记录：它现在没有响应。",
    o_answered: "接通", o_abandoned: "排队放弃", o_abandoned_ringing: "振铃放弃",
    o_overflowed: "溢出", o_transferred_out: "转外线", o_outbound_answered: "外呼接通",
    o_outbound_unanswered: "外呼未接",
    by_caller: "客户", by_agent: "坐席", by_supervisor: "班长", by_system: "系统",
  },
};
const CALL_ACTIVITIES = ["ringing", "in_call", "held"];
const OUTCOMES = ["answered", "abandoned", "abandoned_ringing", "overflowed", "transferred_out", "outbound_answered", "outbound_unanswered"];
const SEARCH = ["from", "to", "hotline", "seat", "caller", "outcome"]; // the records page's fields (its URL's query)
const REASONS_ZH = { lunch: "午餐", meeting: "开会", training: "培训", break: "小休", "no-answer": "未接" };

const S = {
  lang: pickLang(), me: null, snap: null, seats: new Map(), queues: {}, offset: 0,
  ws: null, retry: 0, online: false, connected: false, pending: new Map(), nextId: 1,
  switches: [], // store: redis: each switch the service reaches ({name, up}); [] or one unnamed for one switch
  fields: {}, // what is typed in the call controls (number, target, keys, hotline): kept when the toolbar is rebuilt
  page: location.pathname === "/records" ? "records" : "floor", // the records page (通话记录) or the toolbar / wallboard
  rec: { rows: [], next: "", scope: null, today: "", open: "" }, // the records shown, the page after them, what the viewer may search
};

function pickLang() {
  const saved = localStorage.getItem("cti.lang");
  if (saved === "zh" || saved === "en") return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const l of langs) {
    const low = String(l).toLowerCase();
    if (low.startsWith("zh")) return "zh";
    if (low.startsWith("en")) return "en";
  }
  return "en";
}
function t(key) { return (T[S.lang] && T[S.lang][key]) || T.en[key] || key; }
function reasonText(r) { return S.lang === "zh" && REASONS_ZH[r] ? `${REASONS_ZH[r]} (${r})` : r; }

// h("div", {class: "x", "data-seat": "101"}, child, "text", ...): a DOM element, text never parsed as HTML
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "on") { for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn); continue; }
    if (k === "text") { el.textContent = v; continue; }
    el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const $ = (sel, root) => (root || document).querySelector(sel);
const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

function clock(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${two(mm)}:${two(ss)}`;
}
function now() { return Date.now() / 1000 + S.offset; }

// -- static text and language -------------------------------------------------------------
function applyLang() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  for (const el of $$("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("[data-lang]").textContent = t("lang");
  const sup = S.snap && S.snap.supervisor;
  const title = S.page === "records" ? t("records") : sup ? t("title_sup") : t("title");
  $(".title").textContent = title;
  document.title = `cti · ${title}`;
  renderNav();
  renderConn();
  if (S.page === "records" && S.me) renderRecords();
  else if (S.snap) renderAll();
}

function showError(msg, where) {
  const box = where || $("[data-app]:not([hidden]) [data-error]") || $("[data-login] [data-error]");
  for (const el of $$("[data-error]")) { if (el !== box) { el.hidden = true; el.textContent = ""; } }
  if (!box) return;
  box.textContent = msg || "";
  box.hidden = !msg;
}

// -- login ----------------------------------------------------------------------------------
function showLogin(message) {
  S.me = null; S.snap = null;
  if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
  document.body.dataset.view = "login";
  $("[data-login]").hidden = false;
  $("[data-app]").hidden = true;
  $("[data-logout]").hidden = true;
  $("[data-me]").textContent = "";
  renderNav();
  const err = $("[data-login] [data-error]");
  err.textContent = message || ""; err.hidden = !message;
  document.body.dataset.conn = "connecting";
  renderConn();
  const seat = $("[data-login] [name=seat]");
  if (seat) seat.focus();
}

async function logIn(ev) {
  ev.preventDefault();
  const form = ev.target;
  const body = new URLSearchParams(new FormData(form));
  const err = $("[data-login] [data-error]");
  err.hidden = true;
  let res;
  try {
    res = await fetch("/login", { method: "POST", body, credentials: "same-origin" });
  } catch (e) {
    showError("-ERR unreachable the web service does not answer", err);
    return;
  }
  const data = await res.json().catch(() => ({ error: `-ERR http ${res.status}` }));
  if (!res.ok) { showError(data.error || `-ERR http ${res.status}`, err); form.password.value = ""; form.password.focus(); return; }
  form.password.value = "";
  start(data);
}

async function logOut() {
  await fetch("/logout", { method: "POST", credentials: "same-origin" }).catch(() => null);
  showLogin("");
}

function start(me) {
  S.me = me;
  document.body.dataset.view = S.page === "records" ? "records" : me.supervisor ? "wall" : "toolbar";
  $("[data-login]").hidden = true;
  $("[data-app]").hidden = false;
  $("[data-logout]").hidden = false;
  $("[data-me]").textContent = `${me.name} (${me.seat})`;
  $("[data-toolbar]").hidden = S.page === "records";
  $("[data-records]").hidden = S.page !== "records";
  showError("");
  renderNav();
  if (S.page === "records") searchRecords(queryOf(location.search), false);
  connect();
}

// -- the live connection ----------------------------------------------------------------------
function connect() {
  if (!S.me) return;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws`);
  S.ws = ws;
  ws.onopen = () => {
    if (S.everConnected) document.body.dataset.reconnects = String(Number(document.body.dataset.reconnects || 0) + 1);
    S.everConnected = true; S.connected = true; S.retry = 0; renderConn();
  };
  ws.onmessage = (ev) => receive(JSON.parse(ev.data));
  ws.onclose = async () => {
    if (S.ws !== ws) return;
    S.connected = false; S.ws = null;
    document.body.dataset.conn = "lost";
    renderConn();
    const res = await fetch("/me", { credentials: "same-origin" }).catch(() => null);
    if (res && res.status === 401) { showLogin(t("expired")); return; }
    const wait = Math.min(5000, 300 * Math.pow(2, S.retry++));
    setTimeout(connect, wait);
  };
}

function send(msg) {
  if (!S.ws || S.ws.readyState !== WebSocket.OPEN) { showError(`-ERR unreachable ${t("lost")}`); return; }
  msg.id = S.nextId++;
  S.ws.send(JSON.stringify(msg));
}

function receive(msg) {
  switch (msg.type) {
    case "snapshot":
      S.snap = msg;
      S.offset = msg.now - Date.now() / 1000;
      S.online = msg.online;
      S.switches = msg.switches || [];
      S.seats = new Map(msg.seats.map((s) => [s.seat, s]));
      S.queues = msg.queues || {};
      document.body.dataset.conn = msg.online ? "online" : "offline";
      applyLang();
      break;
    case "seat":
      S.seats.set(msg.seat.seat, msg.seat);
      renderSeat(msg.seat.seat);
      break;
    case "queue":
      S.queues[msg.hotline] = msg.waiting;
      if (S.page !== "records") { renderQueues(); renderToolbar(); }
      break;
    case "stats":
      if (S.snap) { S.snap.stats = msg.stats; if (S.page !== "records") renderStats(); }
      break;
    case "switch":
      S.online = msg.online;
      if (msg.switches) S.switches = msg.switches;
      document.body.dataset.conn = msg.online ? "online" : "offline";
      renderConn();
      break;
    case "reply":
      if (String(msg.reply).startsWith("-ERR")) showError(msg.reply); else if (S.page !== "records") showError("");
      break;
    case "expired":
      showLogin(t("expired"));
      break;
  }
}

function named() { return S.switches.filter((w) => w.name); }

function renderConn() {
  const el = $("[data-conn-text]");
  const state = document.body.dataset.conn;
  // several switches: the floor stays live while one answers; the others are named as unreachable
  const down = named().filter((w) => !w.up).map((w) => w.name);
  const live = down.length ? `${t("online")} · ${t("offline")}: ${down.join(", ")}` : t("online");
  el.textContent = state === "online" ? live : state === "offline" ? t("offline") : state === "lost" ? t("lost") : "";
  document.body.dataset.switchesDown = state === "online" ? down.join(" ") : "";
  const box = $("[data-switches]");
  box.replaceChildren(...(S.me && state !== "lost" ? named() : []).map((w) => h("span", {
    class: `switch ${w.up ? "up" : "down"}`, "data-switch": w.name, "data-up": w.up ? "true" : "false",
    title: `${w.name}: ${t(w.up ? "switch_up" : "switch_down")}` }, w.name)));
}

// -- rendering ---------------------------------------------------------------------------------
function renderAll() { if (S.page === "records") return; renderToolbar(); renderWall(); }

function renderSeat(id) {
  if (S.page === "records") return;
  if (S.me && id === S.me.seat) renderToolbar();
  if (S.snap && S.snap.supervisor) { renderTile(id); renderHelps(); }
}

function stateLabel(seat) {
  const word = t(seat.status);
  return seat.status === "busy" && seat.reason ? `${word} · ${reasonText(seat.reason)}` : word;
}

function act(verb, seat, extra) {
  return (ev) => { ev.preventDefault(); send(Object.assign({ type: "action", verb, seat }, extra ? extra() : {})); };
}

function button(verb, label, seat, extra, cls) {
  return h("button", { type: "button", class: cls || "", "data-action": verb, on: { click: act(verb, seat, extra) } }, label);
}

function popView(seat) {
  const pop = seat.pop || {};
  const hotName = pop["Hotline-Name"] || (S.snap.hotlines[seat.call_hotline] || {}).name || seat.call_hotline;
  const vars = Object.entries(pop).filter(([k]) => k.startsWith("Var-"));
  const out = seat.direction === "outbound";
  return h("div", { class: `pop ${seat.status}`, "data-pop": true, "data-caller": pop["Caller-Number"] || "", "data-direction": seat.direction || null },
    h("div", { class: "pop-head" }, h("span", { class: "pop-label" }, t(out ? "callee" : "caller"),
      seat.direction ? h("span", { class: `dir ${seat.direction}`, text: t(seat.direction) }) : null),
      h("strong", { class: "pop-number", text: pop["Caller-Number"] || "—" }),
      pop["Caller-Name"] && pop["Caller-Name"] !== pop["Caller-Number"] ? h("span", { class: "pop-name", text: pop["Caller-Name"] }) : null),
    h("dl", {},
      h("dt", { text: t("hotline") }), h("dd", { text: hotName || "—" }),
      out ? null : [h("dt", { text: t("waited") }), h("dd", { text: pop.Waited ? `${pop.Waited}s` : "—" })],
      vars.map(([k, v]) => [h("dt", { text: k.slice(4) }), h("dd", { text: v })])));
}

// the agent's own call: what fits its state (consulting: complete / three-way / cancel; in a
// call: hang up, hold, transfer, consult, keys; on hold: resume; on no call: call)
function callControls(seat) {
  const box = h("div", { class: "calls", "data-calls": seat.activity || "none" });
  const field = (name, size, label, mode) => h("input", {
    name, size, placeholder: t(label), "aria-label": t(label), autocomplete: "off", spellcheck: "false", inputmode: mode,
    value: S.fields[name] || "", on: { input: (e) => { S.fields[name] = e.target.value; } } });
  const value = (name) => ({ [name]: (($(`[data-calls] [name=${name}]`) || {}).value || "").trim() });
  if (seat.consult) {
    box.append(h("span", { class: "consulting", "data-consulting": seat.consult }, `${t("consulting")}${S.lang === "zh" ? "：" : ": "}`, h("strong", { text: seat.consult })),
      button("complete", t("complete"), seat.seat, null, "primary"), button("threeway", t("threeway"), seat.seat),
      button("cancel", t("cancel"), seat.seat, null, "danger"));
  } else if (seat.activity === "in_call") {
    const keys = field("keys", 8, "keys", "tel");
    // 录音: pause while the caller reads a card number, then resume (cti.record; -ERR no_recording when the
    // hotline does not record). The page remembers which it sent for this call; a refusal shows as any other.
    const paused = !!(S.recPaused && S.recPaused[seat.call]);
    const rec = h("button", { type: "button", "data-action": "record", "data-op": paused ? "resume" : "pause", on: { click: (e) => {
      S.recPaused = { [seat.call]: !paused };
      act("record", seat.seat, () => ({ op: paused ? "resume" : "pause" }))(e);
    } } }, t(paused ? "rec_resume" : "rec_pause"));
    box.append(button("hangup", t("hangup"), seat.seat, null, "alert"), button("hold", t("hold"), seat.seat), rec,
      h("form", { class: "group", on: { submit: (e) => e.preventDefault() } }, field("target", 18, "target"),
        button("transfer", t("transfer"), seat.seat, () => value("target")), button("consult", t("consult"), seat.seat, () => value("target"))),
      h("form", { class: "group", on: { submit: act("dtmf", seat.seat, () => {
        const sent = value("keys"); keys.value = ""; S.fields.keys = ""; return sent;
      }) } }, keys, h("button", { type: "submit", "data-action": "dtmf" }, t("dtmf"))));
  } else if (seat.activity === "held") {
    box.append(button("unhold", t("unhold"), seat.seat, null, "primary"));
  } else if (seat.activity !== "ringing") {
    const mine = seat.hotlines || [];
    const via = mine.length > 1 ? h("select", { name: "hotline", title: t("via"), "aria-label": t("via"),
      on: { change: (e) => { S.fields.hotline = e.target.value; } } },
      mine.map((hid) => h("option", { value: hid, text: `${hid} ${(S.snap.hotlines[hid] || {}).name || ""}` }))) : null;
    if (via && mine.includes(S.fields.hotline)) via.value = S.fields.hotline;
    box.append(h("form", { class: "group", on: { submit: act("call", seat.seat, () => ({ ...value("number"), hotline: via ? via.value : "-" })) } },
      field("number", 16, "number", "tel"), via, h("button", { type: "submit", class: "primary", "data-action": "call" }, `☎ ${t("call")}`)));
  }
  return box.childElementCount ? box : null;  // (ringing: nothing; the phone answers)
}

function waitingCount() {
  return Object.keys((S.snap && S.snap.queues) || {}).reduce((n, hid) => n + ((S.queues[hid] || []).length), 0);
}

function renderToolbar() {
  const box = $("[data-toolbar]");
  if (!S.snap || !S.me) { box.replaceChildren(); S.toolbarKey = ""; return; }
  const seat = S.seats.get(S.me.seat) || { seat: S.me.seat, status: "signed_out", name: S.me.name, allowed: [] };
  // rebuilt only when the seat changed (a form being filled in is left alone otherwise)
  const key = JSON.stringify([S.lang, seat, S.snap.reasons]);
  const badge = $("[data-toolbar] [data-qcount]");
  if (key === S.toolbarKey && badge) { badge.textContent = String(waitingCount()); return; }
  S.toolbarKey = key;
  const signedIn = seat.status !== "signed_out";
  const state = h("div", { class: "state", "data-seat": seat.seat, "data-state": seat.status },
    h("span", { class: "dot" }),
    h("div", {}, h("div", { class: "state-word", text: stateLabel(seat) }),
      h("div", { class: "timer", "data-since": seat.since || "" }, clock(seat.since ? now() - seat.since : null))),
    seat.locked ? h("span", { class: "lock", text: `🔒 ${t("locked")}` }) : null);
  const actions = h("div", { class: "actions" });
  if (!signedIn) {
    const boxes = (seat.allowed || []).map((hid) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "hotline", value: hid, checked: true }),
      `${hid} ${(S.snap.hotlines[hid] || {}).name || ""}`));
    const phone = h("input", { name: "phone", value: localStorage.getItem(`cti.phone.${seat.seat}`) || seat.seat, size: 12 });
    const ext = h("label", { class: "check" }, h("input", { type: "checkbox", name: "external" }), t("external"));
    const sup = seat.supervisor_seat ? h("label", { class: "check" }, h("input", { type: "checkbox", name: "as_supervisor", checked: true }), t("as_supervisor")) : null;
    actions.append(h("form", { class: "checkin", "data-checkin": true, on: { submit: act("checkin", seat.seat, () => {
      const hot = $$("[data-checkin] [name=hotline]:checked").map((i) => i.value);
      localStorage.setItem(`cti.phone.${seat.seat}`, phone.value.trim());
      return { hotlines: hot.length ? hot : ["-"], phone: phone.value.trim(),
        phone_type: $("[data-checkin] [name=external]").checked ? "external" : "internal",
        role: sup && $("[data-checkin] [name=as_supervisor]").checked ? "supervisor" : "agent" };
    }) } },
      h("fieldset", {}, h("legend", { text: t("hotlines") }), boxes),
      h("label", { class: "field" }, h("span", { text: t("phone") }), phone), ext, sup,
      h("button", { type: "submit", class: "primary", "data-action": "checkin" }, t("checkin"))));
  } else {
    const reasons = S.snap.reasons || [];
    const pick = h("select", { name: "reason", "data-reason": true, on: { change: (e) => { S.reason = e.target.value; } } },
      reasons.map((r) => h("option", { value: r, text: reasonText(r) })));
    if (S.reason && reasons.includes(S.reason)) pick.value = S.reason;
    actions.append(
      h("div", { class: "group" }, pick, button("busy", t("busy_act"), seat.seat, () => ({ reason: pick.value || "busy" }), "warn")),
      button("idle", seat.activity === "wrap_up" ? t("end_wrap") : t("idle_act"), seat.seat, null, "ok"),
      seat.help ? button("help_cancel", t("help_cancel"), seat.seat, null, "alert") : button("help", t("help"), seat.seat, null, "alert-outline"),
      button("checkout", t("checkout"), seat.seat, null, "ghost"));
  }
  const info = h("div", { class: "call" });
  if (CALL_ACTIVITIES.includes(seat.activity)) info.append(popView(seat));
  else if (seat.activity === "wrap_up") {
    const wrap = (S.snap.hotlines[seat.call_hotline] || {}).wrap_up || 0;
    info.append(h("div", { class: "wrap" }, h("span", { text: t("wrap_left") }),
      h("strong", { "data-until": wrap && seat.since ? seat.since + wrap : "" }, wrap && seat.since ? clock(seat.since + wrap - now()) : "—")));
  } else info.append(h("div", { class: "muted", text: signedIn ? `${t("no_call")} · ${(seat.hotlines || []).join(", ")} · ${seat.phone || ""}` : "" }));
  const queueBadge = h("div", { class: "qbadge", title: t("waiting") }, h("span", { text: t("waiting") }),
    h("strong", { "data-qcount": true, text: String(waitingCount()) }));
  box.replaceChildren(h("div", { class: "toolbar-row" }, state, info, queueBadge), signedIn ? callControls(seat) : null, actions);
}

function renderWall() {
  const wall = $("[data-wall]");
  const sup = S.snap && S.snap.supervisor;
  wall.hidden = !sup;
  if (!sup) return;
  const pick = $("[data-wall-reason]");
  const old = pick.value;
  pick.replaceChildren(...(S.snap.reasons || []).map((r) => h("option", { value: r, text: reasonText(r) })));
  if (old) pick.value = old;
  const tiles = $("[data-tiles]");
  tiles.replaceChildren();
  for (const seat of S.seats.values()) if (seat.seat !== S.me.seat || true) tiles.append(tile(seat));
  renderHelps(); renderQueues(); renderStats();
}

function tile(seat) {
  const busy = () => ({ reason: $("[data-wall-reason]").value || "busy" });
  const inCall = seat.activity === "in_call";
  const onCall = CALL_ACTIVITIES.includes(seat.activity);
  const signedIn = seat.status !== "signed_out";
  const mine = seat.seat === S.me.seat;
  const acts = [];
  if (!mine && inCall) for (const v of ["monitor", "whisper", "barge", "robcall", "stopcall"]) acts.push(button(v, t(v), seat.seat, null, v === "stopcall" ? "danger sm" : "sm"));
  if (!mine && signedIn) acts.push(button("busy", t("busy_act"), seat.seat, busy, "sm"), button("idle", seat.activity === "wrap_up" ? t("end_wrap") : t("idle_act"), seat.seat, null, "sm"), button("checkout", t("checkout"), seat.seat, null, "sm ghost"));
  if (!mine && seat.locked) acts.push(button("unlock", t("unlock"), seat.seat, null, "sm"));
  if (!mine && !seat.locked && !signedIn) acts.push(button("unlock", t("unlock"), seat.seat, null, "sm ghost"));
  const pop = seat.pop || {};
  const where = seat.switch && named().length > 1 ? seat.switch : "";  // several switches: which one holds the call
  return h("article", { class: `tile${seat.help ? " helping" : ""}${mine ? " mine" : ""}`, "data-seat": seat.seat, "data-state": seat.status, "data-switch": where || null },
    h("header", {}, h("span", { class: "dot" }), h("strong", { class: "name", text: seat.name }), h("span", { class: "id", text: seat.seat }),
      seat.role === "supervisor" ? h("span", { class: "tag", text: S.lang === "zh" ? "班长" : "sup" }) : null,
      seat.locked ? h("span", { class: "lock", text: "🔒" }) : null,
      where ? h("span", { class: "on-switch", title: `${t("call_on")} ${where}`, text: where }) : null),
    h("div", { class: "tile-state" }, h("span", { class: "state-word", text: stateLabel(seat) }),
      h("span", { class: "timer", "data-since": seat.since || "" }, clock(seat.since ? now() - seat.since : null))),
    h("div", { class: "tile-call" }, onCall && pop["Caller-Number"]
      ? h("span", { class: "caller", "data-caller": pop["Caller-Number"] }, `☎ ${pop["Caller-Number"]}`) : h("span", { class: "muted", text: (seat.hotlines || []).join(", ") || "—" }),
    seat.supervision ? h("span", { class: "sv", text: seat.supervision }) : null),
    acts.length ? h("div", { class: "tile-actions" }, acts) : null);
}

function renderTile(id) {
  const seat = S.seats.get(id);
  const old = $(`[data-tiles] [data-seat="${CSS.escape(id)}"]`);
  if (!seat) return;
  const fresh = tile(seat);
  if (old) old.replaceWith(fresh); else $("[data-tiles]").append(fresh);
}

function renderHelps() {
  const box = $("[data-helps]");
  if (!box || !S.snap || !S.snap.supervisor) return;
  const asking = Array.from(S.seats.values()).filter((s) => s.help && s.seat !== S.me.seat);
  box.replaceChildren(...asking.map((s) => h("div", { class: "help-card", "data-help": s.seat },
    h("strong", { text: `${s.name} (${s.seat})` }), h("span", { text: t("help_from") }),
    s.pop && s.pop["Caller-Number"] ? h("span", { class: "muted", text: `☎ ${s.pop["Caller-Number"]}` }) : null,
    button("whisper", t("answer_help"), s.seat, null, "alert"))));
}

function renderQueues() {
  const box = $("[data-queues]");
  if (!box || !S.snap || !S.snap.supervisor) return;
  box.replaceChildren(...Object.keys(S.snap.queues || {}).map((hid) => {
    const list = S.queues[hid] || [];
    return h("section", { class: "queue", "data-queue": hid },
      h("h3", {}, `${(S.snap.hotlines[hid] || {}).name || hid}`, h("span", { class: "id", text: hid }), h("span", { class: "count", text: String(list.length) })),
      list.length ? h("ol", {}, list.map((w) => h("li", { "data-waiting": w.caller, class: w.offered ? "offered" : null },
        h("span", { class: "num", text: w.number || w.caller.slice(0, 8) }),
        h("span", { class: "timer", "data-since": w.since }, clock(now() - w.since)))))
        : h("p", { class: "muted", text: t("nobody_waiting") }));
  }));
}

function pct(v) { return v === null || v === undefined ? "—" : `${Math.round(v)}%`; }
function secs(v) { return v === null || v === undefined ? "—" : `${Math.round(v)}s`; }

function renderStats() {
  const box = $("[data-stats]");
  if (!box || !S.snap || !S.snap.stats) return;
  const rows = S.snap.stats.hotlines || [];
  const cards = rows.map((r) => {
    // today's offered / answered / abandoned link to the records behind them (the switch's today: no dates)
    const cell = (label, a, b, link) => h("div", { class: "fig" }, h("span", { class: "label", text: label }),
      link ? h("a", { class: "fig-link", href: recordsHref(link), "data-records-link": link.outcome || "offered", title: t("records") },
        h("strong", { text: a })) : h("strong", { text: a }),
      h("span", { class: "sub", text: `${t("last15")}: ${b}` }));
    const d = r.today || {}, q = r["15min"] || {};
    return h("div", { class: "stat-card", "data-stats-hotline": r.hotline },
      h("h3", {}, r.name || r.hotline, h("span", { class: "id", text: r.hotline })),
      h("div", { class: "figs" },
        cell(t("offered"), d.offered ?? 0, q.offered ?? 0, { hotline: r.hotline }),
        cell(t("answered"), d.answered ?? 0, q.answered ?? 0, { hotline: r.hotline, outcome: "answered" }),
        cell(t("abandoned"), d.abandoned ?? 0, q.abandoned ?? 0, { hotline: r.hotline, outcome: "abandoned" }),
        cell(t("asa"), secs(d.speed_of_answer), secs(q.speed_of_answer)),
        cell(t("sl"), pct(d.service_level), pct(q.service_level))));
  });
  box.replaceChildren(...cards, chart(S.snap.stats.day || []));
}

function chart(samples) {
  // answered per hour: the difference between the day's counts at the end of each hour sampled
  const byHour = new Map();
  for (const s of samples) byHour.set(s.hour, (byHour.get(s.hour) || 0) + (s.answered || 0));
  const hours = Array.from({ length: 24 }, (_, i) => String(i).padStart(2, "0"));
  let prev = 0;
  const bars = hours.map((hh) => { if (!byHour.has(hh)) return 0; const v = byHour.get(hh) - prev; prev = byHour.get(hh); return Math.max(0, v); });
  const max = Math.max(1, ...bars);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 240 60");
  svg.setAttribute("class", "chart-svg");
  bars.forEach((v, i) => {
    const r = document.createElementNS(ns, "rect");
    const height = Math.max(1, (v / max) * 48);
    r.setAttribute("x", String(i * 10 + 1)); r.setAttribute("width", "8");
    r.setAttribute("y", String(52 - height)); r.setAttribute("height", String(height));
    r.setAttribute("class", v ? "bar" : "bar empty");
    const tip = document.createElementNS(ns, "title"); tip.textContent = `${hours[i]}:00 ${v}`; r.append(tip);
    svg.append(r);
  });
  for (const hh of [0, 6, 12, 18]) {
    const tx = document.createElementNS(ns, "text");
    tx.setAttribute("x", String(hh * 10 + 1)); tx.setAttribute("y", "60"); tx.setAttribute("class", "axis");
    tx.textContent = `${hh}h`; svg.append(tx);
  }
  return h("div", { class: "stat-card chart", "data-chart": true }, h("h3", { text: t("chart") }), svg);
}

// -- the records page (通话记录) -----------------------------------------------------------
function queryOf(search) {
  const q = new URLSearchParams(search);
  const out = {};
  for (const k of SEARCH) { const v = (q.get(k) || "").trim(); if (v) out[k] = v; }
  return out;
}
function recordsHref(query) { const q = new URLSearchParams(query).toString(); return q ? `/records?${q}` : "/records"; }

function renderNav() {
  const nav = $("[data-nav]");
  if (!S.me) { nav.hidden = true; return; }
  nav.hidden = false;
  if (S.page === "records") { nav.href = "/"; nav.textContent = `← ${S.me.supervisor ? t("back_wall") : t("back_tool")}`; nav.dataset.nav = "floor"; }
  else { nav.href = "/records"; nav.textContent = t("records"); nav.dataset.nav = "records"; }
}

async function searchRecords(query, more) {
  const q = new URLSearchParams(query);
  if (more && S.rec.next) q.set("before", S.rec.next);
  if (!more) { S.rec.query = query; history.replaceState(null, "", recordsHref(query)); }
  document.body.dataset.recordsState = "loading";
  let res;
  try { res = await fetch(`/api/records?${q}`, { credentials: "same-origin" }); } catch (e) { res = null; }
  const data = res ? await res.json().catch(() => ({ error: `-ERR http ${res.status}` })) : { error: "-ERR unreachable the web service does not answer" };
  if (res && res.status === 401) { showLogin(t("expired")); return; }
  if (!res || !res.ok) {
    showError(data.error || `-ERR http ${res.status}`);
    if (!more) { S.rec.rows = []; S.rec.next = ""; S.rec.missing = []; }
  } else {
    showError("");
    S.rec.scope = data.scope; S.rec.today = data.today;
    S.rec.rows = more ? S.rec.rows.concat(data.records) : data.records;
    S.rec.next = data.next;
    S.rec.missing = data.missing || []; // switches that did not answer: their records are not in the list
  }
  S.rec.version = (S.rec.version || 0) + 1;
  document.body.dataset.recordsState = "ready";
  renderRecords();
}

function fmtTime(epoch, withDate) {
  if (!epoch) return "";
  const d = new Date(epoch * 1000), two = (n) => String(n).padStart(2, "0");
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return withDate ? `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}` : time;
}
function outcomeText(o) { return o ? t(`o_${o}`) : ""; }
function byText(b) { return b ? t(`by_${b}`) : ""; }
function seatsText(r) {
  const seats = String(r.seats || "").split(",").filter(Boolean);
  const names = (S.rec.scope && S.rec.scope.seats) || [];
  return seats.map((s) => { const n = names.find((x) => x.id === s); return n ? `${n.name} (${s})` : s; }).join(" → ");
}

function hotlineText(id) {
  // the records' own scope names the viewer's hotlines (it comes with the rows: the records page
  // opened first has no wallboard snapshot yet); another hotline's name from the snapshot
  const x = ((S.rec.scope && S.rec.scope.hotlines) || []).find((y) => y.id === id);
  return x ? x.name : ((S.snap && S.snap.hotlines[id]) || {}).name || "";
}

function renderRecords() {
  const box = $("[data-records]");
  if (!box || S.page !== "records" || !S.me) return;
  // rebuilt only when something shown changed (a snapshot every 30 s must not stop a recording playing)
  const key = JSON.stringify([S.lang, S.rec.version || 0, S.rec.open]);
  if (key === S.rec.key && box.firstChild) return;
  S.rec.key = key;
  const query = S.rec.query || {};
  const scope = S.rec.scope || { hotlines: [], seats: [], supervisor: S.me.supervisor };
  const field = (name, label, input) => h("label", { class: "rfield" }, h("span", { text: label }), input);
  const select = (name, options, value) => h("select", { name },
    h("option", { value: "", text: t("all") }), options.map(([v, text]) => h("option", { value: v, text, selected: v === value })));
  const form = h("form", { class: "rsearch card", "data-records-form": true, on: { submit: (ev) => {
    ev.preventDefault();
    const q = {};
    for (const k of SEARCH) { const el = ev.target.elements[k]; if (el && el.value.trim()) q[k] = el.value.trim(); }
    searchRecords(q, false);
  } } },
    field("from", t("from"), h("input", { type: "date", name: "from", value: query.from || S.rec.today || "" })),
    field("to", t("to"), h("input", { type: "date", name: "to", value: query.to || (query.from ? "" : S.rec.today) || "" })),
    field("hotline", t("hotline"), select("hotline", scope.hotlines.map((x) => [x.id, `${x.name} (${x.id})`]), query.hotline || "")),
    scope.supervisor ? field("seat", t("seat"), select("seat", scope.seats.map((x) => [x.id, `${x.name} (${x.id})`]), query.seat || "")) : null,
    field("caller", t("caller_no"), h("input", { name: "caller", value: query.caller || "", size: 16, maxlength: 64 })),
    field("outcome", t("outcome"), select("outcome", OUTCOMES.map((o) => [o, outcomeText(o)]), query.outcome || "")),
    h("div", { class: "rbuttons" },
      h("button", { type: "submit", class: "primary", "data-action": "search" }, t("search")),
      h("a", { class: "button", "data-export": true, download: "", href: `/api/records.csv?${new URLSearchParams(Object.assign({}, query, { lang: S.lang }))}` }, t("export"))));
  const head = h("tr", {}, [t("time"), t("direction"), t("hotline"), t("caller"), t("seats"), t("waited"), t("talk"), t("hold_s"),
    t("outcome"), t("hangup_by"), t("survey"), t("recording")].map((x) => h("th", { text: x })));
  const rows = [];
  for (const r of S.rec.rows) {
    const open = S.rec.open === r.uuid;
    rows.push(h("tr", { class: `rrow${open ? " open" : ""}`, "data-record": r.uuid, "data-outcome": r.outcome, on: { click: (ev) => {
      if (ev.target.closest("button")) return;
      S.rec.open = open ? "" : r.uuid; renderRecords();
    } } },
      h("td", { class: "num", title: fmtTime(r.entered, true), text: fmtTime(r.entered, r.entered && fmtTime(r.entered, true).slice(0, 10) !== S.rec.today) }),
      h("td", {}, h("span", { class: `dir ${r.direction}`, text: t(r.direction) })),
      h("td", {}, r.hotline ? [hotlineText(r.hotline), " ", h("span", { class: "id", text: r.hotline })] : "—"),
      h("td", {}, h("span", { class: "num", text: r.caller_number }), r.caller_name ? h("span", { class: "muted", text: ` ${r.caller_name}` }) : null),
      h("td", { text: seatsText(r) || "—" }),
      h("td", { class: "num", text: clock(r.waited) }), h("td", { class: "num", text: clock(r.talk) }),
      h("td", { class: "num", text: r.hold ? clock(r.hold) : "—" }),
      h("td", {}, h("span", { class: `outcome ${r.outcome}`, text: outcomeText(r.outcome) })),
      h("td", { text: byText(r.hangup_by) }),
      h("td", { class: r.survey ? "survey" : "muted", text: r.survey ? "★".repeat(r.survey) : "—", title: r.survey ? String(r.survey) : t("no_score") }),
      h("td", {}, r.recording ? h("button", { type: "button", class: "sm", "data-play": r.uuid, on: { click: () => {
        S.rec.open = r.uuid; renderRecords();
        const audio = $(`[data-detail="${CSS.escape(r.uuid)}"] audio`);
        if (audio) audio.play().catch(() => null);
      } } }, `▶ ${t("play")}`) : r.pruned ? h("span", { class: "muted", "data-pruned": r.uuid, text: t("pruned") })
        : h("span", { class: "muted", text: "—" }))));
    if (open) rows.push(detail(r));
  }
  const table = h("table", { class: "rtable", "data-records-table": true }, h("thead", {}, head), h("tbody", {}, rows));
  const missing = (S.rec.missing || []).length
    ? h("p", { class: "warn", "data-missing": S.rec.missing.join(","), text: t("missing").replace("{0}", S.rec.missing.join(", ")) }) : null;
  box.replaceChildren(form, h("div", { class: "card rlist" }, missing, table,
    S.rec.rows.length ? null : h("p", { class: "muted empty", "data-none": true, text: t("none_found") }),
    S.rec.next ? h("button", { type: "button", class: "more", "data-more": true, on: { click: () => searchRecords(S.rec.query || {}, true) } }, t("more")) : null));
}

function detail(r) {
  // the call's timeline: its fields in order (entered, waited, seats, talk, hold, outcome, who hung up, survey)
  const step = (key, label, value) => h("li", { "data-step": key }, h("span", { class: "label", text: label }), h("strong", { text: value }));
  const steps = [
    step("entered", t("entered"), fmtTime(r.entered, true)),
    step("waited", t("waited"), clock(r.waited)),
    step("seats", t("seats"), seatsText(r) || t("nobody")),
    step("talk", t("talk"), clock(r.talk)),
    step("hold", t("hold_s"), clock(r.hold)),
    step("outcome", t("outcome"), outcomeText(r.outcome)),
    step("hangup_by", t("hangup_by"), `${byText(r.hangup_by)}${r.cause ? ` · ${r.cause}` : ""}`),
    step("survey", t("survey"), r.survey ? `${"★".repeat(r.survey)} ${r.survey}/5` : t("no_score")),
  ];
  return h("tr", { class: "rdetail", "data-detail": r.uuid }, h("td", { colspan: 12 },
    h("div", { class: "rdetail-body" },
      h("ol", { class: "timeline", "data-timeline": true }, steps),
      r.recording ? h("div", { class: "player" },
        h("audio", { controls: true, preload: "metadata", src: `/recordings/${encodeURIComponent(r.uuid)}`, "data-audio": r.uuid }),
        r.masked ? h("span", { class: "muted", text: `${t("masked")}: ${r.masked.replace(/;/g, ", ")} s` }) : null)
        : r.pruned ? h("p", { class: "muted", "data-pruned": r.uuid, text: `${t("pruned_on")} ${fmtTime(r.pruned, true)}` }) : null,
      h("span", { class: "id uuid", text: r.uuid }))));
}

function tick() {
  for (const el of $$("[data-since]")) { const s = parseFloat(el.dataset.since); if (s) el.textContent = clock(now() - s); }
  for (const el of $$("[data-until]")) { const u = parseFloat(el.dataset.until); if (u) el.textContent = clock(u - now()); }
}

async function boot() {
  $("[data-login-form]").addEventListener("submit", logIn);
  $("[data-logout]").addEventListener("click", logOut);
  $("[data-lang]").addEventListener("click", () => { S.lang = S.lang === "zh" ? "en" : "zh"; localStorage.setItem("cti.lang", S.lang); applyLang(); });
  applyLang();
  setInterval(tick, 1000);
  const res = await fetch("/me", { credentials: "same-origin" }).catch(() => null);
  if (res && res.ok) start(await res.json());
  else showLogin(res && res.status === 401 && (await res.json().catch(() => ({}))).expired ? t("expired") : "");
}

document.addEventListener("DOMContentLoaded", boot);
