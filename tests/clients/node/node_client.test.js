'use strict';
// Tests of the Node client (clients/node): the wire encodings, and against real gcprune-pruner and
// gcprune-trainer servers on 127.0.0.1 (port 0): health checks, a pruner session with resumption and
// errors, the pruner-session example, and the gcprune-node command creating, watching and reporting a run.

const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const SOURCE = process.env.GCPRUNE_SOURCE_DIR || path.resolve(__dirname, '..', '..', '..');
const NODE_DIR = path.join(SOURCE, 'clients', 'node');
const gcprune = require(path.join(NODE_DIR, 'lib', 'gcprune.js'));
const DATA = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz';

/** Starts a server binary with --port=0; resolves with { address, stop() } once it prints "listening on". */
function startServer(envName, extraArgs = []) {
  const binary = process.env[envName];
  if (!binary) throw new Error(`$${envName} must name the built server (run the test through ctest)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcprune-nodetest-'));
  const child = spawn(binary, ['--host=127.0.0.1', '--port=0', '--shutdown_grace_seconds=2', ...extraArgs],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk) => { log = (log + chunk).slice(-4000); });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${binary} did not start: ${log}`)); }, 60000);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${binary} exited with ${code}: ${log}`)); });
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/listening on (\S+)/);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({
        address: match[1],
        stop: () => new Promise((done) => {
          if (child.exitCode !== null) { fs.rmSync(dir, { recursive: true, force: true }); done(); return; }
          child.once('exit', () => { fs.rmSync(dir, { recursive: true, force: true }); done(); });
          child.kill('SIGTERM'); // by this child's pid only
        }),
      });
    });
  });
}

function unusedPort() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => { const { port } = server.address(); server.close(() => resolve(port)); });
  });
}

function run(script, args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { timeout: 240000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('wire encodings', () => {
  test('bfloat16 rounds to nearest even', () => {
    const values = new Float32Array([1.0, -2.5, 1.00390625, 1.01171875, 3.4e38, Infinity, 0, NaN]);
    assert.deepEqual(Array.from(gcprune.toBfloat16(values)), [0x3f80, 0xc020, 0x3f80, 0x3f82, 0x7f80, 0x7f80, 0, 0x7fc0]);
    assert.deepEqual(Array.from(gcprune.fromBfloat16(new Uint16Array([0x3f80, 0xc020]))), [1, -2.5]);
    assert.equal(gcprune.encodeValues(new Float32Array([1, 2]), 'bfloat16').length, 4);
    assert.throws(() => gcprune.encodeValues([1], 'int8'), /encoding: expected float32 or bfloat16, got "int8"/);
  });

  test('masks are LSB first, 1 = kept', () => {
    const keep = new Uint8Array(10).fill(1);
    keep[0] = 0;
    keep[9] = 0;
    assert.deepEqual([...gcprune.packMask(keep)], [0xfe, 0x01]);
    assert.deepEqual([...gcprune.unpackMask(Buffer.from([0xfe, 0x01]), 10)], [...keep]);
    assert.throws(() => gcprune.unpackMask(Buffer.from([0xff]), 10), /1 bytes for 10 elements, expected 2/);
  });

  test('chunk plans cover every element once within the limit', () => {
    const sizes = [{ tensorIndex: 0, size: 10 }, { tensorIndex: 3, size: 25 }];
    for (const limit of [1, 4, 10, 35, 100]) {
      const plan = gcprune.planChunks(sizes, limit);
      const seen = { 0: new Array(10).fill(0), 3: new Array(25).fill(0) };
      for (const runs of plan) {
        assert.ok(runs.reduce((a, r) => a + r.count, 0) <= limit);
        for (const r of runs) for (let i = r.offset; i < r.offset + r.count; i++) seen[r.tensorIndex][i] += 1;
      }
      assert.ok(Object.values(seen).every((a) => a.every((v) => v === 1)));
    }
    assert.throws(() => gcprune.planChunks(sizes, 0), /maxElements: expected >= 1, got 0/);
  });
});

describe('against real servers', () => {
  let pruner;
  let trainer;
  before(async () => {
    pruner = await startServer('GCPRUNE_PRUNER_BIN', [`--state_dir=${fs.mkdtempSync(path.join(os.tmpdir(), 'gcprune-nodestate-'))}`]);
    trainer = await startServer('GCPRUNE_TRAINER_BIN');
  });
  after(async () => {
    if (trainer) await trainer.stop();
    if (pruner) await pruner.stop();
  });

  test('health checks', async () => {
    assert.equal(await gcprune.healthCheck(pruner.address), 'SERVING');
    assert.equal(await gcprune.healthCheck(trainer.address, { service: 'gcprune.v1.Trainer' }), 'SERVING');
    assert.equal(await gcprune.healthCheck(pruner.address, { service: 'no.such.Service' }), 'SERVICE_UNKNOWN');
    const port = await unusedPort();
    await assert.rejects(gcprune.healthCheck(`127.0.0.1:${port}`, { timeoutSeconds: 2 }),
      (error) => error.code === gcprune.status.UNAVAILABLE || error.code === gcprune.status.DEADLINE_EXCEEDED);
    const cli = path.join(NODE_DIR, 'bin', 'gcprune-node.js');
    assert.equal((await run(cli, ['health', pruner.address])).code, 0);
    assert.equal((await run(cli, ['health', pruner.address, '--service', 'no.such.Service'])).code, 1);
    assert.equal((await run(cli, ['health', `127.0.0.1:${port}`, '--timeout', '2'])).code, 3);
    assert.equal((await run(cli, ['health'])).code, 2);
  });

  test('pruner session: steps, masks, resumption and errors', async () => {
    const client = new gcprune.PrunerClient(pruner.address);
    const layout = { tensors: [{ name: 'w', shape: [40, 10], prunable: true }, { name: 'b', shape: [40], prunable: false }] };
    await assert.rejects(client.createSession(layout, { schedule: { target_sparsity: 1.5 } }),
      (error) => error.code === gcprune.status.INVALID_ARGUMENT && /target_sparsity/.test(error.message));
    const session = await client.createSession(layout, { method: 'METHOD_CAUSAL_V2', schedule: { target_sparsity: 0.5, iterations: 1 } });
    const step = (k) => ({
      step: k, iteration: 1, lossBefore: 1, lossAfter: 1 - 0.001 * (k + 1), learningRate: 1e-3,
      deltas: [{ tensorIndex: 0, values: Float32Array.from({ length: 400 }, (_, i) => Math.sin(i * (k + 1)) * 1e-3) }],
    });
    for (let k = 0; k < 5; k++) await session.sendStep(step(k), 'bfloat16');
    await session.waitAcked(4);
    session.cancel();
    const resumed = await client.resumeSession(session.sessionId, { expectedLayout: layout });
    assert.equal(resumed.opened.next_step, '5');
    for (let k = 3; k < 8; k++) await resumed.sendStep(step(k)); // 3 and 4 are duplicates
    await resumed.endIteration(1, 7);
    const masks = await resumed.waitMasks(1, 60000);
    assert.equal(masks.applyAtStep, 8);
    assert.equal(Number(masks.summary.pruned), 200);
    assert.equal(masks.summary.final_iteration, true);
    await resumed.close(true);
    const fetched = await client.getMasks(session.sessionId);
    assert.deepEqual([...fetched.keep.get(0)], [...masks.keep.get(0)]);
    const report = await client.getReport(session.sessionId);
    assert.equal(Number(report.iterations[0].num_samples), 8);
    const info = await client.getSession(session.sessionId);
    assert.equal(info.state, 'SESSION_STATE_COMPLETED');
    await assert.rejects(client.getSession('no-such-session'), (error) => error.code === gcprune.status.NOT_FOUND);
    assert.ok((await client.listSessions()).some((s) => s.session_id === session.sessionId));
    client.close();
  });

  test('the pruner-session example keeps the planted weights', async () => {
    const result = await run(path.join(NODE_DIR, 'examples', 'pruner_session.js'), [`--address=${pruner.address}`]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /iteration 3\/3: sparsity 0\.8000 \(target 0\.8000\).*planted weights kept 8\/8/);
  });

  test('gcprune-node run creates, watches and reports a run', { skip: !fs.existsSync(DATA) && 'no Fashion-MNIST' }, async () => {
    const cli = path.join(NODE_DIR, 'bin', 'gcprune-node.js');
    const text = await run(cli, ['run', trainer.address, '--pruner', pruner.address, '--preset', 'mlp',
      '--train-subset', '512', '--test-subset', '256', '--iterations', '2', '--target', '0.5', '--seed', '3']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /masks of iteration 2: target 0\.5000, achieved 0\.5000/);
    assert.match(text.stdout, /finished: SUCCEEDED/);
    assert.match(text.stdout, /report of run-\S+: SUCCEEDED, 32360 prunable weights/);
    const json = await run(cli, ['run', trainer.address, '--pruner', pruner.address, '--train-subset', '512',
      '--test-subset', '256', '--iterations', '2', '--target', '0.5', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout);
    assert.equal(report.state, 'RUN_STATE_SUCCEEDED');
    assert.deepEqual(report.iterations.map((i) => i.achieved_sparsity), [0.4375, 0.5].map((s) => Math.round(s * 32360) / 32360));
    const again = await run(cli, ['report', trainer.address, report.run_id]);
    assert.equal(again.code, 0, again.stderr);
    const bad = await run(cli, ['run', trainer.address, '--preset', 'no-such-model', '--pruner', pruner.address]);
    assert.equal(bad.code, 4);
    assert.match(bad.stderr, /INVALID_ARGUMENT: CreateRun: .*no-such-model/);
    const client = new gcprune.TrainerClient(trainer.address);
    await assert.rejects(client.getRun('no-such-run'), (error) => error.code === gcprune.status.NOT_FOUND);
    assert.ok((await client.listRuns()).some((r) => r.run_id === report.run_id));
    client.close();
  });
});
