// The three capacity charts, drawn by Chart.js from the series endpoints. Values come as the
// API sends them: sizes in MiB are shown in GiB, percentages as they are, and a period
// without a value stays a gap (no carried-forward values).

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';

import { formatNumber, formatPercent, toGib } from './format.js';

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip);

const PALETTE = [
  '#1f6fd1', '#d1491f', '#2e9e44', '#8e44ad', '#c0392b', '#16a085', '#d68910', '#2c3e50', '#e84393', '#7f8c8d',
  '#0b5394', '#a04000', '#1e8449', '#6c3483', '#922b21', '#117864', '#9a7d0a', '#34495e', '#b03a2e', '#5d6d7e',
];

// Axis steps such as 0.1 + 0.2 would otherwise show their floating-point noise.
const tick = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });

/** How a series' unit is shown: the plotted value from the API's, and its text. */
function unitOf(unit) {
  if (unit === 'MB') {
    return { axis: 'GiB', plot: toGib, text: (value) => `${formatNumber(value)} GiB` };
  }
  if (unit === '%') {
    return { axis: '%', plot: (value) => (value === null ? null : Number(value)), text: (value) => formatPercent(value) };
  }
  return { axis: unit, plot: (value) => (value === null ? null : Number(value)), text: (value) => formatNumber(value) };
}

/**
 * A line's colour, from what it shows rather than its rank, so that an instance (or
 * database) keeps its colour in all three charts, whose rankings differ.
 */
function colourOf(line) {
  let hash = line.instance_id;
  for (const character of line.database_name ?? '') hash = (hash * 31 + character.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

/** The datasets Chart.js draws from a series response. */
function chartData(series, level) {
  const unit = unitOf(series.unit);
  return {
    labels: series.labels,
    datasets: series.series.map((line) => ({
      label: level === 'database' ? `${line.instance_name} / ${line.database_name}` : line.instance_name,
      data: line.values.map((value) => unit.plot(value)),
      borderColor: colourOf(line),
      backgroundColor: `${colourOf(line)}cc`,
    })),
  };
}

/** Draws (or redraws) a chart of `kind` ('line' or 'bar') on `canvas`. */
export function drawChart(canvas, kind, series, level) {
  Chart.getChart(canvas)?.destroy();
  const unit = unitOf(series.unit);
  return new Chart(canvas, {
    type: kind,
    data: chartData(series, level),
    options: {
      animation: false,
      maintainAspectRatio: false,
      spanGaps: false,
      interaction: { mode: 'index', intersect: false },
      elements: { line: { tension: 0, borderWidth: 2 }, point: { radius: 2 } },
      scales: {
        x: { title: { display: true, text: 'Period start' } },
        y: {
          title: { display: true, text: unit.axis },
          ticks: { callback: (value) => `${tick.format(value)} ${unit.axis}` },
        },
      },
      plugins: {
        legend: { position: 'bottom', labels: { boxWidth: 12 } },
        tooltip: {
          callbacks: {
            label: (context) =>
              `${context.dataset.label}: ${context.parsed.y === null ? 'no value' : unit.text(context.parsed.y)}`,
          },
        },
      },
    },
  });
}

/** The chart drawn on `canvas`, if any. */
export function chartOn(canvas) {
  return Chart.getChart(canvas);
}
