// Output helpers: etcdctl-style tables and sizes.

/** A table with borders, as etcdctl's `-w table` prints it. Cells are aligned as tablewriter does by default
 *  (numbers right, text left), or centered (alignment `center`: what etcdctl asks for `member list`). */
export function renderTable(headers: string[], rows: string[][], alignment: 'auto' | 'center' = 'auto'): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+\n';
  const center = (s: string, w: number): string => {
    const left = Math.floor((w - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
  };
  const line = (cells: string[], align: (s: string, w: number) => string): string =>
    '|' + cells.map((c, i) => ' ' + align(c, widths[i]) + ' ').join('|') + '|\n';
  let out = rule + line(headers, center) + rule;
  // Numbers to the right, text to the left (tablewriter's default, which etcdctl uses).
  const auto = (s: string, w: number): string => (/^-?[\d.]+( [kMGTPE]?B)?$/.test(s) ? s.padStart(w) : s.padEnd(w));
  const align = alignment === 'center' ? center : auto;
  for (const r of rows)
    out += line(
      headers.map((_, i) => r[i] ?? ''),
      align,
    );
  if (rows.length > 0) out += rule;
  return out;
}

/** Bytes in SI units, as etcdctl prints DB SIZE (go-humanize's Bytes): "25 kB", "1.2 MB", "7 B". */
export function humanBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const sizes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1000)), sizes.length - 1);
  const val = Math.floor((n / Math.pow(1000, e)) * 10 + 0.5) / 10;
  return `${val < 10 ? val.toFixed(1) : val.toFixed(0)} ${sizes[e]}`;
}

/** Milliseconds with a sensible precision: "0.84ms", "12.3ms", "1520ms". */
export function formatMs(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)}ms`;
  if (ms < 100) return `${ms.toFixed(1)}ms`;
  return `${Math.round(ms)}ms`;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
