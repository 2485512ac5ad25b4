/* latentlab joint view: draws one view from its embedded JSON; no library, no network.
   Strings from the data are only ever set as textContent (never parsed as HTML).
   Scripted check: open the page with #llv-autotest=a:ROW (or b:ROW) and the view hovers and
   clicks that row, then copies the tooltip and the neighbour list into #ID-autotest. */
window.latentlabJointView = window.latentlabJointView || function (id) {
  "use strict";
  var root = document.getElementById(id);
  if (!root) return;
  var D = JSON.parse(document.getElementById(id + "-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  // Okabe & Ito (2008) palette, as in the static figures; viridis stops for hubness
  var PAL = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];
  var RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  var q = function (sel) { return root.querySelector(sel); };
  var svg = q(".llv-plot"), tip = q(".llv-tip"), info = q(".llv-info"), legend = q(".llv-legend");
  var colorSel = q(".llv-color"), search = q(".llv-search"), count = q(".llv-count"), linesBox = q(".llv-lines");
  var S = D.sets, PAD = 30, W = 1000 - 2 * PAD, total = S[0].rows.length + S[1].rows.length;
  // x and y share one scale (distances stay honest); the box is only as tall as the data
  var ys = S[0].y.concat(S[1].y), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
  var H = Math.max(0.4, y1 - y0) * W, yTop = (y0 + y1) / 2 + H / W / 2;
  svg.setAttribute("viewBox", "0 0 1000 " + Math.round(H + 2 * PAD));
  var R = total > 1500 ? 4.5 : total > 600 ? 6 : 8;
  var maxOcc = Math.max(1, Math.max.apply(null, S[0].occ.concat(S[1].occ)));

  function svgEl(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function htmlEl(tag, text, parent, cls) {
    var e = document.createElement(tag);
    if (text !== null && text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }
  function px(s, i) { return PAD + S[s].x[i] * W; }
  function py(s, i) { return PAD + (yTop - S[s].y[i]) * W; }
  function label(s, i) { return S[s].label ? D.categories[S[s].label[i]] : null; }
  function text(s, i) { return S[s].text ? S[s].text[i] : ""; }
  function ramp(t) {
    var x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1), j = Math.min(RAMP.length - 2, Math.floor(x)), f = x - j;
    var c = RAMP[j].map(function (v, m) { return Math.round(v + f * (RAMP[j + 1][m] - v)); });
    return "rgb(" + c.join(",") + ")";
  }

  // ---- drawing: pair lines, neighbour links, then the points (A and B interleaved so neither hides the other)
  var pairs = svgEl("g", {"class": "llv-pairs"}, svg), pairLines = [];
  if (D.paired) for (var i = 0; i < S[0].rows.length; i++)
    pairLines.push(svgEl("line", {x1: px(0, i), y1: py(0, i), x2: px(1, i), y2: py(1, i)}, pairs));
  var links = svgEl("g", {"class": "llv-links"}, svg), layer = svgEl("g", {}, svg), pts = [[], []];
  for (var j = 0; j < Math.max(S[0].rows.length, S[1].rows.length); j++) {
    for (var s = 0; s < 2; s++) {
      if (j >= S[s].rows.length) continue;
      var e = s === 0 ? svgEl("circle", {cx: px(s, j), cy: py(s, j), r: R}, layer)
                      : svgEl("rect", {x: px(s, j) - R * 0.9, y: py(s, j) - R * 0.9, width: R * 1.8, height: R * 1.8}, layer);
      e.setAttribute("class", "llv-pt");
      e.setAttribute("data-s", s);
      e.setAttribute("data-i", j);
      pts[s][j] = e;
    }
  }

  // ---- colour and legend
  function colour(mode) {
    for (var s = 0; s < 2; s++) for (var i = 0; i < pts[s].length; i++) {
      var c = mode === "label" && S[s].label ? PAL[S[s].label[i] % PAL.length]
            : mode === "hubness" ? ramp(Math.log(1 + S[s].occ[i]) / Math.log(1 + maxOcc)) : PAL[s];
      pts[s][i].setAttribute("fill", c);
    }
    legend.textContent = "";
    var row = function (swatch, words, square) {
      var d = htmlEl("div", null, legend), sw = htmlEl("span", null, d, "llv-sw" + (square ? " sq" : ""));
      sw.style.background = swatch;
      htmlEl("span", words, d);
    };
    if (mode === "label") {
      D.categories.slice(0, 12).forEach(function (c, m) { row(PAL[m % PAL.length], c); });
      if (D.categories.length > 12) htmlEl("div", "… " + (D.categories.length - 12) + " more labels", legend);
      if (D.categories.length > PAL.length) htmlEl("div", "(colours repeat after " + PAL.length + " labels)", legend);
      htmlEl("div", "circles: " + D.names[0] + ", squares: " + D.names[1], legend);
    } else if (mode === "hubness") {
      var d = htmlEl("div", null, legend);
      htmlEl("span", "0", d);
      htmlEl("span", null, d, "llv-ramp").style.background = "linear-gradient(90deg," + [0, .25, .5, .75, 1].map(ramp).join(",") + ")";
      htmlEl("span", String(maxOcc), d);
      htmlEl("div", "N" + D.k + ": times a row is among the " + D.k + " nearest neighbours of the other set's rows (log scale)", legend);
    } else {
      row(PAL[0], D.names[0], false);
      row(PAL[1], D.names[1], true);
    }
  }
  colorSel.addEventListener("change", function () { colour(colorSel.value); });
  colour(D.color);

  // ---- hover: the row's set, number, label and text
  function describe(s, i) {
    var head = D.names[s] + " row " + S[s].rows[i] + (label(s, i) !== null ? " · " + label(s, i) : "");
    var facts = "in " + S[s].occ[i] + " of the " + D.names[1 - s] + " rows' " + D.k + "-NN lists" +
                (S[s].rank ? " · partner's rank " + (S[s].rank[i] + 1) : "");
    return [head, text(s, i), facts];
  }
  function showTip(s, i, ev) {
    var d = describe(s, i);
    tip.textContent = "";
    htmlEl("b", d[0], tip);
    if (d[1]) htmlEl("div", d[1], tip);
    htmlEl("div", d[2], tip);
    var box = root.getBoundingClientRect();
    tip.hidden = false;
    var left = ev.clientX - box.left + 14, width = tip.offsetWidth;
    if (left + width > box.width) left = Math.max(0, ev.clientX - box.left - width - 14);
    tip.style.left = left + "px";
    tip.style.top = (ev.clientY - box.top + 14) + "px";
  }
  svg.addEventListener("mouseover", function (ev) {
    var t = ev.target;
    if (t.hasAttribute && t.hasAttribute("data-s")) showTip(+t.getAttribute("data-s"), +t.getAttribute("data-i"), ev);
  });
  svg.addEventListener("mouseout", function () { tip.hidden = true; });

  // ---- click: the k nearest rows of the other set, linked on the plot
  var marked = [];
  function select(s, i) {
    marked.forEach(function (e) { e.classList.remove("llv-sel", "llv-nb"); });
    links.textContent = "";
    var o = 1 - s, nn = S[s].nn[i];
    pts[s][i].classList.add("llv-sel");
    marked = [pts[s][i]];
    info.textContent = "";
    var d = describe(s, i);
    htmlEl("div", d[0], info, "llv-h");
    if (d[1]) htmlEl("div", d[1], info);
    htmlEl("div", d[2], info);
    htmlEl("div", "Nearest " + D.names[o] + " rows (cosine):", info, "llv-h");
    var list = htmlEl("ol", null, info);
    nn.forEach(function (p, r) {
      pts[o][p].classList.add("llv-nb");
      marked.push(pts[o][p]);
      svgEl("line", {x1: px(s, i), y1: py(s, i), x2: px(o, p), y2: py(o, p)}, links);
      var mark = D.paired && p === i ? " ← true partner" : "";
      htmlEl("li", S[s].sim[i][r].toFixed(3) + " · row " + S[o].rows[p] + (text(o, p) ? " · " + text(o, p) : "") + mark, list);
    });
  }
  svg.addEventListener("click", function (ev) {
    var t = ev.target;
    if (t.hasAttribute && t.hasAttribute("data-s")) select(+t.getAttribute("data-s"), +t.getAttribute("data-i"));
  });
  Array.prototype.forEach.call(root.querySelectorAll("tr[data-pos]"), function (tr) {
    tr.addEventListener("click", function () {
      select(+tr.getAttribute("data-set"), +tr.getAttribute("data-pos"));
      svg.scrollIntoView({block: "nearest"});
    });
  });

  // ---- search: dim the points whose text, label and row number do not match
  function filter() {
    var needle = search.value.trim().toLowerCase(), hits = 0, on = [[], []];
    for (var s = 0; s < 2; s++) for (var i = 0; i < pts[s].length; i++) {
      var ok = !needle || text(s, i).toLowerCase().indexOf(needle) >= 0 || String(S[s].rows[i]) === needle ||
               (label(s, i) !== null && label(s, i).toLowerCase().indexOf(needle) >= 0);
      on[s][i] = ok;
      hits += ok;
      pts[s][i].classList.toggle("llv-off", !ok);
    }
    pairLines.forEach(function (l, i) { l.style.display = on[0][i] || on[1][i] ? "" : "none"; });
    count.textContent = needle ? hits + " of " + total + " points match" : total + " points";
  }
  search.addEventListener("input", filter);
  filter();
  if (linesBox) linesBox.addEventListener("change", function () { pairs.classList.toggle("llv-hide", !linesBox.checked); });

  // ---- scripted check (headless browsers): hover and click one row, report what a user would see
  var m = /llv-autotest=([ab]):(\d+)/.exec(location.hash + "&" + location.search);
  if (m) {
    var out = document.getElementById(id + "-autotest"), s = m[1] === "a" ? 0 : 1, pos = S[s].rows.indexOf(+m[2]);
    if (pos < 0) {
      out.textContent = "autotest: row " + m[2] + " of " + D.names[s] + " is not shown";
    } else {
      var b = pts[s][pos].getBoundingClientRect(), at = {bubbles: true, clientX: b.left + b.width / 2, clientY: b.top + b.height / 2};
      pts[s][pos].dispatchEvent(new MouseEvent("mouseover", at));
      var lines = function (box) { return Array.prototype.map.call(box.querySelectorAll(":scope > b, :scope > div, li"), function (c) { return c.textContent; }).join(" | "); };
      var shown = tip.hidden ? "(no tooltip)" : lines(tip);
      pts[s][pos].dispatchEvent(new MouseEvent("click", at));
      out.textContent = "tooltip: " + shown + "\nclicked: " + lines(info);
    }
    out.hidden = false;
  }
};
