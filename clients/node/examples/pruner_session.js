#!/usr/bin/env node
'use strict';
// Streams synthetic collection steps to a gcprune pruner and prints the masks it sends back. The loss
// change of every step is explained by a few planted weights (ΔL = −Σ_k (Δθ_k/η)² over them, plus noise),
// so causal-v2 should keep them while it prunes to the target.
//
//   node clients/node/examples/pruner_session.js --address=127.0.0.1:50052 [--target=0.8] [--iterations=3]
//        [--steps=24] [--encoding=bfloat16] [--token=...]

const { parseArgs } = require('util');
const { PrunerClient } = require('../lib/gcprune');

const LAYOUT = {
  tensors: [
    { name: 'fc1.weight', shape: [64, 128], prunable: true },
    { name: 'fc1.bias', shape: [64], prunable: false },
    { name: 'fc2.weight', shape: [10, 64], prunable: true },
  ],
};
const LEARNING_RATE = 1e-3;

// A small deterministic generator (mulberry32) so that runs are reproducible.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(next) {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

async function main() {
  const { values } = parseArgs({
    options: {
      address: { type: 'string', default: '127.0.0.1:50052' },
      target: { type: 'string', default: '0.8' },
      iterations: { type: 'string', default: '3' },
      steps: { type: 'string', default: '24' },
      encoding: { type: 'string', default: 'bfloat16' },
      token: { type: 'string', default: process.env.GCPRUNE_AUTH_TOKEN || '' },
    },
  });
  const iterations = Number(values.iterations);
  const stepsPerIteration = Number(values.steps);
  const next = random(7);
  const sizes = [64 * 128, 10 * 64];
  const planted = [[0, 5], [0, 777], [0, 4000], [0, 8100], [2, 3], [2, 300], [2, 511], [2, 639]];

  const client = new PrunerClient(values.address, { token: values.token || undefined });
  const session = await client.createSession(LAYOUT, {
    method: 'METHOD_CAUSAL_V2',
    schedule: { target_sparsity: Number(values.target), iterations },
    seed: '1',
  }, 'pruner_session.js');
  console.log(`session ${session.sessionId}: ${session.opened.total_iterations} iterations, `
    + `${session.chunkElements} elements per chunk`);
  session.on('warning', (w) => console.log(`warning from the pruner: ${w.message}`));

  let step = 0;
  let keep = sizes.map((n) => new Uint8Array(n).fill(1));
  for (let iteration = 1; iteration <= iterations; iteration++) {
    for (let t = 0; t < stepsPerIteration; t++, step++) {
      const deltas = sizes.map((n, i) => ({
        tensorIndex: i === 0 ? 0 : 2,
        values: Float32Array.from({ length: n }, (_, k) => (keep[i][k] ? gaussian(next) * 1e-4 : 0)),
      }));
      let change = 0.001 * gaussian(next);
      for (const [tensor, k] of planted) {
        const d = deltas[tensor === 0 ? 0 : 1].values[k] * 30; // planted weights move more
        deltas[tensor === 0 ? 0 : 1].values[k] = d;
        change -= (d / LEARNING_RATE) ** 2 * 1e-3;
      }
      await session.sendStep({
        step, iteration, lossBefore: 2.0, lossAfter: 2.0 + change, learningRate: LEARNING_RATE, deltas,
      }, values.encoding);
    }
    await session.endIteration(iteration, step - 1);
    const masks = await session.waitMasks(iteration, 120000);
    keep = [masks.keep.get(0), masks.keep.get(2)];
    const kept = planted.filter(([tensor, k]) => keep[tensor === 0 ? 0 : 1][k]).length;
    const s = masks.summary;
    console.log(`iteration ${iteration}/${iterations}: sparsity ${s.global_sparsity.toFixed(4)} (target `
      + `${s.target_sparsity.toFixed(4)}), pruned ${s.pruned} of ${Number(s.pruned) + Number(s.kept)}, `
      + `apply at step ${masks.applyAtStep}, planted weights kept ${kept}/${planted.length}`);
  }
  await session.close(true);
  const report = await client.getReport(session.sessionId);
  for (const it of report.iterations) {
    console.log(`  fit of iteration ${it.iteration}: ${it.num_samples} samples, ${it.fit.epochs} epochs, `
      + `${Number(it.fit.fit_seconds).toFixed(3)} s`);
  }
  client.close();
}

main().catch((error) => {
  console.error(`pruner_session.js: ${error.message}`);
  process.exitCode = 1;
});
