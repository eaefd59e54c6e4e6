// The charts of a flashlog report, from the JSON in #data: a timeline per file (calls per time bucket and name,
// red marks where findings are) and, for the chosen call name and argument, its statistics per file. What was
// drawn is counted in <body data-points data-marks>, and any error is written into #errors, so that a test can
// read both from the DOM.
(function () {
  "use strict";
  var errors = document.getElementById("errors");
  window.addEventListener("error", function (e) { errors.textContent += "error: " + e.message + "\n"; });
  var D = JSON.parse(document.getElementById("data").textContent);
  var COLORS = ["#1f77b4", "#2ca02c", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#aec7e8", "#98df8a"];
  var width = Math.max(480, Math.min(1200, document.body.clientWidth - 20));
  var drawn = { points: 0, marks: 0 };

  function openFinding(id) {
    var el = document.getElementById(id);
    if (!el) return;
    el.open = true;
    el.scrollIntoView({ block: "center" });
  }
  window.addEventListener("hashchange", function () { openFinding(location.hash.slice(1)); });
  document.querySelectorAll("a.place").forEach(function (a) {
    a.addEventListener("click", function () { openFinding(a.getAttribute("href").slice(1)); });
  });

  // Axis numbers: exponents for large and tiny values, so that they fit the axis.
  function short(u, vals) {
    return vals.map(function (v) {
      var a = Math.abs(v);
      return v == null ? "" : a >= 1e5 || (a > 0 && a < 1e-3) ? v.toExponential(1) : String(+v.toPrecision(6));
    });
  }

  function count(data) {
    for (var i = 1; i < data.length; i++)
      for (var j = 0; j < data[i].length; j++) if (data[i][j] != null) drawn.points++;
  }

  function onClick(u, pick) {
    u.over.addEventListener("click", function () {
      var idx = u.cursor.idx;
      if (idx != null) { var id = pick(idx); if (id) openFinding(id); }
    });
  }

  // Timelines.
  var xs = [];
  var b;
  var nb = D.ranks.length ? D.ranks[0].timeline[0].length : 0;
  for (b = 0; b < nb; b++) xs.push((b + 0.5) * D.bucket);
  D.ranks.forEach(function (rank, r) {
    var el = document.getElementById("tl-" + r);
    var series = [{ label: "seconds" }], data = [xs];
    var names = D.names.concat(["other names"]);
    var total = xs.map(function () { return 0; });
    rank.timeline.forEach(function (row, i) {
      if (!row.some(function (v) { return v > 0; })) return;
      row.forEach(function (v, j) { total[j] += v; });
      series.push({ label: names[i], stroke: COLORS[i % COLORS.length], width: 1.5, paths: uPlot.paths.stepped({ align: 0 }), points: { show: false } });
      data.push(row);
    });
    var byBucket = {};
    rank.findings.forEach(function (f) {
      var j = Math.min(nb - 1, Math.floor(f.x / D.bucket));
      (byBucket[j] = byBucket[j] || []).push(f.id);
    });
    // Every bucket with a finding is marked (listed or not); a click opens the nearest listed one.
    var marked = {};
    rank.marked.forEach(function (j) { marked[j] = true; });
    var marks = total.map(function (v, j) { return marked[j] ? Math.max(1, v) : null; });
    series.push({ label: "findings", stroke: "#d62728", fill: "#d62728", paths: function () { return null; }, points: { show: true, size: 10, fill: "#d62728", stroke: "#d62728" } });
    data.push(marks);
    drawn.marks += rank.marked.length;
    count(data);
    var u = new uPlot({ width: width, height: 170, series: series,
      scales: { x: { time: false }, y: { range: function (u, lo, hi) { return [0, Math.max(1, hi) * 1.15]; } } },
      axes: [{ label: "seconds since the first record" }, { label: "calls" }], legend: { live: false } }, data, el);
    onClick(u, function (j) {
      if (!marked[j]) return null;
      if (byBucket[j]) return byBucket[j][0];
      var x = (j + 0.5) * D.bucket, best = null;
      rank.findings.forEach(function (f) { if (!best || Math.abs(f.x - x) < Math.abs(best.x - x)) best = f; });
      return best && best.id;
    });
  });

  // Statistics.
  var pairs = {};
  D.ranks.forEach(function (rank) {
    rank.series.forEach(function (s) { (pairs[s.name] = pairs[s.name] || {})[s.arg] = true; });
  });
  var nameSel = document.getElementById("name"), argSel = document.getElementById("arg");
  Object.keys(pairs).sort().forEach(function (n) { nameSel.add(new Option(n, n)); });
  var first = null;
  D.ranks.forEach(function (rank) {
    rank.findings.forEach(function (f) {
      if (f.kind === "nonfinite" && (!first || f.x < first.x)) first = f;
    });
  });
  function fillArgs() {
    argSel.innerHTML = "";
    Object.keys(pairs[nameSel.value] || {}).sort().forEach(function (a) { argSel.add(new Option(a, a)); });
  }
  var plots = [];
  function drawStats() {
    plots.forEach(function (p) { p.destroy(); });
    plots = [];
    var box = document.getElementById("stats");
    box.innerHTML = "";
    var shown = 0, total = 0;
    D.ranks.forEach(function (rank, r) {
      var s = rank.series.filter(function (s) { return s.name === nameSel.value && s.arg === argSel.value; })[0];
      if (!s) return;
      shown += s.x.length; total += s.total;
      var h = document.createElement("h3");
      h.textContent = rank.label + ": " + s.name + " " + s.arg + " (" + s.x.length + " of " + s.total + " calls and replays drawn)";
      box.appendChild(h);
      var div = document.createElement("div");
      div.className = "chart";
      box.appendChild(div);
      var nz = function (v) { return v > 0 ? v : null; };
      var nan = s.nan.map(nz), inf = s.inf.map(nz);
      nan.concat(inf).forEach(function (v) { if (v != null) drawn.marks++; });
      var mark = function (label, color) {
        return { label: label, scale: "count", stroke: color, paths: function () { return null; }, points: { show: true, size: 9, fill: color, stroke: color } };
      };
      var data = [s.x, s.min, s.max, s.mean, nan, inf];
      count(data);
      var u = new uPlot({ width: width, height: 220, cursor: { sync: { key: "stats" } }, scales: { x: { time: false }, count: { range: function (u, lo, hi) { return [0, Math.max(1, hi) * 1.1]; } } },
        series: [{ label: "seconds" },
          { label: "min", stroke: "#1f77b4", width: 1.2 }, { label: "max", stroke: "#2ca02c", width: 1.2 }, { label: "mean", stroke: "#7f7f7f", width: 1.2, dash: [4, 3] },
          mark("NaN count", "#d62728"), mark("Inf count", "#ff7f0e")],
        axes: [{ label: "seconds since the first record" }, { label: "value", values: short }, { side: 1, scale: "count", label: "NaN/Inf count", grid: { show: false } }] }, data, div);
      plots.push(u);
      var mine = rank.findings.filter(function (f) { return f.name === s.name && f.arg === s.arg; });
      onClick(u, function (j) {
        var best = null;
        mine.forEach(function (f) { if (!best || Math.abs(f.x - s.x[j]) < Math.abs(best.x - s.x[j])) best = f; });
        return (s.nan[j] > 0 || s.inf[j] > 0) && best ? best.id : null;
      });
    });
    document.getElementById("shown").textContent = shown + " of " + total + " points drawn";
    document.body.dataset.points = drawn.points;
    document.body.dataset.marks = drawn.marks;
  }
  nameSel.addEventListener("change", function () { fillArgs(); drawStats(); });
  argSel.addEventListener("change", drawStats);
  if (first && pairs[first.name]) { nameSel.value = first.name; }
  fillArgs();
  if (first && pairs[first.name] && pairs[first.name][first.arg]) argSel.value = first.arg;
  drawStats();
  document.body.dataset.rendered = "1";
})();
