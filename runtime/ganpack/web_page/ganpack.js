/* ganpack.js: a ganpack model in the browser. The latent stream "ganpack-philox/1", bit for bit
   as ganpack.latents draws it, and the generator, a stack of dense layers. No DOM here: page.js
   draws; model.js (written by `ganpack web`) holds the weights.

   Float32 arithmetic: every float32 operation of the Python reference is one double operation
   rounded by Math.fround. For +, -, *, / and sqrt of float32 operands that is exactly the
   float32 result (a double holds the exact product of two float32 values, and double rounding is
   harmless for these operations), so the latents are the same bits as numpy's. The generator sums
   in double and stores each layer's output as float32: its pixels within one level of the C kernel's. */

(function (root) {
  "use strict";

  const f32 = Math.fround;
  const IMAGE_SIDE = 28;
  const IMAGE_DIM = IMAGE_SIDE * IMAGE_SIDE;
  const MAX_SEED = (1n << 64n) - 1n;
  const GENERATOR = "ganpack-philox/1";
  const WEB_FORMAT = "ganpack-web/1"; // model.js's layout (ganpack/web.py)
  const GROUP = 4; // digits the generator computes together (forwardLayer)

  function hexFloat(text) { // "0x1.c71c72p-4" -> its exact value: the literals of latents.py and csrc/
    const [, sign, lead, fraction, exponent] = /^(-?)0x([01])\.([0-9a-f]*)p([+-]\d+)$/.exec(text);
    const value = parseInt(lead + fraction, 16) * 2 ** (Number(exponent) - 4 * fraction.length);
    return sign ? -value : value;
  }

  // ---------------------------------------------------------------------------------------------
  // Philox4x32-10: counter (block, row lo, row hi, 0), key (seed lo, seed hi)

  const M0 = 0xD2511F53, M1 = 0xCD9E8D57; // multipliers
  const W0 = 0x9E3779B9, W1 = 0xBB67AE85; // Weyl key increments

  function mulHi(a, b) { // the high 32 bits of the 64-bit product of two uint32, from 16-bit halves
    const aHi = a >>> 16, aLo = a & 0xffff, bHi = b >>> 16, bLo = b & 0xffff;
    const cross1 = aHi * bLo, cross2 = aLo * bHi; // each < 2^32: exact in a double
    const carry = ((aLo * bLo) >>> 16) + (cross1 & 0xffff) + (cross2 & 0xffff);
    return (aHi * bHi + (cross1 >>> 16) + (cross2 >>> 16) + (carry >>> 16)) >>> 0;
  }

  function philox(x0, x1, x2, x3, k0, k1, out) { // out: Uint32Array(4)
    for (let round = 0; round < 10; round++) {
      if (round) {
        k0 = (k0 + W0) >>> 0;
        k1 = (k1 + W1) >>> 0;
      }
      const hi0 = mulHi(x0, M0), lo0 = Math.imul(x0, M0) >>> 0; // Math.imul: the low half
      const hi1 = mulHi(x2, M1), lo1 = Math.imul(x2, M1) >>> 0;
      x0 = (hi1 ^ x1 ^ k0) >>> 0;
      x1 = lo1;
      x2 = (hi0 ^ x3 ^ k1) >>> 0;
      x3 = lo0;
    }
    out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
  }

  // ---------------------------------------------------------------------------------------------
  // ganpack's float32 log, sin and cos (latents.py: the same polynomials, op for op)

  const TWO_M24 = 2 ** -24;
  const SQRT2 = hexFloat("0x1.6a09e6p+0");
  const LN2 = hexFloat("0x1.62e430p-1");
  const ATANH = ["0x1.c71c72p-4", "0x1.24924ap-3", "0x1.99999ap-3", "0x1.555556p-2"].map(hexFloat); // 1/9 .. 1/3
  const SIN = ["0x1.507834p-13", "-0x1.32d2ccp-8", "0x1.466bc6p-4", "-0x1.4abbcep-1", "0x1.921fb6p+0"].map(hexFloat);
  const COS = ["-0x1.a6d1f2p-16", "0x1.e1f506p-11", "-0x1.55d3c8p-6", "0x1.03c1f0p-2", "-0x1.3bd3ccp+0"].map(hexFloat);
  const bits = new ArrayBuffer(4), bitsFloat = new Float32Array(bits), bitsWord = new Uint32Array(bits);

  function log32(u) { // u float32 in (0, 1]: u = m 2^e, log m = 2 atanh(s), s = (m - 1) / (m + 1)
    bitsFloat[0] = u;
    let exponent = (bitsWord[0] >>> 23) - 127;
    bitsWord[0] = (bitsWord[0] & 0x7fffff) | 0x3f800000;
    let m = bitsFloat[0];
    if (m > SQRT2) {
      m = m * 0.5; // exact
      exponent += 1;
    }
    const f = f32(m - 1);
    const s = f32(f / f32(f + 2));
    const s2 = f32(s * s);
    let p = ATANH[0];
    for (let k = 1; k < ATANH.length; k++) p = f32(f32(p * s2) + ATANH[k]);
    p = f32(f32(p * s2) + 1);
    return f32(f32(exponent * LN2) + f32(f32(s + s) * p));
  }

  function roundHalfEven(x) { // np.rint
    const r = Math.round(x); // halves go up
    return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  function cosSinTurn(v, out, at) { // cos and sin of 2 pi v, v float32 in [0, 1): a quarter turn at a time
    const t = v * 4; // exact
    const q = roundHalfEven(t);
    const f = t - q; // exact, in [-1/2, 1/2]
    const f2 = f32(f * f);
    let sinP = SIN[0];
    for (let k = 1; k < SIN.length; k++) sinP = f32(f32(sinP * f2) + SIN[k]);
    const sinA = f32(f * sinP);
    let cosP = COS[0];
    for (let k = 1; k < COS.length; k++) cosP = f32(f32(cosP * f2) + COS[k]);
    const cosA = f32(f32(cosP * f2) + 1);
    const odd = (q & 1) === 1;
    let cos = odd ? sinA : cosA, sin = odd ? cosA : sinA;
    if ((q + 1) & 2) cos = -cos; // quarters 1 and 2
    if (q & 2) sin = -sin; // quarters 2 and 3
    out[at] = cos;
    out[at + 1] = sin;
  }

  // ---------------------------------------------------------------------------------------------
  // the stream: value j of a row is word j // blocks of block j % blocks

  const MAX_SEED_TEXT = 100; // characters: leading zeros are fine (Python's int() takes them), a novel is not

  // a seed as `ganpack sample --seed` takes it: decimal digits (leading zeros too, spaces around
  // them ignored) worth 0 .. 2^64 - 1, or a BigInt -> {lo, hi}; else an Error naming `name`
  function parseSeed(text, name = "seed") {
    const clean = String(text).trim();
    if (clean.length > MAX_SEED_TEXT) {
      throw new Error(`${name} must be a whole number from 0 to ${MAX_SEED}, at most ${MAX_SEED_TEXT} ` +
        `characters; got ${clean.length} characters`);
    }
    if (!/^[0-9]+$/.test(clean) || BigInt(clean) > MAX_SEED) {
      const shown = clean.length > 30 ? `${clean.slice(0, 30)}...` : clean;
      throw new Error(`${name} must be a whole number from 0 to ${MAX_SEED}, got '${shown}'`);
    }
    const seed = BigInt(clean);
    return { lo: Number(seed & 0xffffffffn), hi: Number(seed >> 32n) };
  }

  function checkCount(n) { // how many rows: a whole number >= 0, before any array is made
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`n must be a whole number from 0 up, got ${typeof n === "string" ? `'${n}'` : String(n)}`);
  }

  function latents(stream, seedText, rows, name = "seed") { // -> Float32Array (rows, dim), rows 0 .. rows - 1
    const seed = parseSeed(seedText, name);
    checkCount(rows);
    const dim = stream.dim, blocks = Math.ceil(dim / 4), normal = stream.distribution === "normal";
    const scale = f32(stream.scale), offset = f32(stream.offset);
    const out = new Float32Array(rows * dim);
    const words = new Uint32Array(4), values = new Float32Array(4); // one block's 4 words, then values
    for (let row = 0; row < rows; row++) {
      const rowHi = Math.floor(row / 2 ** 32) >>> 0;
      for (let block = 0; block < blocks; block++) {
        philox(block, row >>> 0, rowHi, 0, seed.lo, seed.hi, words);
        if (normal) { // Box-Muller pairs (w0, w1) and (w2, w3): r cos, r sin
          for (let pair = 0; pair < 2; pair++) {
            const u = ((words[2 * pair] >>> 8) + 1) * TWO_M24; // (0, 1], exact
            const radius = f32(Math.sqrt(f32(log32(u) * -2)));
            cosSinTurn((words[2 * pair + 1] >>> 8) * TWO_M24, values, 2 * pair);
            values[2 * pair] = radius * values[2 * pair]; // stored as float32: rounded
            values[2 * pair + 1] = radius * values[2 * pair + 1];
          }
        } else {
          for (let k = 0; k < 4; k++) values[k] = (words[k] >>> 8) * TWO_M24;
        }
        for (let k = 0; k < 4; k++) {
          const j = k * blocks + block;
          if (j < dim) out[row * dim + j] = f32(values[k] * scale) + offset;
        }
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // the generator: y = act(x W^T + b), layer after layer; a conditional layer 0 reads a class-bias row

  function decodeWeights(base64) { // little-endian float32, as web.py writes them
    const text = atob(base64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }

  const ACTIVATIONS = {
    identity: (x) => x,
    leaky_relu: (x, alpha) => (x >= 0 ? x : alpha * x),
    relu: (x) => (x > 0 ? x : 0),
    tanh: (x) => Math.tanh(x),
    sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  };

  function Generator(model) {
    if (model.format !== WEB_FORMAT) throw new Error(`model.js is ${model.format}, this ganpack.js reads ${WEB_FORMAT}`);
    if (model.latent.generator !== GENERATOR) throw new Error(`latent stream ${model.latent.generator} is not drawn here`);
    const weights = decodeWeights(model.weights);
    let offset = 0;
    const take = (count) => weights.subarray(offset, (offset += count));
    this.stream = model.latent;
    this.classes = model.classes; // null, or the class names
    this.layers = model.layers.map((layer, index) => {
      if (!(layer.activation in ACTIVATIONS)) throw new Error(`activation ${layer.activation} is not drawn here`);
      const rows = index === 0 && this.classes ? this.classes.length : 1;
      return {
        inputs: layer.inputs, outputs: layer.outputs, activation: ACTIVATIONS[layer.activation],
        alpha: f32(layer.alpha),
        weight: take(layer.outputs * layer.inputs), // (outputs, inputs), without the one-hot columns
        bias: take(rows * layer.outputs), // (1, outputs), or layer 0's class-bias table W_y^T + b (classes, outputs)
      };
    });
    if (offset !== weights.length) throw new Error(`model.js holds ${weights.length} weights, its layers ${offset}`);
    if (this.layers[this.layers.length - 1].outputs !== IMAGE_DIM) throw new Error("the generator does not draw 28x28");
    const widest = Math.max(...this.layers.map((layer) => layer.outputs));
    this.buffers = [new Float32Array(GROUP * widest), new Float32Array(GROUP * widest)];
  }

  Generator.prototype.latents = function (seedText, n, name = "seed") {
    return latents(this.stream, seedText, n, name);
  };

  // z (n, dim) float32 -> pixels (n, 784) uint8: clip(rint((y + 1) * 127.5), 0, 255) in float32
  // a class index for a conditional model, none (undefined or null) for an unconditional one
  Generator.prototype.checkLabel = function (label) {
    const classes = this.classes ? this.classes.length : 0, none = label === undefined || label === null;
    if (!classes && !none) throw new Error(`label: this model is unconditional (it has no classes), got ${String(label)}`);
    if (classes && !(Number.isInteger(label) && label >= 0 && label < classes)) {
      throw new Error(`label must be a class index from 0 to ${classes - 1} (this model is class-conditional), ` +
        `got ${String(label)}`);
    }
  };

  Generator.prototype.generate = function (z, n, label) {
    checkCount(n);
    this.checkLabel(label);
    const classes = this.classes ? this.classes.length : 0;
    const dim = this.stream.dim;
    if (z.length !== n * dim) throw new Error(`z must hold n x ${dim} = ${n * dim} values, got ${z.length}`);
    const pixels = new Uint8Array(n * IMAGE_DIM), input = new Float32Array(GROUP * dim);
    for (let first = 0; first < n; first += GROUP) {
      const count = Math.min(GROUP, n - first);
      input.fill(0); // a short last group: rows of zeros, computed and dropped
      input.set(z.subarray(first * dim, (first + count) * dim));
      let x = input;
      this.layers.forEach((layer, index) => {
        const y = this.buffers[index % 2]; // (GROUP, outputs)
        forwardLayer(layer, x, y, index === 0 && classes ? label * layer.outputs : 0);
        x = y;
      });
      for (let i = 0; i < count * IMAGE_DIM; i++) {
        const level = roundHalfEven(f32(f32(x[i] + 1) * 127.5));
        pixels[first * IMAGE_DIM + i] = level < 0 ? 0 : level > 255 ? 255 : level;
      }
    }
    return pixels;
  };

  // THE HOT LOOP: y = act(x W^T + b) for GROUP rows at once, so that each weight is read once for
  // all of them. x (GROUP, inputs), W (outputs, inputs), y (GROUP, outputs)
  function forwardLayer(layer, x, y, biasRow) {
    const { inputs, outputs, weight, bias, activation, alpha } = layer;
    const x1 = inputs, x2 = 2 * inputs, x3 = 3 * inputs; // GROUP = 4 rows
    for (let o = 0; o < outputs; o++) {
      const w = o * inputs, b = bias[biasRow + o];
      let s0 = b, s1 = b, s2 = b, s3 = b;
      for (let i = 0; i < inputs; i++) {
        const wi = weight[w + i];
        s0 += wi * x[i];
        s1 += wi * x[x1 + i];
        s2 += wi * x[x2 + i];
        s3 += wi * x[x3 + i];
      }
      // logits rounded to float32 as the reference's are; stored as float32
      y[o] = activation(f32(s0), alpha);
      y[outputs + o] = activation(f32(s1), alpha);
      y[2 * outputs + o] = activation(f32(s2), alpha);
      y[3 * outputs + o] = activation(f32(s3), alpha);
    }
  }

  Generator.prototype.sample = function (seedText, n, label) {
    checkCount(n);
    this.checkLabel(label); // before the latents are drawn
    return this.generate(this.latents(seedText, n), n, label);
  };

  // the latents of `ganpack interpolate`: z(t) = (1 - t) z_A + t z_B in float32, z_A row 0 of seed A's stream
  Generator.prototype.between = function (seedA, seedB, t) {
    const a = this.latents(seedA, 1, "seed A"), b = this.latents(seedB, 1, "seed B"), z = new Float32Array(a.length);
    const weight = f32(t), rest = f32(1 - weight);
    for (let j = 0; j < z.length; j++) z[j] = f32(rest * a[j]) + f32(weight * b[j]);
    return z;
  };

  root.GanpackEngine = { Generator, latents, parseSeed, checkCount, roundHalfEven, IMAGE_SIDE, IMAGE_DIM, MAX_SEED };
})(window);
