// samem live view: draws the latest frame with contours, ids and trails, the particle table,
// the ensemble MSD and feedback events; sends control-protocol commands (prompt, remove,
// reset, record) over the page's WebSocket. No dependencies.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("frame"), ctx = canvas.getContext("2d");
  const view = (window.samemView = { framesDrawn: 0, contoursDrawn: 0, lastFrame: null, lastState: null, replies: [] });
  let frame = null, image = null, ws = null, drag = null, nextId = 1;

  const colour = (id) => {  // same rule as samem.view.render.color
    const h = (id * 0.618033988749895) % 1, s = 0.85, v = 1, i = Math.floor(h * 6), f = h * 6 - i;
    const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
    const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
    return `rgb(${Math.round(r * 255)},${Math.round(g * 255)},${Math.round(b * 255)})`;
  };
  const fmt = (v, d = 2) => (v === null || v === undefined || !isFinite(v) ? "–" : Number(v).toPrecision(d + 1));
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  function connect() {
    const token = new URLSearchParams(location.search).get("token");
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws${token ? "?token=" + encodeURIComponent(token) : ""}`;
    ws = new WebSocket(url);
    ws.onopen = () => { $("conn").textContent = "connected"; $("conn").className = "ok"; };
    ws.onclose = () => { $("conn").textContent = "disconnected, retrying…"; $("conn").className = "bad"; setTimeout(connect, 2000); };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "frame") onFrame(msg);
      else if (msg.type === "state") onState(msg);
      else if (msg.type === "reply") onReply(msg);
    };
  }

  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  function onFrame(msg) {
    const img = new Image();
    img.onload = () => { frame = msg; image = img; draw(); };
    img.src = msg.image;
  }

  function niceBar(nmPerPx, width) {
    if (!nmPerPx || !(nmPerPx > 0)) return null;
    const target = 0.2 * width * nmPerPx, k = Math.floor(Math.log10(target));
    let best = Math.pow(10, k);
    for (const m of [1, 2, 5]) if (m * Math.pow(10, k) <= target) best = m * Math.pow(10, k);
    return [best, best / nmPerPx];
  }

  function draw() {
    if (!frame || !image) return;
    if (canvas.width !== frame.width || canvas.height !== frame.height) { canvas.width = frame.width; canvas.height = frame.height; }
    const lw = Math.max(1, frame.width / 400);
    ctx.drawImage(image, 0, 0);
    ctx.lineJoin = "round";
    for (const [id, pts] of Object.entries(frame.trails)) {
      if (pts.length < 2) continue;
      ctx.strokeStyle = colour(+id); ctx.lineWidth = lw; ctx.globalAlpha = 0.8; ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke(); ctx.globalAlpha = 1;
    }
    let n = 0;
    ctx.font = `${Math.max(11, frame.width / 45)}px sans-serif`;
    for (const [id, pts] of Object.entries(frame.contours)) {
      if (pts.length < 2) continue;
      ctx.strokeStyle = colour(+id); ctx.lineWidth = lw * 1.5; ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath(); ctx.stroke(); n++;
      const x = Math.max(...pts.map((p) => p[0])), y = Math.min(...pts.map((p) => p[1]));
      ctx.fillStyle = colour(+id); ctx.fillText(id, x + 2, y + 2);
    }
    if (drag) { ctx.strokeStyle = "#fff"; ctx.setLineDash([4, 3]); ctx.strokeRect(drag.x0, drag.y0, drag.x1 - drag.x0, drag.y1 - drag.y0); ctx.setLineDash([]); }
    const nmPerPx = frame.pixel_size_nm ? frame.pixel_size_nm / frame.scale : null, bar = niceBar(nmPerPx, frame.width);
    ctx.fillStyle = "#fff"; ctx.strokeStyle = "#000"; ctx.lineWidth = 3;
    if (bar) {
      const y = frame.height - 14;
      ctx.fillRect(10, y, bar[1], Math.max(3, lw * 2));
      const label = bar[0] >= 1000 ? `${bar[0] / 1000} µm` : `${bar[0]} nm`;
      ctx.strokeText(label, 10, y - 5); ctx.fillText(label, 10, y - 5);
    }
    const t = frame.time_s !== null ? `  t = ${frame.time_s.toFixed(3)} s` : "";
    const caption = `frame ${frame.seq}${t}`;
    ctx.strokeText(caption, 8, 20); ctx.fillText(caption, 8, 20);
    view.framesDrawn++; view.contoursDrawn = n; view.lastFrame = { seq: frame.seq, contours: n };
  }

  // ---------------------------------------------------------------- mouse: box = prompt, click = remove
  const pos = (ev) => {
    const r = canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
  };
  canvas.addEventListener("mousedown", (ev) => { const [x, y] = pos(ev); drag = { x0: x, y0: y, x1: x, y1: y }; });
  canvas.addEventListener("mousemove", (ev) => { if (drag) { [drag.x1, drag.y1] = pos(ev); draw(); } });
  canvas.addEventListener("mouseup", (ev) => {
    if (!drag || !frame) { drag = null; return; }
    [drag.x1, drag.y1] = pos(ev);
    const d = drag; drag = null;
    const s = frame.scale, W = frame.frame_width, H = frame.frame_height;
    const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
    const x0 = clamp(Math.min(d.x0, d.x1) / s, W), x1 = clamp(Math.max(d.x0, d.x1) / s, W);
    const y0 = clamp(Math.min(d.y0, d.y1) / s, H), y1 = clamp(Math.max(d.y0, d.y1) / s, H);
    if (Math.abs(d.x1 - d.x0) < 4 && Math.abs(d.y1 - d.y0) < 4) { removeAt(d.x0, d.y0); draw(); return; }
    if (x1 - x0 < 1 || y1 - y0 < 1) return;
    const st = view.lastState && view.lastState.status;
    const id = Math.max(nextId, (st && st.next_object_id) || 1);
    nextId = id + 1;
    const round = (v) => Math.round(v * 10) / 10;
    send({ cmd: "prompt", boxes: { [String(id)]: [round(x0), round(y0), round(x1), round(y1)] } });
    draw();
  });

  function inside(x, y, pts) {
    let hit = false;
    for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
      const [xi, yi] = pts[i], [xj, yj] = pts[j];
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
    }
    return hit;
  }
  function removeAt(x, y) {
    for (const [id, pts] of Object.entries(frame.contours)) {
      if (inside(x, y, pts)) { send({ cmd: "remove", ids: [+id] }); return; }
    }
  }
  $("reset").onclick = () => send({ cmd: "reset" });
  $("rec-start").onclick = () => send({ cmd: "record", action: "start" });
  $("rec-stop").onclick = () => send({ cmd: "record", action: "stop" });

  function onReply(msg) {
    view.replies.push(msg);
    const el = $("reply"), r = msg.reply || {};
    el.className = r.ok ? "" : "error";
    el.textContent = r.ok ? `${msg.cmd}: ok${r.objects ? " · objects " + r.objects.join(", ") : ""}${r.file ? " · " + r.file : ""}` : `${msg.cmd || "command"}: ${r.error}`;
  }

  // ---------------------------------------------------------------- state: counters, table, MSD, events
  function onState(msg) {
    view.lastState = msg;
    const s = msg.status || {}, lag = s.lag || {}, rec = s.recording;
    if (s.series) $("series").textContent = `series ${s.series.name || "(unnamed)"} · ${s.series.shape.join(" × ")} px`;
    let recText = "no recording file", recClass = "";
    if (msg.recording_available) {
      if (s.recording_paused) { recText = "stopped"; recClass = "warn"; }
      else if (rec) { recText = `${rec.ok ? "recording" : "FAILED"} ${rec.file} (${rec.frames_flushed ?? 0} flushed)`; recClass = rec.ok ? "ok" : "bad"; }
      else recText = "armed (next series)";
    }
    const rows = [
      ["frames received", s.frames_received], ["frames processed", s.frames_processed],
      ["frames dropped", s.frames_dropped], ["messages rejected", s.messages_rejected],
      ["processing", s.processing_fps ? `${s.processing_fps.toFixed(1)} frames/s` : "–"],
      ["lag", `${lag.frames ?? "–"} frames, ${lag.latency_ms ? lag.latency_ms.toFixed(0) + " ms" : "–"}`],
      ["frame SNR", fmt(msg.frame_snr)], ["recording", `<span class="${recClass}">${esc(recText)}</span>`],
    ];
    $("counters").tBodies[0].innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${typeof v === "string" && v.startsWith("<span") ? v : esc(v ?? "–")}</td></tr>`).join("");
    $("rec-start").disabled = !msg.recording_available || !s.recording_paused;
    $("rec-stop").disabled = !msg.recording_available || !!s.recording_paused;
    $("particles").tBodies[0].innerHTML = (msg.particles || []).map((p) => {
      const cls = { present: "ok", lost: "bad", absent: "warn", ended: "" }[p.state];
      return `<tr><td><span style="color:${colour(p.id)}">■</span> ${p.id}</td><td>${fmt(p.D)} ± ${fmt(p.D_err, 1)}</td><td>${fmt(p.alpha)}</td><td>${fmt(p.sigma)}</td><td>${fmt(p.snr)}</td><td class="${cls}">${p.state}</td><td>${p.track_frames}</td></tr>`;
    }).join("");
    $("events").innerHTML = (msg.events || []).slice().reverse().map((e) => {
      const what = e.kind === "recentre" ? `recentre ${e.id ?? ""} (${fmt(e.dx_nm)}, ${fmt(e.dy_nm)}) nm` : e.kind === "falling_behind" ? `falling behind: suggest ${fmt(e.suggested_fps)} frames/s` : `${e.kind} ${e.id ?? ""}${e.detail ? ": " + e.detail : ""}`;
      return `<li>frame ${e.seq ?? "–"}: ${esc(what)}</li>`;
    }).join("");
    drawMsd(msg.msd);
  }

  function drawMsd(m) {
    const c = $("msd"), g = c.getContext("2d"), W = c.width, H = c.height, L = 52, B = 30;
    g.fillStyle = "#0f1114"; g.fillRect(0, 0, W, H);
    g.fillStyle = "#9aa0aa"; g.font = "11px sans-serif";
    if (!m || !m.lag_s.length) { g.fillText("waiting for statistics…", L, H / 2); $("msdfit").textContent = ""; return; }
    const pts = m.lag_s.map((t, i) => [t, m.msd_nm2[i]]).filter(([t, y]) => t > 0 && y > 0);
    if (!pts.length) return;
    const f = m.fit || {}, model = (t) => 4 * f.D_alpha * Math.pow(t, f.alpha) + (f.offset || 0);
    const lx = pts.map((p) => Math.log10(p[0])), ly = pts.map((p) => Math.log10(p[1]));
    let x0 = Math.min(...lx), x1 = Math.max(...lx), y0 = Math.min(...ly), y1 = Math.max(...ly);
    if (x1 - x0 < 0.3) { x0 -= 0.15; x1 += 0.15; } if (y1 - y0 < 0.3) { y0 -= 0.15; y1 += 0.15; }
    const X = (v) => L + ((Math.log10(v) - x0) / (x1 - x0)) * (W - L - 10), Y = (v) => H - B - ((Math.log10(v) - y0) / (y1 - y0)) * (H - B - 10);
    g.strokeStyle = "#444"; g.strokeRect(L, 10, W - L - 10, H - B - 10);
    const u = (m.units && m.units.length) || "nm";
    g.fillText(`lag (s), ${fmt(Math.pow(10, x0))} – ${fmt(Math.pow(10, x1))}`, L, H - 8);
    g.save(); g.translate(12, H - B); g.rotate(-Math.PI / 2); g.fillText(`MSD (${u}²), ${fmt(Math.pow(10, y0))} – ${fmt(Math.pow(10, y1))}`, 0, 0); g.restore();
    g.fillStyle = "#9ec1ff";
    for (const [t, y] of pts) { g.beginPath(); g.arc(X(t), Y(y), 3, 0, 2 * Math.PI); g.fill(); }
    if (f.D_alpha && isFinite(f.alpha)) {
      g.strokeStyle = "#ffb35c"; g.lineWidth = 1.5; g.beginPath();
      for (let i = 0; i <= 40; i++) {
        const t = Math.pow(10, x0 + ((x1 - x0) * i) / 40), y = model(t);
        if (y > 0) (i ? g.lineTo(X(t), Y(y)) : g.moveTo(X(t), Y(y)));
      }
      g.stroke();
      $("msdfit").textContent = `fit MSD = 4 D_α t^α + offset: α = ${fmt(f.alpha)} ± ${fmt(f.alpha_err, 1)}; D (α = 1) = ${fmt(f.D)} ± ${fmt(f.D_err, 1)} ${u}²/s`;
    } else $("msdfit").textContent = "no ensemble fit yet";
  }

  connect();
})();
