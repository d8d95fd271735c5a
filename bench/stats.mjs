// Small statistics over arrays of milliseconds.

// The p-th percentile (nearest rank) of `values`, NaN when empty.
export function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}

// Rounds for printing and JSON: whole numbers from 100, 1 or 2 decimals from 1, and 3
// significant digits below 1 (a per-model CPU time of a few µs keeps its digits, so that
// ratios computed from rounded figures stay meaningful).
export function round(x) {
  if (!Number.isFinite(x)) return null;
  if (Math.abs(x) < 1) return Number(x.toPrecision(3));
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  return Number(x.toFixed(digits));
}
