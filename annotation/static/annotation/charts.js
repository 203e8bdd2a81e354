/* Charts for the manager's pages, drawn by Chart.js 4 (vendor/, MIT), with its annotation plugin
   for reference lines and the error-bars plugin for intervals.

   Why Chart.js: it works offline from three static files (~250 kB, no CDN), draws on a canvas
   without eval or inline styles (our Content-Security-Policy allows neither), and has titles,
   axis titles, tooltips, reference lines and error bars as maintained features rather than
   hand-drawn SVG.

   A chart is declared in the page, never scripted inline:

     <canvas data-chart="agreement-spec" role="img" aria-label="…"></canvas>
     {{ spec|json_script:"agreement-spec" }}

   spec = {
     type: "line" | "bar" | "points",
     title: "Cohen's kappa per rater pair",          // required: every chart says what it is
     x: {label: "day", unit: "", kind: "category" | "linear"},
     y: {label: "kappa", unit: "", min: -1, max: 1},  // label required; min/max optional
     series: [{label: "overall", points: [{x: "2026-12-01", y: 0.4, lo: 0.3, hi: 0.5}]}],
     refs: [{value: 0, label: "chance", axis: "y"}]   // optional reference lines
   }
   Points with lo/hi are drawn with error bars. A series of one point is drawn as a point, not
   as a line or a bar that fills the plot (a "bar" chart whose series all have one point too).
   y.integer / x.integer: true puts ticks on whole numbers only (counts, steps; one point on an
   integer x axis gets a step of room each side). Reference lines are always inside the y range
   (it is widened to include them). A title longer than the canvas is wide wraps
   onto more lines. Pages that update live call PrefloopCharts.render(canvas, spec) once and
   PrefloopCharts.update(chart, spec) after.
*/
(function () {
  "use strict";
  var E = window.ChartErrorBars;
  window.Chart.register(
    E.LineWithErrorBarsController, E.BarWithErrorBarsController, E.ScatterWithErrorBarsController,
    E.PointWithErrorBar, E.BarWithErrorBar
  );
  var COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d"];

  function axisTitle(axis) {
    if (!axis || !axis.label) throw new Error("a chart axis needs a label");
    return axis.unit ? axis.label + " (" + axis.unit + ")" : axis.label;
  }

  function hasIntervals(spec) {
    return spec.series.some(function (s) {
      return s.points.some(function (p) { return p.lo != null && p.hi != null; });
    });
  }

  function chartType(spec) {
    var intervals = hasIntervals(spec);
    var single = spec.series.every(function (s) { return s.points.length <= 1; });
    if (spec.type === "bar" && !single) return intervals ? "barWithErrorBars" : "bar";
    if (spec.type === "points" || single) return intervals ? "scatterWithErrorBars" : "scatter";
    return intervals ? "lineWithErrorBars" : "line";
  }

  function categories(spec) {
    var seen = [];
    spec.series.forEach(function (s) {
      s.points.forEach(function (p) { if (seen.indexOf(p.x) < 0) seen.push(p.x); });
    });
    return seen;
  }

  function datasets(spec, type) {
    var byCategory = spec.x.kind !== "linear";
    var labels = byCategory ? categories(spec) : null;
    return spec.series.map(function (s, i) {
      var color = s.color || COLORS[i % COLORS.length];
      var data = s.points.map(function (p) {
        var x = byCategory ? labels.indexOf(p.x) : p.x;
        var point = type.indexOf("bar") === 0 ? { y: p.y } : { x: x, y: p.y };
        if (p.lo != null && p.hi != null) { point.yMin = p.lo; point.yMax = p.hi; }
        return type.indexOf("bar") === 0 && point.yMin == null ? p.y : point;
      });
      return {
        label: s.label,
        data: data,
        borderColor: color,
        backgroundColor: type.indexOf("bar") === 0 ? color + "cc" : color,
        pointRadius: s.points.length <= 1 ? 5 : 3,
        borderWidth: 2,
        maxBarThickness: 48,
        errorBarColor: "#374151",
        errorBarWhiskerColor: "#374151",
        tension: 0,
      };
    });
  }

  function references(spec) {
    var out = {};
    (spec.refs || []).forEach(function (ref, i) {
      var vertical = ref.axis === "x";
      out["ref" + i] = {
        type: "line",
        scaleID: vertical ? "x" : "y",
        value: ref.value,
        borderColor: "#6b7280",
        borderDash: [6, 4],
        borderWidth: 1.5,
        drawTime: "beforeDatasetsDraw",  // the data stays on top of the line and its label
        label: {
          display: Boolean(ref.label),
          content: ref.label || "",
          position: "end",
          yAdjust: vertical ? 0 : -11,  // above the line, not across it
          padding: 2,
          backgroundColor: "rgba(255,255,255,0.8)",
          color: "#374151",
          font: { size: 11 },
        },
      };
    });
    return out;
  }

  // Chart.js does not wrap titles: split at spaces so that each line fits ~7 px per character.
  function wrapTitle(text, width) {
    var room = Math.max(20, Math.floor((width || 600) / 8));
    if (text.length <= room) return text;
    var lines = [""];
    text.split(" ").forEach(function (word) {
      var last = lines[lines.length - 1];
      if (last && (last + " " + word).length > room) lines.push(word);
      else lines[lines.length - 1] = last ? last + " " + word : word;
    });
    return lines;
  }

  function config(spec, width) {
    if (!spec.title) throw new Error("a chart needs a title");
    var type = chartType(spec);
    var byCategory = spec.x.kind !== "linear";
    var labels = byCategory ? categories(spec) : undefined;
    var xScale = {
      title: { display: true, text: axisTitle(spec.x), font: { size: 13 } },
      ticks: { font: { size: 12 } },
    };
    if (type.indexOf("bar") !== 0) {
      xScale.type = "linear";
      if (byCategory) {
        // Categories on a linear axis so points and lines share one code path; ticks show names.
        xScale.min = -0.5;
        xScale.max = labels.length - 0.5;
        // One tick per category, at its index (the axis runs from -0.5, so stepSize alone would
        // put ticks between categories); autoSkip thins them when they do not fit.
        xScale.afterBuildTicks = function (scale) {
          scale.ticks = labels.map(function (_, i) { return { value: i }; });
        };
        xScale.ticks.callback = function (v) { return Number.isInteger(v) ? labels[v] : ""; };
      } else if (spec.x.integer) {
        // Steps, epochs: whole-number ticks, and one point gets a step of room on each side
        // instead of an axis of fractions around it.
        xScale.ticks.precision = 0;
        var xs = [];
        spec.series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p.x); }); });
        if (xs.length && Math.min.apply(null, xs) === Math.max.apply(null, xs)) {
          xScale.min = xs[0] - 1;
          xScale.max = xs[0] + 1;
        }
      }
    }
    var yScale = {
      title: { display: true, text: axisTitle(spec.y), font: { size: 13 } },
      ticks: { font: { size: 12 } },
    };
    if (spec.y.min != null) yScale.min = spec.y.min;
    if (spec.y.max != null) yScale.max = spec.y.max;
    if (spec.y.integer) yScale.ticks.precision = 0;
    var refValues = (spec.refs || []).filter(function (r) { return r.axis !== "x"; })
      .map(function (r) { return r.value; });
    if (refValues.length) {
      yScale.suggestedMin = Math.min.apply(null, refValues);
      yScale.suggestedMax = Math.max.apply(null, refValues);
    }
    return {
      type: type,
      data: { labels: type.indexOf("bar") === 0 ? labels : undefined, datasets: datasets(spec, type) },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        onResize: function (chart, size) {
          chart.options.plugins.title.text = wrapTitle(spec.title, size.width);
        },
        showLine: type === "line" || type === "lineWithErrorBars",
        scales: { x: xScale, y: yScale },
        plugins: {
          title: { display: true, text: wrapTitle(spec.title, width), font: { size: 15, weight: "600" } },
          legend: { display: spec.series.length > 1 },
          annotation: { annotations: references(spec) },
          tooltip: {
            callbacks: {
              title: function (items) {
                if (!items.length || !byCategory) return items.length ? String(items[0].parsed.x) : "";
                return labels[Math.round(items[0].parsed.x)] || items[0].label;
              },
            },
          },
        },
      },
    };
  }

  function render(canvas, spec) {
    canvas.setAttribute("data-chart-title", spec.title);
    canvas.setAttribute("data-chart-x", axisTitle(spec.x));
    canvas.setAttribute("data-chart-y", axisTitle(spec.y));
    if (!canvas.getAttribute("aria-label")) canvas.setAttribute("aria-label", spec.title);
    return new window.Chart(canvas, config(spec, canvas.parentNode && canvas.parentNode.clientWidth));
  }

  function update(chart, spec) {
    var next = config(spec, chart.width);
    chart.config.type = next.type;
    chart.data = next.data;
    chart.options = next.options;
    chart.update("none");
    return chart;
  }

  function renderDeclared(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.chartDrawn) return;
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      render(canvas, JSON.parse(source.textContent));
      canvas.dataset.chartDrawn = "1";
    });
  }

  window.PrefloopCharts = { render: render, update: update, renderDeclared: renderDeclared };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { renderDeclared(); });
  } else {
    renderDeclared();
  }
})();
