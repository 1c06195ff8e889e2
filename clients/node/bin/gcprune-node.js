#!/usr/bin/env node
'use strict';
// gcprune-node: a small command-line client of the gcprune services written with the Node client
// (lib/gcprune.js): health checks, creating and watching a training run, printing its report.

const fs = require('fs');
const { parseArgs } = require('util');
const gcprune = require('../lib/gcprune');

const USAGE = `usage: gcprune-node <command> ADDRESS [options]

commands:
  health ADDRESS [--service NAME]      exit 0 if SERVING, 1 if not serving or unknown service
  run ADDRESS [run options]            create a run on a gcprune-trainer, print its events and report
  watch ADDRESS RUN_ID                 print a run's events until it finishes, then its report
  report ADDRESS RUN_ID                print a run's report

run options (a RunSpec is built from them unless --spec FILE gives one as JSON with proto field names):
  --preset NAME (mlp)  --data NAME (fashion-mnist)  --train-subset N  --test-subset N
  --pretrain-epochs N (1)  --train-epochs N (1)  --finetune-epochs N (1)  --batch-size N (64)
  --lr X (0.01)  --momentum X (0.9)  --method NAME (causal-v2)  --target P (0.9)  --iterations N (5)
  --seed N  --pruner HOST:PORT  --label TEXT  --request-id ID

common options:
  --token TOKEN (or $GCPRUNE_AUTH_TOKEN)  --tls  --ca FILE  --timeout SECONDS (30)  --json

exit status: 0 success, 1 not serving / run FAILED or CANCELLED, 2 usage, 3 unreachable, 4 other error`;

const METHODS = {
  'causal-v2': 'METHOD_CAUSAL_V2', 'causal-v1': 'METHOD_CAUSAL_V1', 'magnitude-global': 'METHOD_MAGNITUDE_GLOBAL',
  'magnitude-layer': 'METHOD_MAGNITUDE_LAYER', random: 'METHOD_RANDOM', none: 'METHOD_NONE',
};

class UsageError extends Error {}

function number(options, name, fallback, { integer = false, min = -Infinity } = {}) {
  if (options[name] === undefined) return fallback;
  const value = Number(options[name]);
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got '${options[name]}'`);
  }
  return value;
}

function phase(options, epochsFlag) {
  return {
    epochs: number(options, epochsFlag, 1, { integer: true, min: 0 }),
    batch_size: number(options, 'batch-size', 64, { integer: true, min: 1 }),
    optimizer: {
      kind: 'OPTIMIZER_KIND_SGD',
      learning_rate: number(options, 'lr', 0.01, { min: 0 }),
      momentum: number(options, 'momentum', 0.9, { min: 0 }),
    },
  };
}

/** The RunSpec of the run options (or of --spec FILE). */
function runSpec(options) {
  if (options.spec) {
    try {
      return JSON.parse(fs.readFileSync(options.spec, 'utf8'));
    } catch (error) {
      throw new UsageError(`--spec: ${options.spec}: ${error.message}`);
    }
  }
  const method = METHODS[options.method || 'causal-v2'];
  if (!method) throw new UsageError(`--method: unknown value '${options.method}' (${Object.keys(METHODS).join(', ')})`);
  return {
    model: { preset: options.preset || 'mlp' },
    data: {
      name: options.data || 'fashion-mnist',
      train_subset: number(options, 'train-subset', 0, { integer: true, min: 0 }),
      test_subset: number(options, 'test-subset', 0, { integer: true, min: 0 }),
    },
    pretrain: phase(options, 'pretrain-epochs'),
    train: phase(options, 'train-epochs'),
    finetune: phase(options, 'finetune-epochs'),
    seed: String(number(options, 'seed', 0, { integer: true, min: 0 })),
    method: {
      method,
      schedule: {
        target_sparsity: number(options, 'target', 0.9, { min: 0 }),
        iterations: number(options, 'iterations', 5, { integer: true, min: 1 }),
      },
    },
    pruner: { address: options.pruner || '' },
    label: options.label || 'gcprune-node',
  };
}

function fixed(x, digits = 4) {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

function describeEvent(event) {
  const e = event[event.event];
  switch (event.event) {
    case 'phase_changed':
      return `phase ${e.phase.replace('PHASE_', '').toLowerCase()} (iteration ${e.iteration}, ${e.epochs} epochs)`;
    case 'epoch_finished':
      return `epoch ${e.epoch}/${e.epochs} ${e.phase.replace('PHASE_', '').toLowerCase()}: train loss ${fixed(e.train_loss)}, `
        + `test accuracy ${fixed(e.test_accuracy)} (${fixed(e.seconds, 1)} s)`;
    case 'masks_applied':
      return `masks of iteration ${e.iteration}: target ${fixed(e.target_sparsity)}, achieved ${fixed(e.achieved_sparsity)}, `
        + `test accuracy ${fixed(e.test_accuracy)}${e.skipped ? ' (skipped: previous masks kept)' : ''}`;
    case 'pruner':
      return `pruner ${e.address}: ${e.state.replace('PRUNER_STATE_', '').toLowerCase()}${e.message ? ` (${e.message})` : ''}`;
    case 'finished':
      return `finished: ${e.state.replace('RUN_STATE_', '')}${e.message ? ` (${e.message})` : ''}, sparsity ${fixed(e.sparsity)}, `
        + `final accuracy ${fixed(e.final_test_accuracy)}, best ${fixed(e.best_test_accuracy)}`;
    default:
      return null; // step_progress: too chatty for a log
  }
}

function printReport(report) {
  console.log(`report of ${report.run_id}: ${report.state.replace('RUN_STATE_', '')}, ${report.prunable_weights} prunable weights, `
    + `pre-train accuracy ${fixed(report.pretrain_test_accuracy)}, ${fixed(report.total_seconds, 1)} s`);
  console.log('  iteration  target   achieved  accuracy  steps  collect_s  wait_s');
  for (const it of report.iterations) {
    console.log(`  ${String(it.iteration).padStart(9)}  ${fixed(it.target_sparsity)}  ${fixed(it.achieved_sparsity)}    `
      + `${fixed(it.test_accuracy_after_prune)}  ${String(it.num_steps).padStart(5)}  ${fixed(it.collect_seconds, 2).padStart(9)}  `
      + `${fixed(it.prune_wait_seconds, 2).padStart(6)}${it.skipped ? '  skipped' : ''}`);
  }
  if (report.finetune && report.finetune.epochs) {
    const f = report.finetune;
    console.log(`  fine-tuning: ${f.epochs} epochs, last accuracy ${fixed(f.last_test_accuracy)}, best ${fixed(f.best_test_accuracy)} (epoch ${f.best_epoch})`);
  }
  for (const t of report.tensors) {
    console.log(`  ${t.name.padEnd(14)} ${String(t.num_elements).padStart(8)} weights, sparsity ${fixed(t.sparsity)}`);
  }
}

async function watchAndReport(client, runId, json) {
  const last = await client.watchRun(runId, {
    onEvent: (event) => {
      if (json) return;
      const line = describeEvent(event);
      if (line) console.log(`[${event.sequence}] ${line}`);
    },
  });
  const report = await client.getRunReport(runId);
  if (json) console.log(JSON.stringify(report, null, 1));
  else printReport(report);
  const state = last && last.event === 'finished' ? last.finished.state : report.state;
  return state === 'RUN_STATE_SUCCEEDED' ? 0 : 1;
}

async function main(argv) {
  const { values: options, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: Object.fromEntries([
      'service', 'token', 'ca', 'timeout', 'spec', 'preset', 'data', 'train-subset', 'test-subset', 'pretrain-epochs',
      'train-epochs', 'finetune-epochs', 'batch-size', 'lr', 'momentum', 'method', 'target', 'iterations', 'seed',
      'pruner', 'label', 'request-id',
    ].map((name) => [name, { type: 'string' }]).concat([['tls', { type: 'boolean' }], ['json', { type: 'boolean' }],
      ['help', { type: 'boolean', short: 'h' }]])),
  });
  if (options.help) { console.log(USAGE); return 0; }
  const [command, address, runId] = positionals;
  if (!command || !address) throw new UsageError('a command and an ADDRESS are required');
  const connection = {
    token: options.token || process.env.GCPRUNE_AUTH_TOKEN,
    tls: options.tls,
    rootCerts: options.ca ? fs.readFileSync(options.ca) : undefined,
    deadlineSeconds: number(options, 'timeout', 30, { min: 0.001 }),
  };
  switch (command) {
    case 'health': {
      const status = await gcprune.healthCheck(address, { service: options.service || '', timeoutSeconds: connection.deadlineSeconds, ...connection });
      console.log(status);
      return status === 'SERVING' ? 0 : 1;
    }
    case 'run': {
      const client = new gcprune.TrainerClient(address, connection);
      try {
        const run = await client.createRun(runSpec(options), options['request-id'] || '');
        if (!options.json) console.log(`run ${run.run_id} created (${run.state.replace('RUN_STATE_', '')})`);
        return await watchAndReport(client, run.run_id, options.json);
      } finally {
        client.close();
      }
    }
    case 'watch':
    case 'report': {
      if (!runId) throw new UsageError(`${command}: RUN_ID is required`);
      const client = new gcprune.TrainerClient(address, connection);
      try {
        if (command === 'watch') return await watchAndReport(client, runId, options.json);
        const report = await client.getRunReport(runId);
        if (options.json) console.log(JSON.stringify(report, null, 1));
        else printReport(report);
        return 0;
      } finally {
        client.close();
      }
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error) => {
  if (error instanceof UsageError || error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    console.error(`gcprune-node: ${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else if (error.code === gcprune.status.UNAVAILABLE || error.code === gcprune.status.DEADLINE_EXCEEDED) {
    console.error(`gcprune-node: ${error.message}`);
    process.exitCode = 3;
  } else {
    console.error(`gcprune-node: ${error.message}`);
    process.exitCode = 4;
  }
});
