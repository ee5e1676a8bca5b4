/**
 * The page: controls, live plots and views. All compute happens in the worker (worker.ts); the page
 * sends requests, draws what comes back and keeps checkpoints in IndexedDB. Every failure ends up
 * in the error banner, never as a blank page.
 */
import { lineChartSvg, type EvalEntry, type Series, type StepEntry } from './deps.js';
import { deleteCheckpoint, listCheckpoints, readCheckpoint, storeCheckpoint } from './store.js';
import { renderInside } from './inside-view.js';
import {
  type GenerateRequest,
  type ModelChoice,
  type ModelInfo,
  type ModelKind,
  type Replies,
  type Request,
  type TrainSettings,
  type WorkerEvent,
} from './protocol.js';

const $ = <E extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as E;
const input = (id: string) => $<HTMLInputElement>(id);
const number = (id: string) => Number(input(id).value);

// ---- errors: shown in the page ----
function showError(message: string): void {
  const box = $('errors');
  box.hidden = false;
  box.textContent = message;
}
function clearError(): void {
  $('errors').hidden = true;
  $('errors').textContent = '';
}
window.addEventListener('error', (e) => showError(`Unexpected error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) =>
  showError(`Unexpected error: ${(e.reason as Error)?.message ?? String(e.reason)}`),
);

// ---- the worker ----
let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

function call<K extends Request['type']>(
  request: Extract<Request, { type: K }>,
  transfer: Transferable[] = [],
): Promise<Replies[K]> {
  if (!worker) return Promise.reject(new Error('the training worker is not running'));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    worker!.postMessage({ id, request }, transfer);
  });
}

/** Runs an action from a control: its error goes to the banner, named after the action. */
async function action(what: string, fn: () => Promise<void>): Promise<void> {
  clearError();
  try {
    await fn();
  } catch (err) {
    showError(`${what}: ${(err as Error).message}`);
  }
}

// ---- live training view ----
const steps: StepEntry[] = [];
const evaluations: EvalEntry[] = [];
let drawPending = false;

function drawCharts(): void {
  drawPending = false;
  const chart = (id: string, series: Series[], title: string, yLabel: string) => {
    $(id).innerHTML = series.some((s) => s.points.length)
      ? lineChartSvg(
          series.filter((s) => s.points.length),
          { title, xLabel: 'step', yLabel, width: 400, height: 250 },
        )
      : '';
  };
  const loss = steps.map((e) => [e.step, e.loss] as [number, number]);
  const smooth = loss.map(([x], i) => {
    const window = loss.slice(Math.max(0, i - 9), i + 1);
    return [x, window.reduce((s, p) => s + p[1], 0) / window.length] as [number, number];
  });
  chart(
    'chart-loss',
    [
      { name: 'training loss', color: '#9fb7d9', points: loss },
      { name: 'mean of 10', color: '#0b5394', points: loss.length > 10 ? smooth : [] },
    ],
    'Training loss',
    'loss',
  );
  chart(
    'chart-val',
    [
      {
        name: 'validation CE',
        color: '#c0392b',
        points: evaluations.map((e) => [e.step, e.metrics.crossEntropy ?? e.metrics.loss!]),
        style: 'points',
      },
    ],
    'Validation cross-entropy',
    'nats',
  );
  chart(
    'chart-lr',
    [{ name: 'learning rate', color: '#27ae60', points: steps.map((e) => [e.step, e.lr]) }],
    'Learning rate',
    'lr',
  );
}

function scheduleDraw(): void {
  if (!drawPending) {
    drawPending = true;
    requestAnimationFrame(drawCharts);
  }
}

function showStep(entry: StepEntry): void {
  steps.push(entry);
  modelStep = entry.step;
  $('step').textContent = String(entry.step);
  $('loss-value').textContent = entry.loss.toFixed(4);
  $('step-ms').textContent = `${entry.ms.toFixed(0)} ms`;
  $('tokens-per-s').textContent = (entry.tokens / (entry.ms / 1000)).toFixed(0);
  scheduleDraw();
}

function showEvaluation(entry: EvalEntry): void {
  evaluations.push(entry);
  $('val-ce').textContent = (entry.metrics.crossEntropy ?? NaN).toFixed(4);
  scheduleDraw();
}

/** Step of the model on screen: an untrained one is replaced as soon as another model is picked. */
let modelStep = 0;
/** Why the model on screen cannot generate / be looked inside (null: it can). */
let blocked: { generate: string | null; inside: string | null } = { generate: null, inside: null };

/** A button that this model cannot use: disabled, with the reason beside it in the page. */
function showBlocked(id: 'generate' | 'inside', reason: string | null): void {
  $<HTMLButtonElement>(id).disabled = reason !== null;
  $<HTMLButtonElement>(id).title = reason ?? '';
  $(`${id}-reason`).textContent = reason ? `Off for this model: ${reason}.` : '';
}

function showModel(m: ModelInfo): void {
  modelStep = m.step;
  const positions = m.maxPositions === null ? 'relative positions (RoPE)' : `${m.maxPositions} positions`;
  $('model-info').textContent =
    `${m.description} · ${m.parameters.toLocaleString('en')} parameters · ${positions} · at step ${m.step}`;
  steps.splice(0, steps.length, ...m.steps);
  evaluations.splice(0, evaluations.length, ...m.evaluations);
  const last = m.steps.at(-1);
  if (last) showStep(steps.pop()!);
  else for (const id of ['loss-value', 'step-ms', 'tokens-per-s', 'val-ce']) $(id).textContent = '–';
  $('step').textContent = String(m.step);
  const lastEval = m.evaluations.at(-1);
  if (lastEval) $('val-ce').textContent = (lastEval.metrics.crossEntropy ?? NaN).toFixed(4);
  // Sequences and views of the model this one replaces would be mistaken for its own.
  $('generated').replaceChildren();
  $('inside-view').replaceChildren();
  blocked = { generate: m.noGenerate, inside: m.noInside };
  showBlocked('generate', blocked.generate);
  showBlocked('inside', blocked.inside);
  $('train').textContent = m.step > 0 ? 'Resume' : 'Train';
  scheduleDraw();
}

// ---- state of the buttons ----
function setTraining(on: boolean, state: string): void {
  $('train-state').textContent = state;
  for (const id of ['train', 'create', 'save', 'generate', 'inside', 'checkpoint-upload', 'upload'])
    $<HTMLButtonElement>(id).disabled = on;
  $<HTMLButtonElement>('pause').disabled = !on;
  if (blocked.generate) $<HTMLButtonElement>('generate').disabled = true;
  if (blocked.inside) $<HTMLButtonElement>('inside').disabled = true;
}

function settings(): TrainSettings {
  const s = {
    steps: number('steps'),
    batchSize: number('batch'),
    length: number('length'),
    lr: number('lr'),
    evalEvery: number('eval-every'),
    seed: number('seed'),
  };
  for (const [k, v] of Object.entries(s)) if (!Number.isFinite(v)) throw new Error(`${k} must be a number`);
  return s;
}

type HelmChoice = Extract<ModelChoice, { kind: 'helm' }>;
const pickedKind = () => input('model-kind').value as ModelKind;

function choice(): ModelChoice {
  if (pickedKind() === 'rinalmo')
    return { kind: 'rinalmo', size: input('rinalmo-size').value as Extract<ModelChoice, { kind: 'rinalmo' }>['size'] };
  return {
    kind: 'helm',
    objective: input('objective').value as HelmChoice['objective'],
    loss: input('loss').value as HelmChoice['loss'],
    size: input('size').value as HelmChoice['size'],
  };
}

/** Shows the pickers of the model kind picked (HELM: objective, loss, size; RiNALMo: its sizes and notes). */
function showPickers(): void {
  const rinalmo = pickedKind() === 'rinalmo';
  document.querySelectorAll<HTMLElement>('.helm-only').forEach((el) => (el.hidden = rinalmo));
  document.querySelectorAll<HTMLElement>('.rinalmo-only').forEach((el) => (el.hidden = !rinalmo));
}

// ---- actions ----
async function createModel(): Promise<void> {
  showModel(await call({ type: 'create', model: choice(), seed: number('seed') }));
}

async function startTraining(): Promise<void> {
  setTraining(true, 'training…');
  try {
    const result = await call({ type: 'train', settings: settings() });
    $('train').textContent = 'Resume';
    setTraining(false, result.stopped === 'interrupt' ? `paused at step ${result.step}` : `done: ${result.step} steps`);
  } catch (err) {
    setTraining(false, 'stopped by an error');
    throw err;
  }
}

async function saveCheckpoint(): Promise<void> {
  const saved = await call({ type: 'save' });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const name = `${saved.kind}-step${String(saved.step).padStart(5, '0')}-${stamp}.safetensors`;
  await storeCheckpoint({
    name,
    bytes: saved.bytes,
    step: saved.step,
    description: saved.description,
    savedAt: Date.now(),
  });
  await refreshCheckpoints();
}

async function loadCheckpoint(name: string, bytes: Uint8Array): Promise<void> {
  const loaded = await call({ type: 'load', name, bytes, expect: pickedKind() });
  showModel(loaded);
  const picked = loaded.choice;
  if (picked.kind === 'helm') {
    input('objective').value = picked.objective;
    input('loss').value = picked.loss;
  }
  if (picked.size) input(picked.kind === 'helm' ? 'size' : 'rinalmo-size').value = picked.size;
  for (const [id, key] of [
    ['steps', 'steps'],
    ['batch', 'batchSize'],
    ['length', 'length'],
    ['lr', 'lr'],
    ['eval-every', 'evalEvery'],
    ['seed', 'seed'],
  ] as const) {
    if (loaded.settings[key] !== undefined) input(id).value = String(loaded.settings[key]);
  }
  $('train-state').textContent = `loaded ${name} (step ${loaded.step})`;
}

async function refreshCheckpoints(): Promise<void> {
  const list = $('checkpoints');
  list.replaceChildren();
  for (const c of await listCheckpoints()) {
    const li = document.createElement('li');
    li.dataset.testid = 'checkpoint';
    const load = button(
      'Load',
      () => action('Loading the checkpoint', async () => loadCheckpoint(c.name, (await readCheckpoint(c.name)).bytes)),
      'checkpoint-load',
    );
    const download = document.createElement('a');
    download.textContent = 'Download';
    download.href = '#';
    download.onclick = (e) => {
      e.preventDefault();
      void action('Download', async () => {
        const url = URL.createObjectURL(
          new Blob([(await readCheckpoint(c.name)).bytes as Uint8Array<ArrayBuffer>], {
            type: 'application/octet-stream',
          }),
        );
        const a = Object.assign(document.createElement('a'), { href: url, download: c.name });
        a.click();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      });
    };
    const remove = button('Delete', () =>
      action('Deleting the checkpoint', async () => {
        await deleteCheckpoint(c.name);
        await refreshCheckpoints();
      }),
    );
    li.append(
      `${c.name} — ${c.description}, step ${c.step}, ${(c.size / 1024).toFixed(0)} KiB `,
      load,
      ' ',
      download,
      ' ',
      remove,
    );
    list.append(li);
  }
}

function button(text: string, onClick: () => void, testid?: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.textContent = text;
  if (testid) b.dataset.testid = testid;
  b.onclick = onClick;
  return b;
}

async function generateSequences(): Promise<void> {
  const options: GenerateRequest = {
    count: number('count'),
    maxCodons: number('max-codons'),
    temperature: number('temperature'),
    topK: number('top-k'),
    topP: number('top-p'),
    seed: number('gen-seed'),
  };
  $<HTMLButtonElement>('generate').disabled = true;
  try {
    const { sequences, ms } = await call({ type: 'generate', options });
    const list = $('generated');
    list.replaceChildren();
    for (const s of sequences) {
      const li = document.createElement('li');
      li.dataset.testid = 'generated-sequence';
      const end = s.finished === 'eos' ? 'ended by the model' : 'hit the length limit';
      li.innerHTML = `<div class="seq">${s.codons.join(' ')}</div>
<div>protein: <b class="seq" data-testid="protein">${s.protein || '(empty)'}</b> · ${s.codons.length} codons
· ${end}${s.endsWithStop ? ', ends with a stop codon' : ''}</div>`;
      list.append(li);
    }
    list.append(
      Object.assign(document.createElement('p'), {
        className: 'info',
        textContent: `${sequences.length} sequences in ${(ms / 1000).toFixed(1)} s`,
      }),
    );
  } finally {
    $<HTMLButtonElement>('generate').disabled = false;
  }
}

async function lookInside(): Promise<void> {
  const view = await call({ type: 'inspect', sequence: input('inside-seq').value, codon: number('inside-codon') });
  renderInside($('inside-view'), view);
}

let corpusText = 'No corpus yet.';
async function loadCorpus(): Promise<void> {
  const upload = input('upload');
  const useUpload = (document.querySelector('input[name=corpus]:checked') as HTMLInputElement).value === 'upload';
  $('corpus-info').textContent = 'Reading the corpus…';
  let source: Extract<Request, { type: 'corpus' }>['source'];
  if (useUpload) {
    const file = upload.files?.[0];
    if (!file) {
      $('corpus-info').textContent = `${corpusText} — choose a FASTA or CSV file to use yours.`;
      return;
    }
    source = { kind: 'upload', name: file.name, text: await file.text() };
  } else source = { kind: 'bundled', url: './ecoli_k12_cds.csv.gz' };
  try {
    const c = await call({ type: 'corpus', source });
    const [codons, nucleotides] = [c.codons, c.nucleotides].map((n) => n.toLocaleString('en'));
    corpusText =
      `${c.name}: ${c.train} training and ${c.validation} validation sequences, ` +
      `${codons} codons (HELM), ${nucleotides} nucleotides (RiNALMo)` +
      (c.validationFromTrain ? ' — nothing held out: validation uses the training sequences' : '');
    $('corpus-info').textContent = corpusText;
  } catch (err) {
    $('corpus-info').textContent = `${corpusText} (kept: the new file was not used)`;
    throw err;
  }
}

// ---- start-up ----
function noWebGpu(reason: string): void {
  $('adapter').innerHTML = '';
  const box = Object.assign(document.createElement('div'), { className: 'warning' });
  box.dataset.testid = 'no-webgpu';
  box.innerHTML = `<b>This browser has no usable WebGPU</b> (${reason.replace(/[<>&]/g, '')}).
The app trains on WebGPU only. Use Chrome or Edge 113+ (on Linux start it with
<code>--enable-unsafe-webgpu --enable-features=Vulkan</code>,
or enable <code>chrome://flags/#enable-unsafe-webgpu</code>),
Safari 26+, or Firefox 141+ on Windows (elsewhere set <code>dom.webgpu.enabled</code> in about:config).
Without a GPU, Chrome's software adapter works with <code>--use-webgpu-adapter=swiftshader</code>
(slow but correct).`;
  $('adapter').append(box);
  document
    .querySelectorAll<HTMLButtonElement | HTMLInputElement>('main button, main input, main select')
    .forEach((el) => (el.disabled = true));
}

function bind(id: string, what: string, fn: () => Promise<void>): void {
  $(id).addEventListener(
    id === 'upload' || id === 'checkpoint-upload' ? 'change' : 'click',
    () => void action(what, fn),
  );
}

async function start(): Promise<void> {
  if (!('gpu' in navigator)) return noWebGpu('navigator.gpu is missing');
  worker = new Worker('./worker.js', { type: 'module' });
  worker.onmessage = ({ data }: MessageEvent<WorkerEvent>) => {
    if (data.type === 'step') showStep(data.entry);
    else if (data.type === 'evaluation') showEvaluation(data.entry);
    else {
      const p = pending.get(data.id);
      pending.delete(data.id);
      if (data.ok) p?.resolve(data.result);
      else p?.reject(new Error(data.error));
    }
  };
  worker.onerror = (e) => showError(`The training worker failed: ${e.message || 'see the console'}`);
  let adapter: Replies['init'];
  try {
    adapter = await call({ type: 'init' });
  } catch (err) {
    return noWebGpu((err as Error).message);
  }
  $('adapter').textContent =
    `WebGPU adapter: ${adapter.adapter}` +
    (adapter.fallback ? ' (software: correct but slow — a hardware GPU is used when the browser offers one)' : '');
  $('adapter').dataset.adapter = adapter.adapter;
  bind('create', 'New model', createModel);
  $('model-kind').addEventListener('change', showPickers);
  showPickers();
  for (const id of ['model-kind', 'objective', 'loss', 'size', 'rinalmo-size']) {
    $(id).addEventListener('change', () => {
      if (modelStep === 0) void action('New model', createModel);
      else $('model-info').textContent += ' — press "New model" to start the model picked above';
    });
  }
  bind('train', 'Training', startTraining);
  $('pause').addEventListener(
    'click',
    () =>
      void action('Pause', async () => {
        $('train-state').textContent = 'pausing after this step…';
        await call({ type: 'pause' });
      }),
  );
  bind('save', 'Saving the checkpoint', saveCheckpoint);
  bind('checkpoint-upload', 'Loading the checkpoint', async () => {
    const file = input('checkpoint-upload').files?.[0];
    input('checkpoint-upload').value = '';
    if (file) await loadCheckpoint(file.name, new Uint8Array(await file.arrayBuffer()));
  });
  bind('generate', 'Generating', generateSequences);
  bind('inside', 'Look inside', lookInside);
  bind('upload', 'Reading the upload', async () => {
    (document.querySelector('input[name=corpus][value=upload]') as HTMLInputElement).checked = true;
    await loadCorpus();
  });
  document
    .querySelectorAll('input[name=corpus]')
    .forEach((radio) => radio.addEventListener('change', () => void action('Loading the corpus', loadCorpus)));
  await action('Loading the bundled corpus', loadCorpus);
  await action('Creating the model', createModel);
  await action('Listing saved checkpoints', refreshCheckpoints);
  document.body.dataset.ready = 'true';
}

void action('Starting', start);
