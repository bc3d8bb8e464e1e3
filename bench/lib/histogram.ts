// The benchmark's latency histogram: HdrHistogram (hdr-histogram-js) with 3 significant digits, values in
// microseconds, growing as needed. The interface is the part of it the benchmark uses.

import * as hdr from 'hdr-histogram-js';

export interface Histogram {
  /** Records one value (a non-negative number; rounded to an integer). */
  recordValue(value: number): void;
  readonly totalCount: number;
  /** The largest value recorded (0 if none). */
  readonly maxValue: number;
  /** The smallest value recorded that is above 0 (0 if none). */
  readonly minNonZeroValue: number;
  /** The value at or below which `percentile` percent of the recorded values lie (HdrHistogram's rule: the
   *  highest value equivalent to the one at rank ceil(p/100 * count)), never above maxValue. */
  getValueAtPercentile(percentile: number): number;
  /** Adds another histogram's counts to this one. */
  add(other: Histogram): void;
  reset(): void;
}

/** hdr-histogram-js behind the interface (its own `add` takes its own type). */
class HdrHistogram implements Histogram {
  readonly h = hdr.build({ bitBucketSize: 64, autoResize: true, numberOfSignificantValueDigits: 3 });
  recordValue(value: number): void {
    this.h.recordValue(Math.max(0, Math.round(value)));
  }
  get totalCount(): number {
    return this.h.totalCount;
  }
  get maxValue(): number {
    return this.h.maxValue;
  }
  get minNonZeroValue(): number {
    return this.h.totalCount === 0 ? 0 : this.h.minNonZeroValue;
  }
  getValueAtPercentile(percentile: number): number {
    return this.h.totalCount === 0 ? 0 : Math.min(this.h.getValueAtPercentile(percentile), this.h.maxValue);
  }
  add(other: Histogram): void {
    if (!(other instanceof HdrHistogram)) throw new Error('Histogram.add: another kind of histogram');
    this.h.add(other.h);
  }
  reset(): void {
    this.h.reset();
  }
}

/** The histogram the benchmark uses: values in microseconds. */
export function createHistogram(): Histogram {
  return new HdrHistogram();
}

/** The percentiles of a latency CDF chart: fine at the bottom, then the tail (99.9, 99.99) and the max. */
export const CDF_PERCENTILES: readonly number[] = [
  ...Array.from({ length: 20 }, (_v, i) => i * 5),
  96, 97, 98, 99, 99.5, 99.9, 99.95, 99.99, 100,
];

/** (latency, fraction at or below it) points of a histogram of microseconds, latency in ms. */
export function cdfPoints(h: Histogram): [number, number][] {
  if (h.totalCount === 0) return [];
  return CDF_PERCENTILES.map((p) => [h.getValueAtPercentile(p) / 1000, p / 100] as [number, number]);
}
