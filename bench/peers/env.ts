/**
 * What the peer engines need to run in Node:
 * - `navigator.gpu` from npm `webgpu` (Dawn), plus Dawn's GPUBufferUsage/GPUMapMode/... globals,
 *   on the same adapter rnagrad uses (the parent passes VK_ICD_FILENAMES for SwiftShader);
 * - `navigator.userAgent` (jax-js reads it to pick per-browser kernel heuristics);
 * - ES2025 iterator helpers (Iterator.prototype.map/filter/take/...), which Node 20 lacks and
 *   jax-js uses. Small polyfills, written here, installed only where missing.
 */

type AnyIter = Iterator<unknown> & Iterable<unknown>;

function installIteratorHelpers(): void {
  const proto = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())) as Record<string, unknown>;
  const define = (name: string, fn: (this: AnyIter, ...args: never[]) => unknown) => {
    if (typeof proto[name] !== 'function')
      Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true });
  };
  const iterate = function* (it: AnyIter): Generator<unknown> {
    for (let r = it.next(); !r.done; r = it.next()) yield r.value;
  };
  define('map', function (this: AnyIter, f: (v: unknown, i: number) => unknown) {
    const it = this;
    return (function* () {
      let i = 0;
      for (const v of iterate(it)) yield f(v, i++);
    })();
  });
  define('filter', function (this: AnyIter, f: (v: unknown, i: number) => boolean) {
    const it = this;
    return (function* () {
      let i = 0;
      for (const v of iterate(it)) if (f(v, i++)) yield v;
    })();
  });
  define('take', function (this: AnyIter, n: number) {
    const it = this;
    return (function* () {
      if (n <= 0) return;
      let i = 0;
      for (const v of iterate(it)) {
        yield v;
        if (++i >= n) return;
      }
    })();
  });
  define('drop', function (this: AnyIter, n: number) {
    const it = this;
    return (function* () {
      let i = 0;
      for (const v of iterate(it)) if (i++ >= n) yield v;
    })();
  });
  define('flatMap', function (this: AnyIter, f: (v: unknown, i: number) => Iterable<unknown>) {
    const it = this;
    return (function* () {
      let i = 0;
      for (const v of iterate(it)) yield* f(v, i++);
    })();
  });
  define('reduce', function (this: AnyIter, f: (acc: unknown, v: unknown, i: number) => unknown, ...init: unknown[]) {
    let i = 0;
    let acc: unknown;
    let started = init.length > 0;
    if (started) acc = init[0];
    for (const v of iterate(this)) {
      if (!started) {
        acc = v;
        started = true;
        i++;
        continue;
      }
      acc = f(acc, v, i++);
    }
    if (!started) throw new TypeError('Reduce of empty iterator with no initial value');
    return acc;
  });
  define('toArray', function (this: AnyIter) {
    return [...iterate(this)];
  });
  define('forEach', function (this: AnyIter, f: (v: unknown, i: number) => void) {
    let i = 0;
    for (const v of iterate(this)) f(v, i++);
  });
  define('some', function (this: AnyIter, f: (v: unknown, i: number) => boolean) {
    let i = 0;
    for (const v of iterate(this)) if (f(v, i++)) return true;
    return false;
  });
  define('every', function (this: AnyIter, f: (v: unknown, i: number) => boolean) {
    let i = 0;
    for (const v of iterate(this)) if (!f(v, i++)) return false;
    return true;
  });
  define('find', function (this: AnyIter, f: (v: unknown, i: number) => boolean) {
    let i = 0;
    for (const v of iterate(this)) if (f(v, i++)) return v;
    return undefined;
  });
  const g = globalThis as Record<string, unknown>;
  if (typeof g.Iterator !== 'function') {
    const Iterator = function Iterator() {} as unknown as { prototype: unknown; from?: (x: unknown) => unknown };
    Iterator.prototype = proto;
    Iterator.from = (x: unknown) => {
      const it = (x as Iterable<unknown>)[Symbol.iterator]
        ? (x as Iterable<unknown>)[Symbol.iterator]()
        : (x as Iterator<unknown>);
      return iterate(it as AnyIter);
    };
    Object.defineProperty(globalThis, 'Iterator', { value: Iterator, writable: true, configurable: true });
  }
}

export interface PeerEnv {
  gpu: GPU;
  adapterDescription: string;
}

/** Installs navigator.gpu / userAgent, Dawn's globals and the iterator helpers. */
export async function installPeerEnv(): Promise<PeerEnv> {
  installIteratorHelpers();
  const webgpu = (await import('webgpu')) as unknown as {
    create: (flags: string[]) => GPU;
    globals: Record<string, unknown>;
  };
  for (const [name, value] of Object.entries(webgpu.globals))
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  process.env.XDG_RUNTIME_DIR ??= (await import('node:os')).tmpdir();
  const gpu = webgpu.create([]);
  const nav = {
    gpu,
    userAgent: `Node.js/${process.versions.node}`,
    hardwareConcurrency: (await import('node:os')).cpus().length,
    language: 'en-US',
  };
  Object.defineProperty(globalThis, 'navigator', { value: nav, writable: true, configurable: true });
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter in the peer process (VK_ICD_FILENAMES not passed on?)');
  const info = adapter.info;
  return { gpu, adapterDescription: `${info.vendor} ${info.architecture} ${info.description}`.trim() };
}
