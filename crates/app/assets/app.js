// The browser client. Talks only to this server's API (api.md); no external assets.
"use strict";

const $ = (id) => document.getElementById(id);
const maps = new Map(); // title -> url, shown as tabs

function show(el, text, isError) {
  el.textContent = text;
  el.classList.toggle("error", !!isError);
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
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

async function refreshStatus() {
  try {
    const s = await api("GET", "/api/session/status");
    sessionId = s.session_id || null;
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
    sessionId = null;
    $("session-id").textContent = "-";
    return null;
  }
}

// The chat needs a session; uploads mint their own.
async function ensureSession() {
  if (sessionId) return;
  const r = await api("POST", "/api/session");
  sessionId = r.session_id;
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

function upload(event) {
  event.preventDefault();
  const csv = $("csv-file").files[0];
  if (!csv) return;
  const form = new FormData();
  form.append("csv_file", csv);
  const shp = $("shapefile").files[0];
  if (shp) form.append("shapefile", shp);
  const xhr = new XMLHttpRequest();
  const bar = $("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  $("upload-button").disabled = true;
  xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; });
  xhr.addEventListener("loadend", async () => {
    $("upload-button").disabled = false;
    bar.hidden = true;
    let data = {};
    try { data = JSON.parse(xhr.responseText); } catch (_) { data = { status: "error", message: "upload failed (" + xhr.status + ")" }; }
    if (xhr.status !== 200 || data.status !== "success") {
      show($("upload-result"), data.message || "upload failed", true);
    } else {
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
  });
  xhr.open("POST", "/upload_both_files");
  xhr.send(form);
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
    const response = await fetch("/upload_population", { method: "POST", credentials: "same-origin", body: form });
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
      headers: { "Content-Type": "application/json" },
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
  try { await api("POST", "/clear_session"); } catch (_) { /* status shows the result */ }
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
  $("tpr-upload-button").disabled = true;
  show(out, "Reading the facility export...", false);
  try {
    const response = await fetch("/api/tpr/upload", { method: "POST", credentials: "same-origin", body: form });
    let data = {};
    try { data = await response.json(); } catch (_) { data = { message: "unexpected answer (" + response.status + ")" }; }
    if (!response.ok || data.status !== "success") throw new Error(data.message || "upload failed (" + response.status + ")");
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
      (data.years || []).join(", ") + " (header on row " + data.header_row + ").\n" + levels.join("\n"), false);
    $("tpr-form").hidden = false;
    tprOptions();
  } catch (err) {
    show(out, err.message, true);
  }
  $("tpr-upload-button").disabled = false;
  refreshStatus();
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
    if (r.joined) text += "\nAdded to the ward data as TPR: run the risk analysis to use it.";
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
