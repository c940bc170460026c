// The browser client. Talks only to this server's API (api.md); no external assets.
"use strict";

const $ = (id) => document.getElementById(id);
const maps = new Map(); // title -> url, shown as tabs

function show(el, text, isError) {
  el.textContent = text;
  el.classList.toggle("error", !!isError);
}

// The session this tab works on: sent as X-Session-ID once known, so two tabs of one browser
// (one cookie) never answer about each other's data. Kept in sessionStorage (per tab) across
// reloads.
function sessionHeaders() {
  return sessionId ? { "X-Session-ID": sessionId } : {};
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: sessionHeaders() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = {};
  try { data = await response.json(); } catch (_) { data = { message: "unexpected answer (" + response.status + ")" }; }
  if (!response.ok || data.status === "error") {
    throw new Error(data.message || ("request failed with status " + response.status));
  }
  return data;
}

// The session, as the last status answer said: null until the first upload or chat makes one
// (opening the page mints none).
let sessionId = null;
try { sessionId = sessionStorage.getItem("prefork_session_id"); } catch (_) { /* storage off */ }

function adoptSession(id) {
  sessionId = id || null;
  try {
    if (sessionId) sessionStorage.setItem("prefork_session_id", sessionId);
    else sessionStorage.removeItem("prefork_session_id");
  } catch (_) { /* storage off */ }
}

async function refreshStatus() {
  try {
    const s = await api("GET", "/api/session/status");
    adoptSession(s.session_id);
    for (const li of document.querySelectorAll("#status-list li")) {
      li.classList.toggle("on", !!s[li.dataset.key]);
    }
    $("session-id").textContent = s.session_id || "-";
    $("worker-pid").textContent = s.worker_pid || "-";
    $("analysis-button").disabled = !s.data_loaded;
    $("itn-button").disabled = !s.analysis_complete;
    return s;
  } catch (err) {
    // An unknown session (removed after a long idle time): the next upload or chat starts anew.
    adoptSession(null);
    $("session-id").textContent = "-";
    return null;
  }
}

// The chat needs a session; uploads mint their own.
async function ensureSession() {
  if (sessionId) return;
  const r = await api("POST", "/api/session");
  adoptSession(r.session_id);
  $("session-id").textContent = sessionId;
}

function addMap(title, url, select = true) {
  if (!url) return;
  maps.set(title, url);
  const tabs = $("map-tabs");
  tabs.textContent = "";
  for (const [t, u] of maps) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = t;
    b.addEventListener("click", () => selectMap(t, u));
    tabs.appendChild(b);
  }
  if (select) selectMap(title, url);
}

function selectMap(title, url) {
  $("map-frame").src = url;
  for (const b of $("map-tabs").children) b.classList.toggle("active", b.textContent === title);
}

// Adds every map as a tab but loads only the first: loading each in turn would abort all but
// the last request and show the least useful map.
function addVisualizations(list) {
  let first = null;
  for (const v of list || []) {
    const title = v.title || v.type || "map";
    const url = v.url || v.path;
    if (!url) continue;
    // A table's CSV (exploration answers, the results package) goes to the downloads list.
    if (v.type === "download") { addDownload(title, url); continue; }
    addMap(title, url, false);
    if (!first) first = [title, url];
  }
  if (first) selectMap(first[0], first[1]);
}

function addDownload(name, url) {
  const li = document.createElement("li");
  const a = document.createElement("a");
  a.href = url;
  a.textContent = name;
  a.setAttribute("download", "");
  li.appendChild(a);
  $("download-list").appendChild(li);
}

// Files above one chunk go up in chunks (1 MiB; `?chunk_kib=N` on the page's URL changes it),
// each retried with backoff; after a dropped connection the server says which chunks it holds
// and only the rest are sent. Progress counts bytes the server confirmed plus the chunk in flight.
const CHUNK_BYTES = (() => {
  const kib = parseInt(new URLSearchParams(location.search).get("chunk_kib") || "1024", 10);
  return (kib > 0 && kib <= 8192 ? kib : 1024) * 1024;
})();
const MAX_TRIES = 8;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const backoff = (attempt) => Math.min(30000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);

// One request through XMLHttpRequest (upload progress events); resolves with {status, data},
// rejects only when no answer came (network error, timeout, dropped connection).
function xhrSend(method, path, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    for (const [k, v] of Object.entries(headers || {})) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
    xhr.timeout = 10 * 60 * 1000;
    xhr.addEventListener("load", () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (_) { data = { status: "error", message: "unexpected answer (" + xhr.status + ")" }; }
      resolve({ status: xhr.status, data });
    });
    for (const what of ["error", "timeout", "abort"]) {
      xhr.addEventListener(what, () => reject(new Error("connection " + (what === "error" ? "lost" : what))));
    }
    xhr.send(body);
  });
}

function uploadNote(text) {
  $("upload-note").textContent = text;
}

async function uploadInChunks(csv, shp, bar) {
  const uploadId = "page_" + Date.now().toString(36) + "_" + Math.random().toString(36).slice(2, 12);
  const parts = [{ type: "csv", file: csv }];
  if (shp) parts.push({ type: "shapefile", file: shp });
  const chunks = [];
  for (const p of parts) {
    p.total = Math.max(1, Math.ceil(p.file.size / CHUNK_BYTES));
    for (let i = 0; i < p.total; i++) chunks.push({ p, i, key: p.type + "." + i });
  }
  const totalBytes = parts.reduce((n, p) => n + p.file.size, 0) || 1;
  const held = new Set();
  const sizeOf = (c) => Math.min(CHUNK_BYTES, c.p.file.size - c.i * CHUNK_BYTES);
  const confirmed = () => chunks.filter((c) => held.has(c.key)).reduce((n, c) => n + sizeOf(c), 0);
  const progress = (inFlight) => {
    const pct = Math.min(100, (100 * (confirmed() + inFlight)) / totalBytes);
    bar.value = pct;
    $("upload-percent").textContent = Math.floor(pct) + "%";
  };
  // After a failure: what does the server hold? (Maybe the chunk arrived and only the answer
  // was lost.) A failure here just means we are still offline.
  const resync = async () => {
    try {
      const r = await xhrSend("GET", "/upload/status?upload_id=" + encodeURIComponent(uploadId), null, sessionHeaders());
      if (r.status !== 200) return;
      for (const [type, part] of Object.entries(r.data.parts || {})) {
        for (const i of part.received || []) held.add(type + "." + i);
      }
    } catch (_) { /* still offline */ }
  };
  const sendChunk = async (c) => {
    for (let attempt = 0; ; attempt++) {
      if (held.has(c.key)) return;
      const form = new FormData();
      form.append("upload_id", uploadId);
      form.append("file_type", c.p.type);
      form.append("chunk_index", String(c.i));
      form.append("total_chunks", String(c.p.total));
      form.append("chunk", c.p.file.slice(c.i * CHUNK_BYTES, c.i * CHUNK_BYTES + CHUNK_BYTES), c.p.file.name);
      let failure;
      try {
        const r = await xhrSend("POST", "/upload/chunk", form, sessionHeaders(), progress);
        if (r.status === 200 && r.data.status === "success") {
          if (r.data.session_id) adoptSession(r.data.session_id);
          held.add(c.key);
          progress(0);
          uploadNote("");
          return;
        }
        // A refusal (too large, bad request) will not change on a retry.
        if (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
          throw Object.assign(new Error(r.data.message || "upload refused (" + r.status + ")"), { final: true });
        }
        failure = r.data.message || "server busy (" + r.status + ")";
      } catch (err) {
        if (err.final) throw err;
        failure = err.message;
      }
      if (attempt + 1 >= MAX_TRIES) throw new Error("upload stopped after " + MAX_TRIES + " tries: " + failure + ". Press Upload to resume.");
      const wait = backoff(attempt);
      uploadNote(failure + "; retrying in " + Math.ceil(wait / 1000) + " s (part " + (c.i + 1) + " of " + c.p.total + " of the " + c.p.type + ")");
      await sleep(wait);
      await resync();
      progress(0);
    }
  };
  for (let round = 0; ; round++) {
    for (const c of chunks) await sendChunk(c);
    const body = JSON.stringify({
      upload_id: uploadId,
      csv_filename: csv.name,
      shapefile_filename: shp ? shp.name : null,
      csv_total_chunks: parts[0].total,
      shp_total_chunks: shp ? parts[1].total : 0,
    });
    let r;
    for (let attempt = 0; ; attempt++) {
      try {
        r = await xhrSend("POST", "/upload/finalize", body, Object.assign({ "Content-Type": "application/json" }, sessionHeaders()));
        if (r.status < 500) break;
      } catch (err) {
        if (attempt + 1 >= MAX_TRIES) throw err;
      }
      if (attempt + 1 >= MAX_TRIES) break;
      await sleep(backoff(attempt));
    }
    // 409: the server lacks chunks (e.g. removed after a very long pause): send them again.
    if (r.status === 409 && round < 3) {
      held.clear();
      await resync();
      continue;
    }
    return r;
  }
}

async function upload(event) {
  event.preventDefault();
  const csv = $("csv-file").files[0];
  if (!csv) return;
  const shp = $("shapefile").files[0];
  const bar = $("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  $("upload-percent").textContent = "0%";
  uploadNote("");
  $("upload-button").disabled = true;
  let r;
  try {
    if (csv.size + (shp ? shp.size : 0) > CHUNK_BYTES) {
      r = await uploadInChunks(csv, shp, bar);
    } else {
      const form = new FormData();
      form.append("csv_file", csv);
      if (shp) form.append("shapefile", shp);
      r = await xhrSend("POST", "/upload_both_files", form, sessionHeaders(), (n) => {
        bar.value = (100 * n) / (csv.size + (shp ? shp.size : 0) || 1);
      });
    }
  } catch (err) {
    r = { status: 0, data: { status: "error", message: err.message } };
  }
  $("upload-button").disabled = false;
  bar.hidden = true;
  $("upload-percent").textContent = "";
  const data = r.data || {};
  if (r.status !== 200 || data.status !== "success") {
    show($("upload-result"), data.message || "upload failed", true);
  } else {
    if (data.session_id) adoptSession(data.session_id);
    uploadNote("");
    const s = data.data_summary || {};
    const m = data.ward_matching || {};
    let text = "Loaded " + s.total_rows + " wards and " + s.total_columns + " columns.";
    if (data.upload_type === "csv_shapefile") {
      text += "\nWards matched to the shapefile: " + m.matched + ".";
      if (m.unmatched && m.unmatched.length) text += "\nNot matched: " + m.unmatched.join(", ");
    }
    show($("upload-result"), text, false);
    maps.clear();
    $("map-tabs").textContent = "";
    $("download-list").textContent = "";
  }
  refreshStatus();
}

// ITN planning needs ward populations when the ward data has none.
async function uploadPopulation(event) {
  event.preventDefault();
  const file = $("population-file").files[0];
  if (!file) return;
  const out = $("action-result");
  const form = new FormData();
  form.append("population_file", file);
  $("population-button").disabled = true;
  show(out, "Uploading ward populations...", false);
  try {
    const response = await fetch("/upload_population", { method: "POST", credentials: "same-origin", headers: sessionHeaders(), body: form });
    let data = {};
    try { data = await response.json(); } catch (_) { data = { message: "unexpected answer (" + response.status + ")" }; }
    if (!response.ok || data.status !== "success") throw new Error(data.message || "upload failed (" + response.status + ")");
    let text = "Population loaded for " + data.wards + " wards (" + data.matched + " match the ward data).";
    if (data.unmatched && data.unmatched.length) text += "\nNot matched: " + data.unmatched.join(", ");
    show(out, text, false);
  } catch (err) {
    show(out, err.message, true);
  }
  $("population-button").disabled = false;
  refreshStatus();
}

async function runAnalysis() {
  const out = $("action-result");
  $("analysis-button").disabled = true;
  show(out, "Running the risk analysis...", false);
  try {
    const r = await api("POST", "/run_analysis", {});
    const top = (r.composite && r.composite.top_wards) || [];
    let text = (r.reused ? "The analysis was already done for this upload (" : "Analysis complete (") + r.analysis_id + ").\n";
    text += "Variables: " + (r.variables_used || []).join(", ") + "\n";
    text += "Most vulnerable wards: " + top.slice(0, 5).map((w) => w.ward_name || w.WardName || w).join(", ");
    if (r.warnings && r.warnings.length) text += "\nNote: " + r.warnings.join("\nNote: ");
    show(out, text, false);
    addVisualizations(r.visualizations);
  } catch (err) {
    show(out, err.message, true);
  }
  refreshStatus();
}

async function planItn(event) {
  event.preventDefault();
  const out = $("action-result");
  const body = {
    total_nets: parseInt($("total-nets").value, 10),
    avg_household_size: parseFloat($("household-size").value),
    urban_threshold: parseFloat($("urban-threshold").value),
    method: $("itn-method").value,
  };
  show(out, "Planning the distribution...", false);
  try {
    const r = await api("POST", "/api/itn/update-distribution", body);
    const s = r.stats || {};
    show(out, "Nets allocated: " + s.allocated + " of " + s.total_nets + " to " + s.prioritized_wards +
      " wards; population covered: " + s.covered_population + " (" + s.coverage_percent + "%).", false);
    addMap("ITN plan", r.map_path);
  } catch (err) {
    show(out, err.message, true);
  }
  refreshStatus();
}

function chatLine(text, who) {
  const div = document.createElement("div");
  div.className = "msg " + who;
  div.textContent = text;
  $("chat-log").appendChild(div);
  $("chat-log").scrollTop = $("chat-log").scrollHeight;
  return div;
}

async function sendChat(event) {
  event.preventDefault();
  const input = $("chat-input");
  const message = input.value.trim();
  if (!message) return;
  input.value = "";
  chatLine(message, "user");
  const line = chatLine("...", "bot");
  try {
    await ensureSession();
    const response = await fetch("/send_message_streaming", {
      method: "POST", credentials: "same-origin",
      headers: Object.assign({ "Content-Type": "application/json" }, sessionHeaders()),
      body: JSON.stringify({ message }),
    });
    if (!response.ok || !response.body) throw new Error("the assistant is not available (" + response.status + ")");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const l of frame.split("\n")) {
          if (!l.startsWith("data:")) continue;
          let data;
          try { data = JSON.parse(l.slice(5)); } catch (_) { continue; }
          if (data.content) { text += data.content; line.textContent = text; }
          if (data.visualizations) addVisualizations(data.visualizations);
          if (data.status === "error") line.classList.add("error");
        }
      }
    }
  } catch (err) {
    line.textContent = err.message;
    line.classList.add("error");
  }
  refreshStatus();
}

async function buildReport() {
  try {
    const r = await api("POST", "/generate_report");
    addDownload("Analysis package (zip)", r.download_url);
  } catch (err) {
    addDownload("Failed: " + err.message, "#");
  }
}

async function clearSession() {
  try {
    const r = await api("POST", "/clear_session");
    if (r.new_session_id) adoptSession(r.new_session_id);
  } catch (_) { /* status shows the result */ }
  maps.clear();
  $("map-tabs").textContent = "";
  $("map-frame").removeAttribute("src");
  $("download-list").textContent = "";
  show($("upload-result"), "", false);
  show($("action-result"), "", false);
  refreshStatus();
}

// The facility export (TPR): upload, then the guided choices with each option's figures.
function tprPct(v) { return (v === null || v === undefined) ? "no tests" : v + "%"; }

function tprQuery() {
  const q = new URLSearchParams();
  if (!$("tpr-state-label").hidden && $("tpr-state").value) q.set("state", $("tpr-state").value);
  q.set("facility_level", $("tpr-level").value);
  q.set("age_group", $("tpr-age").value);
  return q.toString();
}

async function tprOptions() {
  try {
    const r = await api("GET", "/api/tpr/options?" + tprQuery());
    const lines = (r.options || []).map((o) =>
      o.method + ": " + o.wards_with_tpr + " wards with a TPR, " + o.wards_without_tests +
      " without tests; overall " + tprPct(o.state_tpr));
    show($("tpr-options"), lines.join("\n"), false);
  } catch (err) {
    show($("tpr-options"), err.message, true);
  }
}

async function tprUpload(event) {
  event.preventDefault();
  const file = $("tpr-file").files[0];
  if (!file) return;
  const out = $("tpr-result");
  const form = new FormData();
  form.append("file", file);
  const shapefile = $("tpr-shapefile").files[0];
  if (shapefile) form.append("shapefile", shapefile);
  $("tpr-upload-button").disabled = true;
  show(out, "Reading the facility export...", false);
  try {
    const response = await fetch("/api/tpr/upload", { method: "POST", credentials: "same-origin", headers: sessionHeaders(), body: form });
    let data = {};
    try { data = await response.json(); } catch (_) { data = { message: "unexpected answer (" + response.status + ")" }; }
    if (!response.ok || data.status !== "success") throw new Error(data.message || "upload failed (" + response.status + ")");
    if (data.session_id) adoptSession(data.session_id);
    const states = data.states || [];
    const sel = $("tpr-state");
    sel.textContent = "";
    for (const st of states) {
      const o = document.createElement("option");
      o.value = st.state;
      o.textContent = st.state + " (" + st.facilities + " facilities)";
      sel.appendChild(o);
    }
    $("tpr-state-label").hidden = states.length < 2;
    const levels = (data.facility_levels || []).map((l) =>
      l.level + ": " + l.facilities + " facilities, RDT " + tprPct(l.rdt_tpr) + ", microscopy " + tprPct(l.microscopy_tpr));
    show(out, "Read " + data.rows + " facility-months of " + data.facilities + " facilities, years " +
      (data.years || []).join(", ") + " (header on row " + data.header_row + ").\n" + levels.join("\n") +
      tprShapefileText(data.shapefile), false);
    $("tpr-form").hidden = false;
    tprOptions();
  } catch (err) {
    show(out, err.message, true);
  }
  $("tpr-upload-button").disabled = false;
  refreshStatus();
}

function tprShapefileText(sh) {
  if (!sh) return "";
  let text = "\nWard shapefile: " + sh.matched + " of " + sh.data_wards + " wards of the export matched its " +
    sh.wards + " wards.";
  const un = (sh.unmatched || []).map((u) => u.ward + " (" + u.lga + ")");
  if (un.length) text += " Not matched: " + un.join(", ") + ".";
  return text;
}

async function tprCalculate(event) {
  event.preventDefault();
  const out = $("tpr-result");
  const body = { facility_level: $("tpr-level").value, age_group: $("tpr-age").value,
    test_method: $("tpr-method").value, replace: true };
  if (!$("tpr-state-label").hidden) body.state = $("tpr-state").value;
  $("tpr-calculate-button").disabled = true;
  show(out, "Calculating ward TPR...", false);
  try {
    const r = await api("POST", "/api/tpr/calculate", body);
    const s = r.summary || {};
    let text = r.metric_label + "\n" + r.wards + " wards; overall " + s.state_tpr + "% of " + s.state_tested +
      " tests; median ward " + s.median_tpr + "%.";
    if (r.trend) text += "\nTrend: " + r.trend.worsening + " worsening, " + r.trend.improving + " improving, " + r.trend.stable + " stable.";
    if (r.ward_table_from_tpr) text += "\nThe ward TPR is now your ward data (one row per shapefile ward). " + (r.analysis_note || "");
    else if (r.joined) text += "\nAdded to the ward data as TPR: run the risk analysis to use it.";
    show(out, text, false);
    let main = null;
    for (const m of r.maps || []) {
      const title = m.file.replace(".html", "").replace(/_/g, " ");
      addMap(title, m.url, false);
      if (m.file === "tpr_map.html") main = [title, m.url];
    }
    if (main) selectMap(main[0], main[1]);
    for (const d of r.downloads || []) addDownload(d.split("/").pop(), d);
  } catch (err) {
    show(out, err.message, true);
  }
  $("tpr-calculate-button").disabled = false;
  refreshStatus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("tpr-upload-form").addEventListener("submit", tprUpload);
  $("tpr-form").addEventListener("submit", tprCalculate);
  for (const id of ["tpr-level", "tpr-age", "tpr-state"]) $(id).addEventListener("change", tprOptions);
  $("upload-form").addEventListener("submit", upload);
  $("analysis-button").addEventListener("click", runAnalysis);
  $("population-form").addEventListener("submit", uploadPopulation);
  $("itn-form").addEventListener("submit", planItn);
  $("chat-form").addEventListener("submit", sendChat);
  $("report-button").addEventListener("click", buildReport);
  $("clear-button").addEventListener("click", clearSession);
  refreshStatus();
});
