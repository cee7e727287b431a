// The three capacity charts, drawn by Chart.js from the series endpoints. Values come as the
// API sends them: sizes in MiB are shown in GiB, percentages as they are, and a period
// without a value stays a gap (no carried-forward values).

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';

import { formatNumber, formatPercent, toGib } from './format.js';

Chart.register(BarController, BarElement, CategoryScale, Filler, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip);

/** Days a forecast extends the daily trend chart by. */
export const FORECAST_DAYS = 14;

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
 * database) keeps its colour in every chart, whose rankings differ.
 */
function colourOf(line) {
  let hash = line.instance_id;
  for (const character of line.database_name ?? '') hash = (hash * 31 + character.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

/** A line's name in legends and tooltips. */
function lineName(line, level) {
  return level === 'database' ? `${line.instance_name} / ${line.database_name}` : line.instance_name;
}

/** The key a line and its forecast share. */
export function lineKey(line) {
  return `${line.instance_id}/${line.database_name ?? ''}`;
}

/** Adds `days` days to an ISO date. */
function addDays(iso, days) {
  const date = new Date(`${iso}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

/**
 * Which points to mark: partial ones (their period has not ended or misses days) and, when
 * `comparesWithPrevious`, those compared with a partial previous period.
 */
function markedPoints(line, comparesWithPrevious) {
  return line.partial.map((partial, index) => partial || (comparesWithPrevious && index > 0 && line.partial[index - 1] && line.values[index] !== null));
}

/**
 * The datasets Chart.js draws from a series response: one per line, partial points hollow
 * (and the segment to them dashed); with `forecasts` (key → forecast item) the published
 * forecasts follow as dotted lines with their band over `FORECAST_DAYS` more days.
 */
function chartData(series, level, { comparesWithPrevious = false, forecasts = null } = {}) {
  const unit = unitOf(series.unit);
  const future = forecasts ? Array.from({ length: FORECAST_DAYS }, (_, day) => addDays(series.labels.at(-1), day + 1)) : [];
  const labels = [...series.labels, ...future];
  const pad = (values) => [...values, ...future.map(() => null)];
  const datasets = series.series.map((line) => {
    const colour = colourOf(line);
    const marked = markedPoints(line, comparesWithPrevious);
    return {
      label: lineName(line, level),
      data: pad(line.values.map((value) => unit.plot(value))),
      borderColor: colour,
      backgroundColor: pad(marked.map((mark) => (mark ? `${colour}55` : `${colour}cc`))),
      pointBackgroundColor: pad(marked.map((mark) => (mark ? '#ffffff' : colour))),
      pointRadius: pad(marked.map((mark) => (mark ? 4 : 2))),
      segment: { borderDash: (context) => (marked[context.p1DataIndex] ? [6, 4] : undefined) },
      partial: marked,
      comparedWithPartial: line.partial.map((partial, index) => comparesWithPrevious && !partial && marked[index]),
      dataCounts: line.data_counts,
    };
  });
  for (const line of forecasts ? series.series : []) {
    const forecast = forecasts.get(lineKey(line));
    if (!forecast?.published) continue;
    const colour = colourOf(line);
    // The fitted line from the forecast's day to the horizon; the band is the 90 % prediction
    // interval at the horizon, drawn from the fitted value on the forecast's day.
    const at = (date) => {
      const day = (Date.parse(date) - Date.parse(forecast.as_of)) / 86_400_000;
      return day < 0 || day > forecast.horizon_days ? null : day;
    };
    const along = (end) => labels.map((date) => {
      const day = at(date);
      if (day === null) return null;
      return unit.plot(forecast.fitted_size_mb + ((end - forecast.fitted_size_mb) * day) / forecast.horizon_days);
    });
    const name = lineName(line, level);
    datasets.push(
      { type: 'line', label: `${name} (forecast)`, forecast: true, data: along(forecast.projected_size_mb), borderColor: colour, borderDash: [2, 3], pointRadius: 0, fill: false },
      { type: 'line', label: `${name} (forecast low)`, forecast: true, band: true, data: along(forecast.lower_mb), borderColor: 'transparent', pointRadius: 0, fill: false },
      { type: 'line', label: `${name} (forecast high)`, forecast: true, band: true, data: along(forecast.upper_mb), borderColor: 'transparent', backgroundColor: `${colour}22`, pointRadius: 0, fill: '-1' },
    );
  }
  return { labels, datasets, expectedCounts: series.expected_counts, futureLabels: future.length };
}

/** The tooltip of a point: its line, value and, for a partial point, how partial it is. */
function pointText(context, unit, expectedCounts) {
  const value = context.parsed.y === null ? 'no value' : unit.text(context.parsed.y);
  const dataset = context.dataset;
  const index = context.dataIndex;
  let note = '';
  if (dataset.comparedWithPartial?.[index]) {
    note = ' (compared with a partial period)';
  } else if (dataset.partial?.[index]) {
    note = ` (partial: ${dataset.dataCounts?.[index] ?? 0} of ${expectedCounts?.[index] ?? '?'} days)`;
  }
  return `${dataset.label}: ${value}${note}`;
}

/**
 * Draws (or redraws) a chart of `kind` ('line' or 'bar') on `canvas`; `options` as
 * `chartData` takes them.
 */
export function drawChart(canvas, kind, series, level, options = {}) {
  Chart.getChart(canvas)?.destroy();
  const unit = unitOf(series.unit);
  const data = chartData(series, level, options);
  return new Chart(canvas, {
    type: kind,
    data,
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
        legend: { position: 'bottom', labels: { boxWidth: 12, filter: (item, chartData) => !chartData.datasets[item.datasetIndex].band } },
        tooltip: {
          filter: (item) => !item.dataset.band,
          callbacks: {
            label: (context) => pointText(context, unit, data.expectedCounts),
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
