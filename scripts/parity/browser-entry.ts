/** The browser side of the Node-equals-browser test: the same run, the corpus fetched from the test server. */
import { type ParityReport, parityRun } from './parity-run.js';

let report: ParityReport;
try {
  const bytes = new Uint8Array(await (await fetch('/ecoli_k12_cds.csv.gz')).arrayBuffer());
  report = await parityRun(bytes);
} catch (err) {
  report = { adapter: '', host: 'browser', losses: [], ms: 0, error: (err as Error).stack ?? String(err) };
}
(window as unknown as { __rnagradParity: ParityReport }).__rnagradParity = report;
