// One way to show numbers everywhere: sizes in binary gibibytes (the API stores MiB),
// signed changes, percentages, dates and durations.

export const MIB_PER_GIB = 1024;

const twoDecimals = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** MiB (number or decimal string) to GiB; null stays null (a gap). */
export function toGib(mib) {
  return mib === null || mib === undefined ? null : Number(mib) / MIB_PER_GIB;
}

/** "1,234.56" (two decimals). */
export function formatNumber(value) {
  return twoDecimals.format(value);
}

/** "1,234.56 GiB" from MiB. */
export function formatGib(mib) {
  return mib === null || mib === undefined ? '—' : `${formatNumber(toGib(mib))} GiB`;
}

/** "+1.50 UNIT" / "−0.25 UNIT" / "0.00 UNIT". */
function signed(value, unit) {
  return `${value > 0 ? '+' : value < 0 ? '−' : ''}${twoDecimals.format(Math.abs(value))} ${unit}`;
}

/** "+1.50 GiB" / "−0.25 GiB" from MiB. */
export function formatGibChange(mib) {
  if (mib === null || mib === undefined) return '—';
  const value = toGib(mib);
  return signed(value, 'GiB');
}

/** "+1.25 %" from a percentage (number or decimal string). */
export function formatPercent(percent) {
  if (percent === null || percent === undefined) return '—';
  const value = Number(percent);
  return signed(value, '%');
}

/** "1,234". */
export function formatCount(count) {
  return count === null || count === undefined ? '—' : whole.format(Number(count));
}

/** A timestamp in the browser's time zone as "2026-11-26 14:03:05". */
export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString('sv-SE') : '—';
}

/** "2 min 5 s" from seconds. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const total = Math.round(Number(seconds));
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min ${total % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Capitalised words from an API name: "scheduled_task" → "Scheduled task". */
export function humanize(name) {
  if (!name) return '—';
  const text = name.replaceAll('_', ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
