// Charts with the vendored Chart.js (assets/vendor/chart.umd.js, see its README.md). The library
// is loaded on the first chart, from our own origin (CSP script-src 'self'), so pages without a
// chart never download it.

import { el } from "./dom.js";

const LIBRARY = "/console/assets/vendor/chart.umd.js";

let library = null; // the promise of window.Chart, once asked for

function loadChart() {
  if (window.Chart) {
    return Promise.resolve(window.Chart);
  }
  library ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = LIBRARY;
    script.addEventListener("load", () => resolve(window.Chart));
    script.addEventListener("error", () => {
      library = null; // let a later chart try again
      reject(new Error("The chart library did not load."));
    });
    document.head.append(script);
  });
  return library;
}

/**
 * A bar chart in `canvas` (inside a sized .chart box); datasets may add a "line" one (a target).
 * The chart is destroyed when `signal` aborts (the view is left).
 */
export async function barChart(canvas, { labels, datasets, yTitle, stacked = false, yMin, yMax, signal }) {
  const Chart = await loadChart();
  const chart = new Chart(canvas, {
    type: "bar",
    data: { labels, datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { stacked },
        y: {
          stacked,
          beginAtZero: yMin === undefined,
          min: yMin,
          max: yMax,
          title: { display: Boolean(yTitle), text: yTitle },
        },
      },
    },
  });
  if (signal?.aborted) {
    chart.destroy(); // drawn again or left while the library loaded
  } else {
    signal?.addEventListener("abort", () => chart.destroy());
  }
  return chart;
}

/** A canvas in a box the CSS sizes (Chart.js fills its container); `label` describes it. */
export function chartBox(label) {
  const canvas = el("canvas", { role: "img", "aria-label": label });
  return { box: el("div", { class: "chart" }, canvas), canvas };
}
