-- slua.view.page_js: the script of a view page (slua.view.html). It draws the data: the
-- logit-lens grid in blocks of `wrap` positions, the DoLa and SkipLayerCD strips under each
-- block, the colour bar, and the details of a cell on hover or keyboard focus. It computes
-- nothing but colours and layout.
return [==[
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("slua-data").textContent);
  var G = D.geometry, CW = G.cell_w, CH = G.cell_h, LW = G.label_w;
  var nL = D.layers.length, nT = D.tokens.length, P = D.prompt_len;
  var state = { color: "prob", lens: "norm", wrap: D.wrap };
  var views = document.getElementById("views"), tip = document.getElementById("tooltip");
  document.documentElement.style.setProperty("--ch", CH + "px");

  function tokText(id) { var t = D.vocab[String(id)]; return t === undefined ? String(id) : t; }
  // a token as a cell shows it: escapes for newlines and tabs, a visible mark for a token that
  // is only spaces (or empty), at most 8 characters
  function visible(s) {
    if (s === "") return "\u2205";
    return /^ +$/.test(s) ? s.replace(/ /g, "\u2423") : s;
  }
  function shown(s) {
    s = visible(s);
    s = s.replace(/\n/g, "\\n").replace(/\t/g, "\\t");
    var chars = Array.from(s);
    return chars.length > 8 ? chars.slice(0, 7).join("") + "\u2026" : s;
  }
  function quoted(s) { return "\u201c" + s.replace(/\n/g, "\\n") + "\u201d"; }
  function pct(p) { return (100 * p).toFixed(2) + " %"; }

  var maxH = 1e-9, maxJS = 1e-12, maxSkipH = 1e-9;
  D.cells.forEach(function (col) {
    col.forEach(function (c) {
      if (c.n) maxH = Math.max(maxH, c.n.h);
      if (c.r) maxH = Math.max(maxH, c.r.h);
    });
  });
  (D.dola || []).forEach(function (s) { if (s) (s.js || []).forEach(function (v) { if (v !== null) maxJS = Math.max(maxJS, v); }); });
  if (D.skip) D.skip.steps.forEach(function (s) { maxSkipH = Math.max(maxSkipH, s.expert || 0, s.amateur || 0); });

  // colour scales: probabilities white to dark blue, entropies white to dark orange
  var RAMPS = { prob: [8, 48, 107], target: [8, 48, 107], entropy: [166, 54, 3] };
  function colour(v, kind) {
    v = Math.max(0, Math.min(1, v || 0));
    var c = RAMPS[kind] || RAMPS.prob;
    return "rgb(" + c.map(function (x) { return Math.round(255 + (x - 255) * v); }).join(",") + ")";
  }
  // the grid's lens of a cell (n: the logit lens with the final norm, r: the raw early exit)
  function pick(cell) { return (state.lens === "raw" ? cell.r : cell.n) || cell.n || cell.r; }
  function value(cell) {
    var x = pick(cell);
    if (state.color === "entropy") return x.h / maxH;
    if (state.color === "target") return x.t || 0;
    return x.p[0];
  }

  function drawColorbar() {
    var bar = document.getElementById("colorbar");
    var what = state.color === "entropy" ? "entropy (nats)" : state.color === "target" ? "target probability" : "top-1 probability";
    var hi = state.color === "entropy" ? maxH : 1;
    bar.innerHTML = "";
    bar.setAttribute("aria-label", "colour scale: " + what + " from 0 (white) to " + hi.toFixed(3) + " (dark)");
    var lab = document.createElement("span"); lab.textContent = what + ":"; bar.appendChild(lab);
    var lo = document.createElement("span"); lo.textContent = "0"; bar.appendChild(lo);
    var ramp = document.createElement("span"); ramp.className = "ramp";
    ramp.style.background = "linear-gradient(to right, " + colour(0, state.color) + ", " + colour(0.5, state.color) + ", " + colour(1, state.color) + ")";
    bar.appendChild(ramp);
    var hiEl = document.createElement("span"); hiEl.textContent = hi.toFixed(state.color === "entropy" ? 2 : 1); bar.appendChild(hiEl);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function gridOf(n, label) {
    var g = el("div", "grid");
    g.setAttribute("role", "grid");
    g.setAttribute("aria-label", label);
    g.style.gridTemplateColumns = LW + "px repeat(" + n + ", " + CW + "px)";
    return g;
  }
  function rowOf(grid, label, cls) {
    var r = el("div", "row" + (cls ? " " + cls : ""));
    r.setAttribute("role", "row");
    var h = el("div", "lab", label);
    h.setAttribute("role", "rowheader");
    r.appendChild(h);
    grid.appendChild(r);
    return r;
  }
  function cellIn(row, text, label) {
    var c = el("div", "cell", text);
    c.setAttribute("role", "gridcell");
    c.tabIndex = -1;
    if (label) c.setAttribute("aria-label", label);
    row.appendChild(c);
    return c;
  }

  function lensLabel(t, li) {
    var x = pick(D.cells[t][li]);
    var s = "layer " + D.layers[li] + ", position " + (t + 1) + " (" + quoted(D.tokens[t].text) + "): top-1 " +
      quoted(tokText(x.i[0])) + " " + pct(x.p[0]) + ", entropy " + x.h.toFixed(2);
    if (D.target && x.r) s += ", target rank " + x.r;
    return s;
  }

  function drawBlock(start, end) {
    var n = end - start;
    var sec = el("section", "block");
    sec.setAttribute("aria-label", "positions " + (start + 1) + " to " + end);
    sec.appendChild(el("h2", null, "positions " + (start + 1) + "\u2013" + end));
    var g = gridOf(n, "logit lens, layers by positions " + (start + 1) + " to " + end);
    g.classList.add("lens");
    for (var li = nL - 1; li >= 0; li--) {
      var r = rowOf(g, "layer " + D.layers[li]);
      for (var t = start; t < end; t++) {
        var x = pick(D.cells[t][li]);
        var c = cellIn(r, shown(tokText(x.i[0])), lensLabel(t, li));
        c.dataset.layer = li; c.dataset.pos = t;
        c.classList.add("lens-cell");
        if (t === P && P > 0) c.classList.add("gen-start");
      }
    }
    var inp = rowOf(g, "input", "input");
    for (var t2 = start; t2 < end; t2++) {
      var ic = cellIn(inp, shown(D.tokens[t2].text),
        (t2 >= P ? "generated" : "prompt") + " token " + (t2 + 1) + ": " + quoted(D.tokens[t2].text));
      if (t2 >= P) ic.classList.add("gen");
      if (t2 === P && P > 0) ic.classList.add("gen-start");
    }
    sec.appendChild(g);
    if (D.dola) sec.appendChild(dolaStrip(start, end));
    if (D.skip) sec.appendChild(skipStrip(start, end));
    return sec;
  }

  // the step whose scores came from position t's logits (step i uses position P - 1 + i)
  function stepAt(list, t) { var i = t - (P - 1); return i >= 0 && list && i < list.length ? list[i] : null; }

  function dolaStrip(start, end) {
    var n = end - start, first = null;
    for (var k = 0; k < D.dola.length; k++) if (D.dola[k]) { first = D.dola[k]; break; }
    var cands = first && first.candidates ? first.candidates : [];
    var g = gridOf(n, "DoLa: premature layer and divergences per step");
    g.classList.add("strip", "dola");
    var rows = { layer: rowOf(g, "DoLa layer") };
    cands.forEach(function (l) { rows["js" + l] = rowOf(g, "JS L" + l); });
    rows.kept = rowOf(g, "kept");
    for (var t = start; t < end; t++) {
      var s = stepAt(D.dola, t);
      var c = cellIn(rows.layer, s ? String(s.layer) : "", s ? "step " + (t - P + 2) + ": premature layer " + s.layer : "no step");
      if (s) c.style.background = "#fff3c4";
      cands.forEach(function (l, j) {
        var v = s && s.js && s.js[j] !== undefined ? s.js[j] : null;
        var jc = cellIn(rows["js" + l], v === null ? "" : v.toExponential(1),
          v === null ? "no step" : "JS divergence of layer " + l + ": " + v.toExponential(3) + (s.layer === l ? " (chosen)" : ""));
        if (v !== null) { jc.style.background = colour(v / maxJS, "entropy"); jc.style.color = v / maxJS > 0.55 ? "#fff" : "#111"; }
        if (s && s.layer === l) jc.style.fontWeight = "bold";
      });
      cellIn(rows.kept, s && s.kept !== undefined ? String(s.kept) : "", s && s.kept !== undefined ? "relative-top survivors: " + s.kept : "");
    }
    return g;
  }

  function skipStrip(start, end) {
    var n = end - start, sp = D.skip.span;
    var g = gridOf(n, "SkipLayerCD: amateur skips blocks " + sp[0] + " to " + (sp[1] - 1) + "; entropies per step");
    g.classList.add("strip", "skip");
    var rows = { e: rowOf(g, "H expert"), a: rowOf(g, "H amateur"), k: rowOf(g, "kept") };
    for (var t = start; t < end; t++) {
      var s = stepAt(D.skip.steps, t);
      [["e", "expert"], ["a", "amateur"]].forEach(function (w) {
        var v = s ? s[w[1]] : null;
        var c = cellIn(rows[w[0]], v === null || v === undefined ? "" : v.toFixed(2),
          v === null || v === undefined ? "no step" : w[1] + " entropy " + v.toFixed(3) + " nats");
        if (v !== null && v !== undefined) { c.style.background = colour(v / maxSkipH, "entropy"); c.style.color = v / maxSkipH > 0.55 ? "#fff" : "#111"; }
      });
      cellIn(rows.k, s && s.kept !== undefined ? String(s.kept) : "", s && s.kept !== undefined ? "plausible tokens kept: " + s.kept : "");
    }
    return g;
  }

  function recolour() {
    var cells = views.querySelectorAll(".lens-cell");
    for (var i = 0; i < cells.length; i++) {
      var c = cells[i], cell = D.cells[+c.dataset.pos][+c.dataset.layer], v = value(cell);
      var x = pick(cell);
      c.textContent = shown(tokText(x.i[0]));
      c.style.background = colour(v, state.color);
      c.style.color = v > 0.55 ? "#fff" : "#111";
      c.setAttribute("aria-label", lensLabel(+c.dataset.pos, +c.dataset.layer));
    }
    drawColorbar();
  }

  function render() {
    views.innerHTML = "";
    if (D.interventions) views.appendChild(el("p", "meta", "Interventions active at: " + D.interventions.join(", ")));
    if (D.skip) {
      var p = el("p", "meta", "SkipLayerCD: the amateur skips blocks [" + D.skip.span[0] + ", " + D.skip.span[1] + ") (" + (D.skip.source || "") + ")" +
        (D.skip.profile ? "; SL-D entropy profile per layer: " + D.skip.profile.map(function (v) { return v.toFixed(2); }).join(", ") : ""));
      views.appendChild(p);
    }
    for (var s = 0; s < nT; s += state.wrap) views.appendChild(drawBlock(s, Math.min(nT, s + state.wrap)));
    var first = views.querySelector(".cell");
    if (first) first.tabIndex = 0;
    recolour();
  }

  function lensTable(x, caption, kind) {
    var tb = el("table");
    tb.dataset.lens = kind;
    tb.appendChild(el("caption", null, caption));
    x.i.forEach(function (id, k) {
      var tr = el("tr", "topk");
      tr.dataset.lens = kind; tr.dataset.id = id; tr.dataset.p = String(x.p[k]);
      tr.appendChild(el("td", null, String(k + 1)));
      tr.appendChild(el("td", "tok", quoted(visible(tokText(id)))));
      tr.appendChild(el("td", "prob", pct(x.p[k])));
      tb.appendChild(tr);
    });
    var foot = el("tr");
    var td = el("td", null, "entropy " + x.h.toFixed(3) + " nats" + (D.target && x.r ? "; target rank " + x.r + ", p " + x.t.toExponential(3) : ""));
    td.colSpan = 3;
    if (D.target && x.r) { td.dataset.rank = x.r; td.dataset.targetP = String(x.t); td.className = "target"; }
    foot.appendChild(td);
    tb.appendChild(foot);
    return tb;
  }

  function show(c) {
    if (!c.classList.contains("lens-cell")) { tip.hidden = true; return; }
    var t = +c.dataset.pos, li = +c.dataset.layer, cell = D.cells[t][li];
    tip.innerHTML = "";
    tip.dataset.layer = D.layers[li]; tip.dataset.pos = t;
    var next = t + 1 < nT ? "; next token " + quoted(D.tokens[t + 1].text) : "";
    tip.appendChild(el("h3", null, "layer " + D.layers[li] + " \u00b7 position " + (t + 1) + " " + quoted(D.tokens[t].text) + next));
    var box = el("div", "lenses");
    if (cell.n) box.appendChild(lensTable(cell.n, "logit lens (final norm)", "norm"));
    if (cell.r) box.appendChild(lensTable(cell.r, "raw early exit", "raw"));
    tip.appendChild(box);
    if (cell.d !== undefined && cell.d !== null) tip.appendChild(el("div", null, "DoLa divergence from the final layer: " + cell.d.toExponential(3)));
    tip.hidden = false;
    // below the cell, kept inside the window's width
    var r = c.getBoundingClientRect();
    var left = Math.max(4, Math.min(r.left, document.documentElement.clientWidth - tip.offsetWidth - 4));
    tip.style.left = (window.scrollX + left) + "px";
    tip.style.top = (window.scrollY + r.bottom + 4) + "px";
  }

  views.addEventListener("mouseover", function (e) { var c = e.target.closest(".cell"); if (c) show(c); });
  views.addEventListener("mouseleave", function () { tip.hidden = true; });
  views.addEventListener("focusin", function (e) { var c = e.target.closest(".cell"); if (c) show(c); });
  views.addEventListener("keydown", function (e) {
    var c = e.target.closest(".cell");
    if (!c) return;
    if (e.key === "Escape") { tip.hidden = true; return; }
    var moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [1, 0], ArrowDown: [-1, 0] };
    var m = moves[e.key];
    if (!m || !c.classList.contains("lens-cell")) return;
    var li = +c.dataset.layer + m[0], t = +c.dataset.pos + m[1];
    var next = views.querySelector('.lens-cell[data-layer="' + li + '"][data-pos="' + t + '"]');
    if (next) { e.preventDefault(); c.tabIndex = -1; next.tabIndex = 0; next.focus(); }
  });
  document.getElementById("color").addEventListener("change", function (e) { state.color = e.target.value; recolour(); });
  document.getElementById("lens").addEventListener("change", function (e) { state.lens = e.target.value; recolour(); });
  document.getElementById("wrap").addEventListener("change", function (e) {
    var w = parseInt(e.target.value, 10);
    if (w >= 4) { state.wrap = w; render(); }
  });
  render();
})();
]==]
