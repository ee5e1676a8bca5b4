/**
 * Modules with named parameters, PyTorch-style: a parameter's name is its dotted path
 * ("blocks.0.attn.qkv.weight"), so a state dict maps one-to-one onto a PyTorch `state_dict()`
 * and onto checkpoint files.
 */
import * as T from '@rnagrad/tensor';
import type { Tensor } from '@rnagrad/tensor';
import { requireGrad } from '@rnagrad/autograd';

export abstract class Module {
  training = true;
  private readonly ownParams = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  protected param(name: string, value: Tensor): Tensor {
    if (this.ownParams.has(name) || this.children.has(name)) throw new Error(`Module: duplicate name "${name}"`);
    this.ownParams.set(name, T.keep(requireGrad(value)));
    return value;
  }

  protected module<M extends Module>(name: string, child: M): M {
    if (this.ownParams.has(name) || this.children.has(name)) throw new Error(`Module: duplicate name "${name}"`);
    this.children.set(name, child);
    return child;
  }

  /** [dotted name, tensor] for every parameter, in registration order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, p] of this.ownParams) out.push([prefix + name, p]);
    for (const [name, child] of this.children) out.push(...child.namedParameters(`${prefix}${name}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Number of scalar parameters. */
  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** Sets training mode (dropout on) for this module and its children. */
  train(on = true): this {
    this.training = on;
    for (const child of this.children.values()) child.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Copies values from `state` into the parameters. Strict by default: a missing name, an
   * unexpected name or a shape mismatch is an error that lists them (silent partial loads are a
   * known source of wrong results in peer projects).
   */
  loadStateDict(
    state: ReadonlyMap<string, Tensor>,
    opts: { strict?: boolean } = {},
  ): { missing: string[]; unexpected: string[] } {
    const strict = opts.strict ?? true;
    const params = new Map(this.namedParameters());
    const missing = [...params.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !params.has(k));
    const mismatched = [...params].filter(([k, p]) => state.has(k) && state.get(k)!.shape.join() !== p.shape.join());
    if (mismatched.length) {
      throw new Error(
        `loadStateDict: shape mismatch for ${mismatched
          .map(([k, p]) => `${k} (model [${p.shape.join(', ')}], given [${state.get(k)!.shape.join(', ')}])`)
          .join('; ')}`,
      );
    }
    if (strict && (missing.length || unexpected.length)) {
      throw new Error(
        `loadStateDict: ${
          missing.length ? `missing ${missing.join(', ')}` : ''
        }${missing.length && unexpected.length ? '; ' : ''}${
          unexpected.length ? `unexpected ${unexpected.join(', ')}` : ''
        }`,
      );
    }
    for (const [k, p] of params) if (state.has(k)) T.assign(p, state.get(k)!);
    return { missing, unexpected };
  }

  dispose(): void {
    for (const p of this.ownParams.values()) p.dispose();
    for (const child of this.children.values()) child.dispose();
  }
}

/** Normal(0, std) initial values, from the global seeded stream. */
export function normalInit(shape: readonly number[], std: number): Tensor {
  return T.tidy(() => T.mul(T.randn(shape), std));
}

/** Uniform(-bound, bound) initial values. */
export function uniformInit(shape: readonly number[], bound: number): Tensor {
  return T.tidy(() => T.sub(T.mul(T.rand(shape), 2 * bound), bound));
}
