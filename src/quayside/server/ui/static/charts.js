/* Quayside line charts: inline SVG drawn from data embedded in the page or fetched from the REST API.
   No dependencies; the markup is built as text (every label escaped) so the HTML parser gives it the SVG
   namespace. Written for the Quayside web UI; Apache-2.0 like the rest of the package. */
(function () {
  "use strict";

  var COLOURS = ["#1864ab", "#c92a2a", "#2b8a3e", "#e67700", "#862e9c", "#0b7285", "#5c940d", "#d6336c", "#495057", "#364fc7"];
  var WIDTH = 640, HEIGHT = 260, LEFT = 60, RIGHT = 16, TOP = 12, BOTTOM = 40;
  var MAX_POINTS = 2000; // more than the plot has pixels for; longer series are thinned evenly
  var MARKER_LIMIT = 40;

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function finite(v) { return typeof v === "number" && isFinite(v); }

  function ticks(min, max, count) {
    if (min === max) { return [min]; }
    var span = max - min, step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = (count * step) / span;
    if (err <= 0.15) { step *= 10; } else if (err <= 0.35) { step *= 5; } else if (err <= 0.75) { step *= 2; }
    var out = [], first = Math.ceil(min / step) * step;
    for (var v = first; v <= max + step * 1e-9; v += step) { out.push(Math.abs(v) < step * 1e-9 ? 0 : v); }
    return out;
  }

  function formatNumber(v) {
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) { return v.toExponential(2); }
    return String(Math.round(v * 1e6) / 1e6);
  }

  function formatTime(ms, span) {
    var d = new Date(ms), iso = d.toISOString();
    return span > 86400000 ? iso.slice(5, 10) + " " + iso.slice(11, 16) : iso.slice(11, 19);
  }

  function thin(points) {
    if (points.length <= MAX_POINTS) { return points; }
    var stride = points.length / MAX_POINTS, out = [];
    for (var i = 0; i < MAX_POINTS; i++) { out.push(points[Math.floor(i * stride)]); }
    out.push(points[points.length - 1]);
    return out;
  }

  /* series: [{label, points: [[x, y], ...]}]; options: {xLabel, time (x is ms since the epoch)}. */
  function draw(plot, series, options) {
    options = options || {};
    var xs = [], ys = [];
    series = series.map(function (s) {
      var pts = thin(s.points.filter(function (p) { return finite(p[0]); }));
      pts.forEach(function (p) { xs.push(p[0]); if (finite(p[1])) { ys.push(p[1]); } });
      return { label: s.label, points: pts };
    });
    if (!ys.length) {
      plot.innerHTML = '<p class="note">No finite values to draw.</p>';
      plot.dataset.drawn = "empty";
      return;
    }
    var xMin = Math.min.apply(null, xs), xMax = Math.max.apply(null, xs);
    var yMin = Math.min.apply(null, ys), yMax = Math.max.apply(null, ys);
    if (xMin === xMax) { xMin -= 1; xMax += 1; }
    if (yMin === yMax) { var pad = Math.abs(yMin) * 0.1 || 1; yMin -= pad; yMax += pad; }
    var innerW = WIDTH - LEFT - RIGHT, innerH = HEIGHT - TOP - BOTTOM;
    function sx(x) { return LEFT + ((x - xMin) / (xMax - xMin)) * innerW; }
    function sy(y) { return TOP + innerH - ((y - yMin) / (yMax - yMin)) * innerH; }

    var parts = ['<svg viewBox="0 0 ' + WIDTH + " " + HEIGHT + '" width="100%" focusable="false" aria-hidden="true">'];
    ticks(yMin, yMax, 5).forEach(function (t) {
      var y = sy(t).toFixed(1);
      parts.push('<line class="grid" x1="' + LEFT + '" x2="' + (WIDTH - RIGHT) + '" y1="' + y + '" y2="' + y + '"/>');
      parts.push('<text class="tick" x="' + (LEFT - 6) + '" y="' + y + '" text-anchor="end" dominant-baseline="middle">' + esc(formatNumber(t)) + "</text>");
    });
    var xTicks = options.time ? ticks(xMin, xMax, 4) : ticks(xMin, xMax, 6);
    xTicks.forEach(function (t) {
      var x = sx(t).toFixed(1), label = options.time ? formatTime(t, xMax - xMin) : formatNumber(t);
      parts.push('<line class="grid" x1="' + x + '" x2="' + x + '" y1="' + TOP + '" y2="' + (TOP + innerH) + '"/>');
      parts.push('<text class="tick" x="' + x + '" y="' + (TOP + innerH + 16) + '" text-anchor="middle">' + esc(label) + "</text>");
    });
    parts.push('<rect class="frame" x="' + LEFT + '" y="' + TOP + '" width="' + innerW + '" height="' + innerH + '"/>');
    if (options.xLabel) {
      parts.push('<text class="axis-label" x="' + (LEFT + innerW / 2) + '" y="' + (HEIGHT - 4) + '" text-anchor="middle">' + esc(options.xLabel) + "</text>");
    }
    series.forEach(function (s, i) {
      var colour = COLOURS[i % COLOURS.length], d = "", pen = "M";
      s.points.forEach(function (p) {
        if (!finite(p[1])) { pen = "M"; return; }
        d += pen + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1) + " ";
        pen = "L";
      });
      parts.push('<path class="series" data-series="' + esc(s.label) + '" data-points="' + s.points.length + '" stroke="' + colour + '" d="' + d.trim() + '"/>');
      if (s.points.length <= MARKER_LIMIT) {
        s.points.forEach(function (p) {
          if (finite(p[1])) {
            parts.push('<circle class="marker" fill="' + colour + '" r="2.5" cx="' + sx(p[0]).toFixed(1) + '" cy="' + sy(p[1]).toFixed(1) + '"><title>' + esc(s.label + ": " + formatNumber(p[1])) + "</title></circle>");
          }
        });
      }
    });
    parts.push("</svg>");
    if (series.length > 1 || options.legend) {
      parts.push('<ul class="legend">');
      series.forEach(function (s, i) {
        parts.push('<li><span class="swatch" style="background:' + COLOURS[i % COLOURS.length] + '"></span>' + esc(s.label) + "</li>");
      });
      parts.push("</ul>");
    }
    plot.innerHTML = parts.join("");
    plot.dataset.drawn = "true";
  }

  /* The metric charts of a run page or a comparison: one chart per metric, one line per run. */
  function drawMetricCharts(group) {
    var data = JSON.parse(document.getElementById(group.dataset.charts).textContent);
    var checked = group.querySelector('input[type="radio"]:checked');
    var axis = checked ? checked.value : "step";
    var runIds = Object.keys(data.runs);
    group.querySelectorAll("figure.chart[data-metric]").forEach(function (figure) {
      var key = figure.dataset.metric;
      var series = runIds.filter(function (id) { return data.runs[id][key]; }).map(function (id) {
        return {
          label: data.names[id] || id,
          points: data.runs[id][key].map(function (p) { return [axis === "time" ? p[1] : p[0], p[2]]; })
        };
      });
      draw(figure.querySelector(".plot"), series, { xLabel: axis === "time" ? "time (UTC)" : "step", time: axis === "time", legend: runIds.length > 1 });
    });
  }

  function init() {
    document.querySelectorAll("[data-charts]").forEach(function (group) {
      drawMetricCharts(group);
      group.querySelectorAll('input[type="radio"]').forEach(function (radio) {
        radio.addEventListener("change", function () { drawMetricCharts(group); });
      });
    });
  }

  window.QuaysideCharts = { draw: draw };
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
