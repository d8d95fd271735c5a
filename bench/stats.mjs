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

// Rounds for printing and JSON: 3 significant decimals below 10, fewer above.
export function round(x) {
  if (!Number.isFinite(x)) return null;
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : Math.abs(x) >= 1 ? 2 : 3;
  return Number(x.toFixed(digits));
}
