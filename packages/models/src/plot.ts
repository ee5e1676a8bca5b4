/** Loss curves as a standalone SVG file and as a terminal chart, with no plotting dependency. */

export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  /** 'line' (default; small series also get dots) or 'points' (dots only, e.g. validation). */
  style?: 'line' | 'points';
}

/** A line chart of (x, y) series with axes, ticks and a legend. */
export function lineChartSvg(
  series: Series[],
  opts: { title: string; xLabel: string; yLabel: string; width?: number; height?: number },
): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  const m = { left: 64, right: 20, top: 40, bottom: 52 };
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  const pad = (Math.max(...ys) - Math.min(...ys)) * 0.05 || 0.5;
  const [y0, y1] = [Math.min(...ys) - pad, Math.max(...ys) + pad];
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * (width - m.left - m.right);
  const sy = (y: number) => height - m.bottom - ((y - y0) / (y1 - y0)) * (height - m.top - m.bottom);
  const ticks = (lo: number, hi: number, n: number) =>
    Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
  const esc = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" ` +
      `font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`,
  ];
  const decimals = Math.max(1, Math.ceil(-Math.log10(y1 - y0)) + 2);
  for (const y of ticks(y0, y1, 5)) {
    parts.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${sy(y)}" y2="${sy(y)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.left - 6}" y="${sy(y) + 4}" text-anchor="end">${y.toFixed(decimals)}</text>`);
  }
  for (const x of ticks(x0, x1, 6))
    parts.push(`<text x="${sx(x)}" y="${height - m.bottom + 18}" text-anchor="middle">${Math.round(x)}</text>`);
  parts.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${height - m.bottom}" stroke="#333"/>`);
  parts.push(
    `<line x1="${m.left}" x2="${width - m.right}" y1="${height - m.bottom}" y2="${height - m.bottom}" stroke="#333"/>`,
  );
  parts.push(`<text x="${width / 2}" y="${height - 12}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(16 ${height / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const d = s.points.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    if (s.style !== 'points') parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    if (s.style === 'points' || s.points.length < 40)
      for (const [x, y] of s.points) parts.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3" fill="${s.color}"/>`);
    parts.push(
      `<rect x="${width - m.right - 190}" y="${m.top + 6 + i * 18}" width="12" height="12" fill="${s.color}"/>`,
    );
    parts.push(`<text x="${width - m.right - 172}" y="${m.top + 16 + i * 18}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** A small terminal chart: one column per bucket of points, rows from max (top) to min. */
export function asciiChart(values: number[], opts: { width?: number; height?: number } = {}): string {
  const width = Math.min(opts.width ?? 60, values.length);
  const height = opts.height ?? 10;
  if (values.length === 0) return '';
  const buckets = Array.from({ length: width }, (_, i) => {
    const slice = values.slice(
      Math.floor((i * values.length) / width),
      Math.max(Math.floor(((i + 1) * values.length) / width), Math.floor((i * values.length) / width) + 1),
    );
    return slice.reduce((a, b) => a + b, 0) / slice.length;
  });
  const lo = Math.min(...buckets);
  const hi = Math.max(...buckets);
  const rows: string[] = [];
  for (let r = height - 1; r >= 0; r--) {
    const level = lo + ((hi - lo) * (r + 0.5)) / height;
    const label = r === height - 1 ? hi.toFixed(3) : r === 0 ? lo.toFixed(3) : '';
    rows.push(`${label.padStart(8)} │${buckets.map((v) => (v >= level ? '█' : ' ')).join('')}`);
  }
  rows.push(`${''.padStart(8)} └${'─'.repeat(width)}`);
  return rows.join('\n');
}

/** Exponential moving average, for a readable training curve. */
export function smooth(values: number[], factor = 0.9): number[] {
  let acc = values[0] ?? 0;
  return values.map((v) => (acc = factor * acc + (1 - factor) * v));
}
