// fdsoak: draws the report's zoomable charts with uPlot from the JSON block
// #fdsoak-data, and hides the static SVG chart each one replaces. Drag to
// zoom into a span, double-click to zoom out, hover for values. Fetches nothing.
(function () {
  "use strict";
  var block = document.getElementById("fdsoak-data");
  if (!block || typeof uPlot === "undefined") return;
  var page = JSON.parse(block.textContent);
  var charts = [];
  window.fdsoakCharts = charts;

  function undelta(a, scale) {
    var out = new Array(a.length), sum = 0;
    for (var i = 0; i < a.length; i++) {
      if (a[i] === null) { out[i] = null; } else { sum += a[i]; out[i] = sum / scale; }
    }
    return out;
  }

  function human(s) {
    if (s == null || !isFinite(s)) return "";
    var neg = s < 0 ? "-" : "";
    s = Math.abs(s);
    if (s < 60) return neg + (Math.round(s * 10) / 10) + "s";
    var m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d > 0) return neg + d + "d" + (h % 24) + "h";
    if (h > 0) return neg + h + "h" + pad(m % 60) + "m";
    return neg + m + "m" + pad(Math.floor(s % 60)) + "s";
  }

  function decodeEvents(byKind) {
    var out = [];
    Object.keys(byKind).forEach(function (kind) {
      var t = 0;
      byKind[kind].forEach(function (d) { t += d; out.push([t / 1000, kind]); });
    });
    return out;
  }
  var pageEvents = decodeEvents(page.events);

  // Phases under the series: alternating shades, idle ones grey, names along the top.
  function shade(u) {
    var ctx = u.ctx, b = u.bbox, px = devicePixelRatio || 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(b.left, b.top, b.width, b.height);
    ctx.clip();
    page.phases.forEach(function (p, i) {
      var x0 = u.valToPos(p.start, "x", true), x1 = u.valToPos(p.end, "x", true);
      var a = i % 2 === 0 ? 0.07 : 0.13;
      ctx.fillStyle = p.idle ? "rgba(120,120,120," + a + ")" : "rgba(70,130,180," + a + ")";
      ctx.fillRect(x0, b.top, x1 - x0, b.height);
      ctx.fillStyle = "#5a5a5a";
      ctx.font = 12 * px + "px sans-serif";
      ctx.fillText(p.name, Math.max(x0, b.left) + 4 * px, b.top + 14 * px);
    });
    ctx.restore();
  }

  // Over the series: fault events (labelled while few are in view), limits and projections.
  function marks(u, c) {
    var ctx = u.ctx, b = u.bbox, px = devicePixelRatio || 1;
    var lo = u.scales.x.min, hi = u.scales.x.max;
    ctx.save();
    ctx.beginPath();
    ctx.rect(b.left, b.top, b.width, b.height);
    ctx.clip();
    var seen = c.ev.filter(function (e) { return e[0] >= lo && e[0] <= hi; });
    ctx.strokeStyle = "rgba(200,30,30,0.5)";
    ctx.fillStyle = "rgb(200,30,30)";
    ctx.font = 11 * px + "px sans-serif";
    ctx.lineWidth = px;
    seen.forEach(function (e, i) {
      var x = Math.round(u.valToPos(e[0], "x", true)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, b.top);
      ctx.lineTo(x, b.top + b.height);
      ctx.stroke();
      if (seen.length <= 40) ctx.fillText(e[1], x + 2 * px, b.top + (28 + 12 * (i % 3)) * px);
    });
    ctx.lineWidth = 2 * px;
    ctx.setLineDash([8 * px, 5 * px]);
    c.levels.forEach(function (l) {
      var y = u.valToPos(l.y, "y", true);
      ctx.strokeStyle = l.color;
      ctx.beginPath();
      ctx.moveTo(b.left, y);
      ctx.lineTo(b.left + b.width, y);
      ctx.stroke();
      ctx.fillStyle = l.color;
      ctx.fillText(l.label, b.left + 4 * px, y - 4 * px);
    });
    c.lines.forEach(function (l) {
      ctx.strokeStyle = l.color;
      ctx.beginPath();
      ctx.moveTo(u.valToPos(l.from[0], "x", true), u.valToPos(l.from[1], "y", true));
      ctx.lineTo(u.valToPos(l.to[0], "x", true), u.valToPos(l.to[1], "y", true));
      ctx.stroke();
      ctx.fillStyle = l.color;
      ctx.fillText(l.label, u.valToPos(l.from[0], "x", true) + 4 * px, u.valToPos(l.from[1], "y", true) - 6 * px);
    });
    ctx.restore();
  }

  page.charts.forEach(function (c) {
    var fig = document.getElementById(c.id);
    if (!fig) return;
    c.ev = c.events ? decodeEvents(c.events) : pageEvents;
    var x = undelta(c.x, 1).map(function (v) { return v * c.x_scale; });
    // Two empty ends, so the unzoomed range (and a double-click back to it) covers the whole run.
    x.unshift(Math.min(0, x.length ? x[0] : 0));
    x.push(Math.max(c.x_max, x.length ? x[x.length - 1] : 0));
    var data = [x];
    var yTop = 0;
    var series = [{
      label: c.x_labels ? "build" : "time",
      value: function (u, v) {
        if (v == null) return "—";
        return c.x_labels ? (c.x_labels[Math.round(v)] || "") : human(v);
      }
    }];
    c.series.forEach(function (s) {
      var v = undelta(s.v, c.v_scale);
      v.unshift(null);
      v.push(null);
      v.forEach(function (n) { if (n !== null && n > yTop) yTop = n; });
      data.push(v);
      series.push({
        label: s.label,
        stroke: s.color,
        width: 1.5,
        dash: s.dash ? [6, 4] : undefined,
        fill: c.stacked ? s.color + "8c" : undefined,
        spanGaps: true,
        points: { show: c.x_labels ? true : false }
      });
    });
    c.levels.forEach(function (l) { if (l.y > yTop) yTop = l.y; });
    c.lines.forEach(function (l) { if (l.to[1] > yTop) yTop = l.to[1]; });
    var box = document.createElement("div");
    fig.insertBefore(box, fig.firstChild);
    var opts = {
      title: c.title,
      width: Math.max(320, fig.clientWidth || 960),
      height: 300,
      scales: {
        x: { time: false },
        y: { range: function () { return [0, yTop > 0 ? yTop * 1.1 : 1]; } }
      },
      axes: [
        {
          values: function (u, vals) {
            return vals.map(function (v) { return c.x_labels ? (c.x_labels[v] !== undefined && v === Math.round(v) ? c.x_labels[v] : "") : human(v); });
          }
        },
        { label: c.y, size: 60 }
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      hooks: {
        drawClear: [shade],
        draw: [function (u) { marks(u, c); }]
      },
      series: series
    };
    charts.push(new uPlot(opts, data, box));
    fig.classList.add("live");
  });
})();
