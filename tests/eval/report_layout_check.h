// A script the report tests append to a copy of report.html before headless
// Chromium loads it: for every chart SVG it measures legend entries, series
// (polylines and dots), text labels and the chart itself, and writes what
// overlaps into <pre id="overlaps"> (one line each, naming the chart and the
// elements) and what it measured into <pre id="checked">, and posts both to
// the parent window when loaded in an iframe.
#pragma once

#include <string>

namespace catlip::test {

inline const char* kReportLayoutCheckJs = R"JS(
(function () {
  const found = [], vw = document.documentElement.clientWidth;
  const R = (e) => e.getBoundingClientRect();
  const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const inside = (p, r) => p.x > r.left + 0.5 && p.x < r.right - 0.5 && p.y > r.top + 0.5 && p.y < r.bottom - 0.5;
  const label = (e) => {
    const t = (e.textContent || '').trim().replace(/\s+/g, ' ');
    return '"' + (t.length > 40 ? t.slice(0, 40) + '...' : t) + '"';
  };
  let charts = 0, series = 0, legends = 0, texts = 0;
  document.querySelectorAll('svg.chart').forEach((svg, i) => {
    ++charts;
    const first = svg.querySelector('text');
    const name = 'chart ' + i + ' ' + (svg.getAttribute('data-title') ? '"' + svg.getAttribute('data-title') + '"' : first ? label(first) : '');
    const sr = R(svg);
    if (sr.right > vw + 0.5 || sr.left < -0.5)
      found.push(name + ': ' + Math.round(sr.width) + ' px wide at x=' + Math.round(sr.left) + ', past the ' + vw + ' px viewport');
    // Each series as points along its drawn path (1 px apart) or as the boxes of its dots.
    const drawn = [];
    svg.querySelectorAll('.series').forEach((s) => {
      ++series;
      const sname = 'series "' + (s.getAttribute('data-series') || s.getAttribute('stroke') || s.getAttribute('fill')) + '"';
      if (s.tagName === 'polyline' || s.tagName === 'line') {
        const m = s.getScreenCTM();
        const pts = s.tagName === 'line'
          ? [new DOMPoint(s.x1.baseVal.value, s.y1.baseVal.value), new DOMPoint(s.x2.baseVal.value, s.y2.baseVal.value)]
          : Array.from(s.points, (p) => new DOMPoint(p.x, p.y));
        const c = pts.map((p) => p.matrixTransform(m));
        const samples = [];
        for (let k = 0; k < c.length; ++k) {
          if (k === 0) { samples.push(c[0]); continue; }
          const a = c[k - 1], b = c[k], n = Math.ceil(Math.hypot(b.x - a.x, b.y - a.y));
          for (let j = 1; j <= n; ++j) samples.push({x: a.x + (b.x - a.x) * j / n, y: a.y + (b.y - a.y) * j / n});
        }
        drawn.push({name: sname, over: (r) => samples.some((p) => inside(p, r))});
      } else {
        const b = R(s);
        drawn.push({name: sname, over: (r) => hit(b, r)});
      }
    });
    const legend = [...svg.querySelectorAll('.legend')];
    legends += legend.length;
    const labels = [...svg.querySelectorAll('text')].filter((t) => !t.closest('.legend'));
    texts += labels.length;
    const boxes = legend.map((e) => ({what: 'legend ' + label(e), r: R(e)}))
      .concat(labels.map((e) => ({what: 'text ' + label(e), r: R(e)})));
    boxes.forEach((b, k) => {
      if (b.r.left < sr.left - 0.5 || b.r.right > sr.right + 0.5 || b.r.top < sr.top - 0.5 || b.r.bottom > sr.bottom + 0.5)
        found.push(name + ': ' + b.what + ' is cut off at the chart edge');
      for (const d of drawn)
        if (d.over(b.r)) found.push(name + ': ' + b.what + ' is drawn over ' + d.name);
      for (let j = 0; j < k; ++j)
        if (hit(b.r, boxes[j].r)) found.push(name + ': ' + b.what + ' overlaps ' + boxes[j].what);
    });
  });
  if (document.documentElement.scrollWidth > vw + 1)
    found.push('page: ' + document.documentElement.scrollWidth + ' px wide, wider than the ' + vw + ' px viewport');
  const pre = (id, text) => {
    const e = document.createElement('pre');
    e.id = id;
    e.textContent = text;
    document.body.appendChild(e);
  };
  const checked = 'viewport=' + vw + ' charts=' + charts + ' series=' + series + ' legends=' + legends + ' texts=' + texts;
  pre('checked', checked);
  pre('overlaps', found.join('\n'));
  if (window.parent !== window) window.parent.postMessage({checked: checked, overlaps: found.join('\n')}, '*');
})();
)JS";

// The page the tests load in Chromium: the report in an iframe WIDTH px wide
// (a headless window is never narrower than 500 px, an iframe can be), and
// the layout check's findings copied into this page's DOM for --dump-dom.
inline std::string report_frame_html(const std::string& report_file, int width) {
  return "<!DOCTYPE html><html><body style=\"margin:0\"><iframe src=\"" + report_file + "\" style=\"border:0;display:block;width:" +
         std::to_string(width) + "px;height:2000px\"></iframe><script>window.addEventListener('message', (e) => {"
         "for (const k of ['checked', 'overlaps']) { const p = document.createElement('pre'); p.id = k;"
         " p.textContent = e.data[k]; document.body.appendChild(p); } });</script></body></html>";
}

}  // namespace catlip::test
