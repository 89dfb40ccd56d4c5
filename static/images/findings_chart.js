// The base image page's chart: open findings by severity per day, from the
// <script type="application/json" id="findings-history"> block (CSP: no inline script).
(function () {
  const COLORS = {
    critical: "#7f1d1d",
    high: "#dc2626",
    medium: "#f97316",
    low: "#eab308",
    unknown: "#9ca3af",
  };

  function draw() {
    const source = document.getElementById("findings-history");
    const canvas = document.getElementById("findings-chart");
    if (!source || !canvas || typeof window.Chart === "undefined") return;
    const data = JSON.parse(source.textContent);
    const datasets = Object.keys(COLORS)
      .filter((severity) => (data.series[severity] || []).some((n) => n > 0))
      .map((severity, index) => ({
        // The legend in the page's language: data-label-<severity> on the canvas.
        label: canvas.dataset["label" + severity.charAt(0).toUpperCase() + severity.slice(1)] || severity,
        data: data.series[severity],
        borderColor: COLORS[severity],
        backgroundColor: COLORS[severity] + "55",
        // Stacked bands: the first fills to the axis, each next one to the band below it.
        fill: index === 0 ? "origin" : "-1",
        pointRadius: 0,
        tension: 0.2,
      }));
    const chart = new window.Chart(canvas, {
      type: "line",
      data: { labels: data.labels, datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxTicksLimit: 10 } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
    canvas.dataset.rendered = String(chart.data.datasets.length);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
