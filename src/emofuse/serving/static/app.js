// emofuse live page: webcam + microphone -> WS /v1/stream; file upload -> POST /v1/predict/*.
// Plain JS and canvas, no build step, nothing from a CDN.
"use strict";

const COLORS = { neutral: "#8c8c8c", calm: "#7fb3d5", happy: "#f1c40f", sad: "#2e86c1", angry: "#c0392b",
  fear: "#8e44ad", disgust: "#27ae60", surprise: "#e67e22", love: "#e84393" };
const TIMELINE_SECONDS = 60;
const FRAME_INTERVAL_MS = 50; // up to 20 frames a second; the server answers about the newest one
const STALE_MS = 1500; // no face (or voice) answer for this long: its bars are marked stale
const AUDIO_CHUNK = 2048; // samples per audio message (128 ms at 16 kHz): the words wait less for an utterance's end

const $ = (id) => document.getElementById(id);
const state = {
  ws: null, stream: null, audioContext: null, processor: null, frameTimer: null,
  framesInFlight: 0, lastFaceAt: 0, lastVoiceAt: 0, faceTimes: [], voiceTimes: [], history: [], fusedLabels: [],
  // Read by the browser test (tests/serving/test_page.py) and benchmarks/page_live.py.
  counters: { face: 0, voice: 0, update: 0, transcript: 0, errors: 0, framesSent: 0 },
  // Every answer's time on the page (performance.now() ms) and what the server said of it.
  samples: { faceAt: [], faceLatencyMs: [], voiceAt: [], wordsDelayMs: [] },
};
window.emofuse = state;

// ---------------------------------------------------------------------------------------------
// Bars

function renderModality(container, result) {
  const rows = container.querySelector(".rows");
  const status = container.querySelector(".status");
  container.dataset.status = result.status;
  container.dataset.uncertain = result.status === "ok" && result.uncertain ? "true" : "false";
  status.textContent = result.status === "ok"
    ? (result.uncertain ? "uncertain: too unsure to trust" : "")
    : result.status.replace("_", " ") + (result.detail ? ": " + result.detail : "");
  const probs = result.probabilities || {};
  const labels = Object.keys(probs);
  if (rows.dataset.labels !== labels.join(",")) { // build the rows once per label set
    rows.innerHTML = "";
    for (const label of labels) {
      const row = document.createElement("div");
      row.className = "row"; row.dataset.label = label;
      row.innerHTML = `<span class="name">${label}</span><span class="track"><span class="fill"></span></span><span class="value"></span>`;
      rows.appendChild(row);
    }
    rows.dataset.labels = labels.join(",");
  }
  for (const row of rows.children) {
    const p = probs[row.dataset.label] || 0;
    row.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
    row.querySelector(".value").textContent = (100 * p).toFixed(0) + "%";
    row.classList.toggle("top", row.dataset.label === result.label);
  }
  container.dataset.label = result.label || "";
  container.dataset.updates = String(Number(container.dataset.updates || 0) + 1);
}

function modalityCard(title, result, fused) {
  const div = document.createElement("div");
  div.className = "modality" + (fused ? " fused" : "");
  div.dataset.modality = title.toLowerCase();
  div.innerHTML = `<h2>${title} <small class="status"></small></h2><div class="rows"></div>`;
  renderModality(div, result);
  return div;
}

// ---------------------------------------------------------------------------------------------
// Face box and timeline

function drawBox(face) {
  const canvas = $("overlay"); const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (face.status !== "ok" || !face.box) return;
  const b = face.box; const sx = canvas.width / b.image_width; const sy = canvas.height / b.image_height;
  ctx.strokeStyle = "#2ecc71"; ctx.lineWidth = 2;
  ctx.strokeRect(b.x * sx, b.y * sy, b.width * sx, b.height * sy);
  ctx.fillStyle = "rgba(0,0,0,.6)"; ctx.fillRect(b.x * sx, b.y * sy - 18, face.uncertain ? 160 : 110, 18);
  ctx.fillStyle = "#fff"; ctx.font = "12px sans-serif";
  ctx.fillText(`${face.uncertain ? "unsure: " : ""}${face.label} ${(100 * face.confidence).toFixed(0)}%`, b.x * sx + 4, b.y * sy - 5);
}

function drawTimeline(canvas, points, labels, span) {
  // points: [{t, probs: {label: p}}]; x axis: the last `span` seconds (or the whole video).
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#eee"; ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k++) { const y = h - 10 - (k / 4) * (h - 20); ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke(); }
  if (!points.length) return;
  const tEnd = span.end, tStart = span.start;
  const x = (t) => ((t - tStart) / Math.max(1e-6, tEnd - tStart)) * (w - 10) + 5;
  const y = (p) => h - 10 - p * (h - 20);
  for (const label of labels) {
    ctx.strokeStyle = COLORS[label] || "#555"; ctx.lineWidth = 2; ctx.beginPath();
    points.forEach((pt, i) => { const px = x(pt.t), py = y(pt.probs[label] || 0); if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py); });
    ctx.stroke();
  }
}

function renderLegend(labels) {
  $("legend").innerHTML = labels.map((l) => `<span style="--c:${COLORS[l] || "#555"}">${l}</span>`).join("");
}

// ---------------------------------------------------------------------------------------------
// Live stream

function setConnection(text, kind) { const el = $("connection"); el.textContent = text; el.dataset.state = kind; }

function onMessage(event) {
  const msg = JSON.parse(event.data);
  if (msg.type === "ready") {
    state.fusedLabels = msg.labels.fused; renderLegend(state.fusedLabels);
    setConnection("live", "open");
  } else if (msg.type === "face") {
    state.framesInFlight = 0; state.lastFaceAt = performance.now();
    state.counters.face += 1; state.faceTimes.push(performance.now());
    state.samples.faceAt.push(performance.now()); state.samples.faceLatencyMs.push(msg.latency_ms);
    renderModality($("bars-face"), msg.face); drawBox(msg.face);
    $("face-latency").textContent = msg.latency_ms.toFixed(0) + " ms";
  } else if (msg.type === "update") {
    state.counters.update += 1;
    if (msg.latency_ms.voice_inference !== null) {
      state.counters.voice += 1; state.voiceTimes.push(performance.now()); state.lastVoiceAt = performance.now();
      state.samples.voiceAt.push(performance.now());
      renderModality($("bars-voice"), msg.modalities.voice);
      $("voice-latency").textContent = msg.latency_ms.voice_inference.toFixed(0) + " ms";
    } else if ($("bars-voice").dataset.status === "absent") {
      renderModality($("bars-voice"), msg.modalities.voice);
    }
    renderModality($("bars-words"), msg.modalities.words);
    renderModality($("bars-fused"), msg.fused);
    if (msg.fused.status === "ok") {
      state.history.push({ t: msg.t, probs: msg.fused.probabilities });
      while (state.history.length && state.history[0].t < msg.t - TIMELINE_SECONDS) state.history.shift();
    }
    drawTimeline($("timeline"), state.history, state.fusedLabels, { start: Math.max(0, msg.t - TIMELINE_SECONDS), end: Math.max(msg.t, 1) });
    updateRates();
  } else if (msg.type === "transcript") {
    state.counters.transcript += 1;
    if (msg.delay_ms !== null && msg.delay_ms !== undefined) state.samples.wordsDelayMs.push(msg.delay_ms);
    if (msg.text) {
      const t = $("transcript"); if (t.querySelector("em")) t.innerHTML = "";
      const p = document.createElement("p"); p.textContent = msg.text; t.appendChild(p); t.scrollTop = t.scrollHeight;
    }
  } else if (msg.type === "error") {
    state.counters.errors += 1; console.warn("server:", msg.message);
  }
}

function updateRates() {
  const now = performance.now();
  // A face that has not been answered for a while is shown as stale, not as if it were current.
  for (const [id, last, what] of [["bars-face", state.lastFaceAt, "face"], ["bars-voice", state.lastVoiceAt, "voice"]]) {
    const bars = $(id);
    const stale = last > 0 && now - last > STALE_MS;
    bars.dataset.stale = stale ? "true" : "false";
    if (stale) bars.querySelector(".status").textContent = `waiting: last ${what} answer ${((now - last) / 1000).toFixed(1)} s ago`;
  }
  state.faceTimes = state.faceTimes.filter((t) => t > now - 2000);
  $("face-fps").textContent = (state.faceTimes.length / 2).toFixed(1);
  state.voiceTimes = state.voiceTimes.filter((t) => t > now - 5000);
  if (state.voiceTimes.length > 1) {
    const gaps = state.voiceTimes.slice(1).map((t, i) => t - state.voiceTimes[i]);
    $("voice-interval").textContent = (gaps.reduce((a, b) => a + b, 0) / gaps.length / 1000).toFixed(2) + " s";
  }
}

function tagged(tag, buffer) {
  const out = new Uint8Array(buffer.byteLength + 1); out[0] = tag; out.set(new Uint8Array(buffer), 1); return out.buffer;
}

function floatTo16k(input, rate) {
  // Linear-interpolation resampling to 16 kHz (used only when the browser would not open a 16 kHz context).
  if (rate === 16000) return input;
  const ratio = rate / 16000, n = Math.floor(input.length / ratio), out = new Float32Array(n);
  for (let i = 0; i < n; i++) { const x = i * ratio, j = Math.floor(x), f = x - j; out[i] = input[j] * (1 - f) + (input[j + 1] || 0) * f; }
  return out;
}

function startAudio(stream) {
  let ctx;
  try { ctx = new AudioContext({ sampleRate: 16000 }); } catch (e) { ctx = new AudioContext(); }
  const source = ctx.createMediaStreamSource(stream);
  const processor = ctx.createScriptProcessor(AUDIO_CHUNK, 1, 1);
  processor.onaudioprocess = (e) => {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
    const mono = floatTo16k(e.inputBuffer.getChannelData(0), ctx.sampleRate);
    const pcm = new Int16Array(mono.length);
    for (let i = 0; i < mono.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(mono[i] * 32767)));
    state.ws.send(tagged(1, pcm.buffer));
  };
  source.connect(processor); processor.connect(ctx.destination);
  state.audioContext = ctx; state.processor = processor;
}

function startFrames() {
  const video = $("video"); const grab = document.createElement("canvas"); grab.width = 320; grab.height = 240;
  const ctx = grab.getContext("2d");
  state.frameTimer = setInterval(() => {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN || video.readyState < 2) return;
    // At most two frames waiting for an answer; a lost answer stops counting after a second.
    if (state.framesInFlight >= 2 && performance.now() - state.lastFaceAt < 1000) return;
    ctx.drawImage(video, 0, 0, grab.width, grab.height);
    state.framesInFlight += 1; state.counters.framesSent += 1;
    grab.toBlob((blob) => {
      if (!blob) return;
      // The socket may have closed (stop, page leaving) while the frame was encoded: drop the frame then.
      blob.arrayBuffer().then((b) => {
        const ws = state.ws;
        if (ws && ws.readyState === WebSocket.OPEN) ws.send(tagged(2, b));
        else state.framesInFlight = Math.max(0, state.framesInFlight - 1);
      });
    }, "image/jpeg", 0.75);
  }, FRAME_INTERVAL_MS);
}

async function start() {
  $("start").disabled = true;
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: { channelCount: 1 } });
  } catch (e) {
    setConnection("camera/microphone refused: " + e.message, "error"); $("start").disabled = false; return;
  }
  $("video").srcObject = state.stream;
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/stream");
  ws.binaryType = "arraybuffer";
  ws.onmessage = onMessage;
  ws.onclose = () => setConnection("disconnected", "idle");
  ws.onerror = () => setConnection("connection error", "error");
  state.ws = ws;
  ws.onopen = () => { startAudio(state.stream); startFrames(); };
  $("stop").disabled = false;
}

function stop() {
  clearInterval(state.frameTimer);
  if (state.processor) state.processor.disconnect();
  if (state.audioContext) state.audioContext.close();
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  if (state.ws) state.ws.close();
  state.ws = null; $("start").disabled = false; $("stop").disabled = true;
}

// ---------------------------------------------------------------------------------------------
// Upload

function kindOf(file) {
  const type = file.type.split("/")[0];
  if (type === "audio" || type === "image" || type === "video") return type;
  const ext = file.name.split(".").pop().toLowerCase();
  if (["wav", "flac", "ogg", "mp3", "m4a", "opus"].includes(ext)) return "audio";
  if (["mp4", "webm", "mov", "mkv", "avi"].includes(ext)) return "video";
  return "image";
}

function renderPrediction(container, prediction) {
  for (const name of ["face", "voice", "words"]) {
    container.appendChild(modalityCard(name[0].toUpperCase() + name.slice(1), prediction.modalities[name], false));
  }
  container.appendChild(modalityCard("Fused", prediction.fused, true));
}

async function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0]; if (!file) return;
  const kind = kindOf(file); const status = $("upload-status"); const result = $("upload-result");
  const chart = $("upload-timeline");
  status.textContent = `analysing ${file.name} as ${kind}…`; status.dataset.kind = "busy";
  result.innerHTML = ""; chart.hidden = true;
  const form = new FormData(); form.append("file", file);
  let response, body;
  try {
    response = await fetch(`/v1/predict/${kind}`, { method: "POST", body: form });
    body = await response.json();
  } catch (e) { status.textContent = "upload failed: " + e.message; status.dataset.kind = "error"; return; }
  if (!response.ok) { status.textContent = `${response.status}: ${body.detail}`; status.dataset.kind = "error"; return; }
  status.dataset.kind = "done";
  if (kind === "video") {
    status.textContent = `${file.name}: ${body.windows.length} windows over ${body.duration_s.toFixed(1)} s (${body.latency_ms.toFixed(0)} ms)`;
    const points = body.windows.filter((w) => w.fused.status === "ok").map((w) => ({ t: (w.start_s + w.end_s) / 2, probs: w.fused.probabilities }));
    chart.hidden = false;
    drawTimeline(chart, points, Object.keys(body.windows[0].fused.probabilities || {}).length ? Object.keys(body.windows[0].fused.probabilities) : state.fusedLabels, { start: 0, end: body.duration_s });
    const table = document.createElement("table"); table.className = "windows";
    table.innerHTML = "<tr><th>time</th><th>face</th><th>voice</th><th>words</th><th>fused</th></tr>" + body.windows.map((w) =>
      `<tr><td>${w.start_s.toFixed(1)}–${w.end_s.toFixed(1)} s</td>` + ["face", "voice", "words"].map((m) => cell(w.modalities[m])).join("") + cell(w.fused) + "</tr>").join("");
    result.appendChild(table);
  } else {
    status.textContent = `${file.name} (${body.latency_ms.toFixed(0)} ms)`;
    renderPrediction(result, body);
  }
}

function cell(m) { return `<td>${m.status === "ok" ? `${m.uncertain ? "uncertain: " : ""}${m.label} ${(100 * m.confidence).toFixed(0)}%` : m.status}</td>`; }

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
$("upload-form").addEventListener("submit", upload);
