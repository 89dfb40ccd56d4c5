// The home page's chart: deployments per base image per day, from the
// <script type="application/json" id="deployments-by-base"> block (CSP: no inline script),
// which arrives as an htmx fragment after the page (drawn on htmx:load).
//
// Apache ECharts (npm `echarts`, served by Django) draws it: a stacked area over many series
// with a legend that toggles them, a time range slider and ECharts' `aria` option, which
// writes a text description of the chart for screen readers. The base image page's findings
// chart stays on Chart.js: it is a small line chart that works, is tested, and loads 200 kB
// instead of 1.1 MB; each page loads only the library it draws with.
(function () {
  function draw() {
    const source = document.getElementById("deployments-by-base");
    const box = document.getElementById("deployments-chart");
    if (!source || !box || box.dataset.rendered || typeof window.echarts === "undefined") return;
    const data = JSON.parse(source.textContent);
    const chart = window.echarts.init(box);
    chart.setOption({
      animation: false,
      aria: { enabled: true, label: { description: box.getAttribute("aria-label") } },
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", bottom: 0 },
      grid: { left: 40, right: 16, top: 16, bottom: 72, containLabel: true },
      xAxis: { type: "category", boundaryGap: false, data: data.labels },
      yAxis: { type: "value", minInterval: 1 },
      dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 28 }],
      series: data.series.map((s) => ({
        name: s.name,
        type: "line",
        stack: "deployments",
        areaStyle: {},
        showSymbol: false,
        data: s.data,
      })),
    });
    box.dataset.rendered = String(data.series.length);
    window.addEventListener("resize", () => chart.resize());
  }

  document.addEventListener("htmx:load", draw);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
