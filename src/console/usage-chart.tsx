import type { UsageCall } from "./api-types";

/** The outcomes the chart stacks, bottom up, and their colours (the legend's CSS classes match). */
const SERIES = [
  { name: "admitted", colour: "#2f7d4f", matches: (o: string | null) => o === "admitted" },
  { name: "rate_limited", colour: "#d9a400", matches: (o: string | null) => o === "rate_limited" },
  { name: "revoked", colour: "#b42318", matches: (o: string | null) => o === "invalid_credential" },
  { name: "other", colour: "#7a869a", matches: () => true },
] as const;

const MINUTES = 24 * 60;
const WIDTH = MINUTES;
const HEIGHT = 160;
const LEFT = 40;
const BOTTOM = 22;

/** Calls per minute for the 24 hours ending `now`, per series. */
function perMinute(calls: UsageCall[], now: number): number[][] {
  const start = now - MINUTES * 60_000;
  const counts = SERIES.map(() => new Array<number>(MINUTES).fill(0));
  for (const call of calls) {
    const minute = Math.floor((Date.parse(call.time) - start) / 60_000);
    if (minute < 0 || minute >= MINUTES) continue;
    counts[SERIES.findIndex((s) => s.matches(call.outcome))]![minute]!++;
  }
  return counts;
}

/**
 * Calls per minute by outcome over the last 24 h, drawn on the server as SVG (one
 * column per minute, stacked): no script, so it renders under the console's CSP.
 */
export function UsageChart(props: { calls: UsageCall[]; now: number; truncated: boolean }) {
  const counts = perMinute(props.calls, props.now);
  const totals = counts[0]!.map((_, m) => counts.reduce((sum, series) => sum + series[m]!, 0));
  const peak = Math.max(1, ...totals);
  const scale = (HEIGHT - 10) / peak;
  const bars = [];
  for (let m = 0; m < MINUTES; m++) {
    let y = HEIGHT;
    for (let s = 0; s < SERIES.length; s++) {
      const n = counts[s]![m]!;
      if (n === 0) continue;
      const h = Math.max(1, n * scale);
      y -= h;
      // Two minutes wide: at the page's width one minute is under a pixel, and a lone call must still show.
      bars.push(<rect x={LEFT + m - 1} y={y.toFixed(1)} width="2" height={h.toFixed(1)} fill={SERIES[s]!.colour} />);
    }
  }
  const start = props.now - MINUTES * 60_000;
  const ticks = [];
  // A tick on each whole UTC hour divisible by 3.
  for (let t = Math.ceil(start / 3_600_000) * 3_600_000; t <= props.now; t += 3_600_000) {
    const hour = new Date(t).getUTCHours();
    if (hour % 3 !== 0) continue;
    const x = LEFT + (t - start) / 60_000;
    ticks.push(
      <g>
        <line x1={x} x2={x} y1={HEIGHT} y2={HEIGHT + 4} stroke="#5b6575" />
        <text x={x} y={HEIGHT + 16} font-size="11" text-anchor="middle" fill="#5b6575">
          {`${String(hour).padStart(2, "0")}:00`}
        </text>
      </g>,
    );
  }
  const total = totals.reduce((a, b) => a + b, 0);
  return (
    <figure>
      <svg
        class="chart"
        viewBox={`0 0 ${LEFT + WIDTH + 10} ${HEIGHT + BOTTOM}`}
        role="img"
        aria-label={`${total} calls in the last 24 hours`}
      >
        <title>{`Calls per minute by outcome, last 24 h (UTC): ${total} calls, peak ${peak} a minute`}</title>
        <line x1={LEFT} x2={LEFT + WIDTH} y1={HEIGHT} y2={HEIGHT} stroke="#5b6575" />
        <text x={LEFT - 6} y="14" font-size="11" text-anchor="end" fill="#5b6575">
          {String(peak)}
        </text>
        <text x={LEFT - 6} y={HEIGHT} font-size="11" text-anchor="end" fill="#5b6575">
          0
        </text>
        {bars}
        {ticks}
      </svg>
      <figcaption class="legend">
        {SERIES.map((s) => (
          <span>
            <span class={`sw o-${s.name}`}></span>
            {`${s.name} ${counts[SERIES.indexOf(s)]!.reduce((a, b) => a + b, 0)}`}
          </span>
        ))}
        {props.truncated && <span class="muted">(only the newest calls are drawn: the key has more in 24 h than one page reads)</span>}
      </figcaption>
    </figure>
  );
}
