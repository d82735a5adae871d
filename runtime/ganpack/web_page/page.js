/* page.js: the page around ganpack.js. A grid of 64 digits for a seed (grid.save_grid's layout:
   ceil(sqrt(n)) columns, 2 pixels of padding, every pixel 2x2), a digit picker for a conditional
   model, and a walk between two seeds' latents. window.ganpack is a small API for tests. */

(function () {
  "use strict";

  const { Generator, IMAGE_SIDE, IMAGE_DIM } = window.GanpackEngine;
  const model = window.GANPACK_MODEL;
  const generator = new Generator(model);
  const GRID_COUNT = 64, PADDING = 2, SCALE = 2; // grid.save_grid's defaults
  const STRIP_STEPS = 10, SLIDER_STEPS = 101; // `ganpack interpolate`'s default steps; t in hundredths
  const $ = (id) => document.getElementById(id);
  let lastDrawMs = null;

  // n digits (n, 784) uint8 -> the canvas, `columns` wide, as save_grid tiles them
  function drawGrid(canvas, pixels, count, columns, scale) {
    const step = IMAGE_SIDE + PADDING, rows = Math.ceil(count / columns);
    canvas.width = (columns * step + PADDING) * scale;
    canvas.height = (rows * step + PADDING) * scale;
    canvas.style.width = `${canvas.width}px`; // one canvas pixel per CSS pixel: no resampling
    const image = new ImageData(canvas.width, canvas.height);
    const rgba = new Uint32Array(image.data.buffer); // 0xAABBGGRR on little-endian machines (all of today's)
    rgba.fill(0xff000000); // opaque black: the padding
    for (let index = 0; index < count; index++) {
      const top = PADDING + Math.floor(index / columns) * step, left = PADDING + (index % columns) * step;
      for (let y = 0; y < IMAGE_SIDE; y++) {
        for (let x = 0; x < IMAGE_SIDE; x++) {
          const color = 0xff000000 | (pixels[index * IMAGE_DIM + y * IMAGE_SIDE + x] * 0x010101);
          for (let dy = 0; dy < scale; dy++) {
            const at = ((top + y) * scale + dy) * canvas.width + (left + x) * scale;
            for (let dx = 0; dx < scale; dx++) rgba[at + dx] = color;
          }
        }
      }
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
  }

  function label() { // the picked class index, or undefined for an unconditional model
    return generator.classes ? Number($("label").value) : undefined;
  }

  function linspaceAt(k, count) { // np.linspace(0, 1, count, dtype=float32)[k]
    return k === count - 1 ? 1 : Math.fround(k * (1 / (count - 1)));
  }

  // the field's text if it is a seed, else null and its message (naming the field) added to `messages`
  function checkedSeed(input, name, messages) {
    try {
      window.GanpackEngine.parseSeed(input.value, name);
      input.removeAttribute("aria-invalid");
      return input.value.trim();
    } catch (problem) {
      input.setAttribute("aria-invalid", "true");
      messages.push(problem.message);
      return null;
    }
  }

  // while a field holds no seed, what was drawn for the last valid one is greyed out (class "stale"):
  // it must not pass for the digits of what the field shows
  function markStale(ids, stale) {
    for (const id of ids) $(id).classList.toggle("stale", stale);
  }

  // ---------------------------------------------------------------------------------------------

  function drawSample() { // -> milliseconds taken: the latents, the generator and the canvas; null if no seed
    const messages = [];
    const seed = checkedSeed($("seed"), "seed", messages);
    $("error").textContent = messages.join("\n");
    markStale(["grid"], seed === null);
    if (seed === null) {
      $("timing").textContent = ""; // the last draw's time is not this field's
      return null;
    }
    const start = performance.now();
    const pixels = generator.sample(seed, GRID_COUNT, label());
    drawGrid($("grid"), pixels, GRID_COUNT, Math.ceil(Math.sqrt(GRID_COUNT)), SCALE);
    lastDrawMs = performance.now() - start;
    $("timing").textContent = `${GRID_COUNT} digits in ${lastDrawMs.toFixed(1)} ms`;
    return lastDrawMs;
  }

  function drawWalk() {
    const messages = []; // one per invalid field, each naming it
    const seedA = checkedSeed($("seed-a"), "seed A", messages), seedB = checkedSeed($("seed-b"), "seed B", messages);
    $("walk-error").textContent = messages.join("\n");
    const t = linspaceAt(Number($("t").value), SLIDER_STEPS);
    $("t-value").textContent = t.toFixed(2);
    markStale(["walk-digit", "walk-strip"], messages.length > 0);
    if (seedA === null || seedB === null) return;
    drawGrid($("walk-digit"), generator.generate(generator.between(seedA, seedB, t), 1, label()), 1, 1, 4);
    const strip = new Uint8Array(STRIP_STEPS * IMAGE_DIM);
    for (let k = 0; k < STRIP_STEPS; k++) {
      strip.set(generator.generate(generator.between(seedA, seedB, linspaceAt(k, STRIP_STEPS)), 1, label()),
        k * IMAGE_DIM);
    }
    drawGrid($("walk-strip"), strip, STRIP_STEPS, STRIP_STEPS, SCALE);
  }

  function newSeed() { // 64 random bits
    const words = crypto.getRandomValues(new Uint32Array(2));
    $("seed").value = ((BigInt(words[1]) << 32n) | BigInt(words[0])).toString();
    drawSample();
  }

  // ---------------------------------------------------------------------------------------------

  const layers = [model.layers[0].inputs, ...model.layers.map((layer) => layer.outputs)];
  document.title = `ganpack: ${model.name}`;
  $("title").textContent = `ganpack: ${model.name}`;
  $("about").textContent = `latent ${model.latent.dim} ${model.latent.distribution} (${model.latent.generator}), ` +
    `generator ${layers.join(" \u2192 ")}` + (generator.classes ? `, ${generator.classes.length} classes` : "");
  if (generator.classes) {
    generator.classes.forEach((name, index) => $("label").add(new Option(name, String(index))));
    $("label-picker").hidden = false;
  }
  $("seed").addEventListener("input", drawSample);
  $("new-seed").addEventListener("click", newSeed);
  $("label").addEventListener("change", () => { drawSample(); drawWalk(); });
  for (const id of ["seed-a", "seed-b", "t"]) $(id).addEventListener("input", drawWalk);
  drawSample();
  drawWalk();

  window.ganpack = {
    model: { name: model.name, latentDim: model.latent.dim, classes: generator.classes },
    // seed: decimal text (or a BigInt) 0 .. 2^64 - 1; n: a whole number >= 0; classIndex: 0 .. classes - 1
    // for a conditional model, none for an unconditional one. Anything else: an Error naming it
    latents: (seed, n) => generator.latents(seed, n), // Float32Array (n, dim)
    sample: (seed, n, classIndex) => generator.sample(seed, n, classIndex), // Uint8Array (n, 784)
    generate: (z, n, classIndex) => generator.generate(z, n, classIndex),
    between: (seedA, seedB, t) => generator.between(seedA, seedB, t), // Float32Array (dim,)
    draw: drawSample, // redraw the grid; -> milliseconds
    get lastDrawMs() { return lastDrawMs; },
  };
})();
