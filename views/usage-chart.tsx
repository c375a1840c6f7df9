import { Panel, Time } from './components.tsx';
/** One day of checks, as `usageSeries` (src/credentials/usage.ts) returns it. */
export interface UsageChartPoint {
  /** YYYY-MM-DD (UTC). */
  day: string;
  succeeded: number;
  failed: number;
}

const WIDTH = 640;
const HEIGHT = 180;
const LEFT = 40;
const BOTTOM = 22;
const TOP = 8;

/** A round ceiling for the axis (1, 2, 5 × 10ⁿ), so the top label reads well. */
function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 5, 10].find((step) => step * power >= value) ?? 10) * power;
}

const plural = (n: number, word: string) => `${n.toLocaleString('en')} ${word}${n === 1 ? '' : 's'}`;

/**
 * Checks per day, stacked (succeeded below, failed above), drawn on the server as SVG — no
 * script, no inline style (the CSP forbids it): colours come from the `.chart .ok/.failed`
 * classes. The same numbers follow in a table, for screen readers and for copying.
 */
export function UsageChart(props: { series: UsageChartPoint[]; title: string }) {
  const { series, title } = props;
  const succeeded = series.reduce((sum, p) => sum + p.succeeded, 0);
  const failed = series.reduce((sum, p) => sum + p.failed, 0);
  const first = series[0]?.day ?? '';
  const last = series.at(-1)?.day ?? '';
  const summary = `${title}: ${plural(succeeded, 'successful check')} and ${plural(failed, 'failed check')} from ${first} to ${last}.`;
  const max = niceMax(Math.max(0, ...series.map((p) => p.succeeded + p.failed)));
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const slot = series.length ? (WIDTH - LEFT) / series.length : 0;
  const barWidth = Math.max(1, slot * 0.7);
  const y = (value: number) => (value / max) * plotHeight;
  const baseline = HEIGHT - BOTTOM;
  return (
    <figure class="usage">
      <figcaption>
        <strong>{title}</strong> <span class="muted small">(last {series.length} days, UTC)</span>
      </figcaption>
      <svg class="chart" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={summary} preserveAspectRatio="xMidYMid meet">
        <title>{summary}</title>
        <line class="axis" x1={LEFT} y1={baseline} x2={WIDTH} y2={baseline} />
        <line class="axis" x1={LEFT} y1={TOP} x2={LEFT} y2={baseline} />
        <text x={LEFT - 4} y={TOP + 8} text-anchor="end">
          {max.toLocaleString('en')}
        </text>
        <text x={LEFT - 4} y={baseline} text-anchor="end">
          0
        </text>
        {series.map((point, i) => {
          const x = LEFT + i * slot + (slot - barWidth) / 2;
          const okHeight = y(point.succeeded);
          const failedHeight = y(point.failed);
          return (
            <g>
              {point.succeeded > 0 ? <rect class="ok" x={x.toFixed(1)} y={(baseline - okHeight).toFixed(1)} width={barWidth.toFixed(1)} height={okHeight.toFixed(1)} /> : null}
              {point.failed > 0 ? (
                <rect class="failed" x={x.toFixed(1)} y={(baseline - okHeight - failedHeight).toFixed(1)} width={barWidth.toFixed(1)} height={failedHeight.toFixed(1)} />
              ) : null}
            </g>
          );
        })}
        <text x={LEFT} y={HEIGHT - 6}>
          {first}
        </text>
        <text x={WIDTH} y={HEIGHT - 6} text-anchor="end">
          {last}
        </text>
      </svg>
      <p class="legend">
        <span>
          <svg class="chart legend-swatch" viewBox="0 0 10 10" aria-hidden="true">
            <rect class="ok" width="10" height="10" />
          </svg>
          Successful ({succeeded.toLocaleString('en')})
        </span>
        <span>
          <svg class="chart legend-swatch" viewBox="0 0 10 10" aria-hidden="true">
            <rect class="failed" width="10" height="10" />
          </svg>
          Failed ({failed.toLocaleString('en')})
        </span>
      </p>
      <details>
        <summary>Show the numbers</summary>
        <div class="table-wrap">
          <table>
            <caption class="muted small">{title}, per day (UTC)</caption>
            <thead>
              <tr>
                <th scope="col">Day</th>
                <th scope="col">Successful</th>
                <th scope="col">Failed</th>
              </tr>
            </thead>
            <tbody>
              {series.map((point) => (
                <tr>
                  <th scope="row">{point.day}</th>
                  <td>{point.succeeded}</td>
                  <td>{point.failed}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">Total</th>
                <td>{succeeded}</td>
                <td>{failed}</td>
              </tr>
            </tfoot>
          </table>
        </div>
      </details>
    </figure>
  );
}

/**
 * The "Usage" panel of a key's or an application's page: when it was last used, and its
 * checks per day (successful and failed) over the series' days, as a chart and a table.
 */
export function UsagePanel(props: { series: UsageChartPoint[]; lastUsedAt: Date | null; now: Date; what: 'key' | 'application' }) {
  const total = props.series.reduce((sum, p) => sum + p.succeeded + p.failed, 0);
  return (
    <Panel id="usage" title="Usage">
      <dl class="details">
        <dt>Last used</dt>
        <dd>
          <Time at={props.lastUsedAt} now={props.now} never="never" />
        </dd>
        <dt>Checks, last {props.series.length} days</dt>
        <dd>{total.toLocaleString('en')}</dd>
      </dl>
      <UsageChart series={props.series} title={props.what === 'key' ? 'Checks of this key' : 'Token requests of this application'} />
    </Panel>
  );
}
