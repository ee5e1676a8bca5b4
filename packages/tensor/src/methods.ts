/** Method-style access to the ops: `x.add(y).sum(-1)` is `sum(add(x, y), -1)`. */
import type { DType } from '@rnagrad/kernels-wgsl';
import * as ops from './ops.js';
import { Tensor } from './tensor.js';

type Axes = number | readonly number[];

declare module './tensor.js' {
  interface Tensor {
    add(b: ops.TensorLike): Tensor;
    sub(b: ops.TensorLike): Tensor;
    mul(b: ops.TensorLike): Tensor;
    div(b: ops.TensorLike): Tensor;
    pow(b: ops.TensorLike): Tensor;
    maximum(b: ops.TensorLike): Tensor;
    minimum(b: ops.TensorLike): Tensor;
    eq(b: ops.TensorLike): Tensor;
    ne(b: ops.TensorLike): Tensor;
    lt(b: ops.TensorLike): Tensor;
    le(b: ops.TensorLike): Tensor;
    gt(b: ops.TensorLike): Tensor;
    ge(b: ops.TensorLike): Tensor;
    neg(): Tensor;
    abs(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    square(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    relu(): Tensor;
    sum(axes?: Axes, keepdim?: boolean): Tensor;
    mean(axes?: Axes, keepdim?: boolean): Tensor;
    max(axes?: Axes, keepdim?: boolean): Tensor;
    min(axes?: Axes, keepdim?: boolean): Tensor;
    argmax(axis?: number, keepdim?: boolean): Tensor;
    reshape(shape: readonly number[]): Tensor;
    permute(dims: readonly number[]): Tensor;
    transpose(dim0?: number, dim1?: number): Tensor;
    slice(dim: number, start?: number, end?: number, step?: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    expand(shape: readonly number[]): Tensor;
    squeeze(dim?: number): Tensor;
    unsqueeze(dim: number): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    contiguous(): Tensor;
    clone(): Tensor;
    cast(dtype: DType): Tensor;
    to(device: Device): Promise<Tensor>;
    data(): Promise<Float32Array | Int32Array | Uint8Array>;
    dataF64(): Promise<Float64Array>;
    item(): Promise<number>;
  }
}

const proto = Tensor.prototype;
proto.add = function (b) {
  return ops.add(this, b);
};
proto.sub = function (b) {
  return ops.sub(this, b);
};
proto.mul = function (b) {
  return ops.mul(this, b);
};
proto.div = function (b) {
  return ops.div(this, b);
};
proto.pow = function (b) {
  return ops.pow(this, b);
};
proto.maximum = function (b) {
  return ops.maximum(this, b);
};
proto.minimum = function (b) {
  return ops.minimum(this, b);
};
proto.eq = function (b) {
  return ops.eq(this, b);
};
proto.ne = function (b) {
  return ops.ne(this, b);
};
proto.lt = function (b) {
  return ops.lt(this, b);
};
proto.le = function (b) {
  return ops.le(this, b);
};
proto.gt = function (b) {
  return ops.gt(this, b);
};
proto.ge = function (b) {
  return ops.ge(this, b);
};
proto.neg = function () {
  return ops.neg(this);
};
proto.abs = function () {
  return ops.abs(this);
};
proto.exp = function () {
  return ops.exp(this);
};
proto.log = function () {
  return ops.log(this);
};
proto.sqrt = function () {
  return ops.sqrt(this);
};
proto.square = function () {
  return ops.square(this);
};
proto.tanh = function () {
  return ops.tanh(this);
};
proto.sigmoid = function () {
  return ops.sigmoid(this);
};
proto.relu = function () {
  return ops.relu(this);
};
proto.sum = function (axes, keepdim) {
  return ops.sum(this, axes, keepdim);
};
proto.mean = function (axes, keepdim) {
  return ops.mean(this, axes, keepdim);
};
proto.max = function (axes, keepdim) {
  return ops.max(this, axes, keepdim);
};
proto.min = function (axes, keepdim) {
  return ops.min(this, axes, keepdim);
};
proto.argmax = function (axis, keepdim) {
  return ops.argmax(this, axis, keepdim);
};
proto.reshape = function (shape) {
  return ops.reshape(this, shape);
};
proto.permute = function (dims) {
  return ops.permute(this, dims);
};
proto.transpose = function (d0, d1) {
  return ops.transpose(this, d0, d1);
};
proto.slice = function (dim, start, end, step) {
  return ops.slice(this, dim, start, end, step);
};
proto.narrow = function (dim, start, length) {
  return ops.narrow(this, dim, start, length);
};
proto.expand = function (shape) {
  return ops.expand(this, shape);
};
proto.squeeze = function (dim) {
  return ops.squeeze(this, dim);
};
proto.unsqueeze = function (dim) {
  return ops.unsqueeze(this, dim);
};
proto.flatten = function (s, e) {
  return ops.flattenDims(this, s, e);
};
proto.contiguous = function () {
  return ops.contiguous(this);
};
proto.clone = function () {
  return ops.clone(this);
};
proto.cast = function (dtype) {
  return ops.cast(this, dtype);
};
proto.to = function (device) {
  return ops.to(this, device);
};
proto.data = function () {
  return ops.data(this);
};
proto.dataF64 = function () {
  return ops.dataF64(this);
};
proto.item = function () {
  return ops.item(this);
};
