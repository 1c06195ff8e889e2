'use strict';
// Node client of the gcprune services. Loads protos/ at run time with @grpc/proto-loader (no generated
// code) and wraps gcprune.v1.Pruner, gcprune.v1.Trainer and grpc.health.v1.Health in promise-based
// clients; also the wire encodings (bfloat16, LSB-first bitmasks, chunk planning) of docs/PROTOCOL.md.

const { EventEmitter } = require('events');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// The repository's protos/ (this file is clients/node/lib/gcprune.js); $GCPRUNE_PROTOS_DIR overrides.
const DEFAULT_PROTOS_DIR = path.resolve(__dirname, '..', '..', '..', 'protos');
// Field names as in the .proto files (snake_case), int64 as strings, enums by name, oneof names set.
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
const CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 30000, // the servers accept pings every 10 s at most (PROTOCOL.md §3)
  'grpc.keepalive_timeout_ms': 20000,
  'grpc.max_receive_message_length': 64 << 20,
  'grpc.max_reconnect_backoff_ms': 5000,
  'grpc.dns_min_time_between_resolutions_ms': 1000,
};
const ENCODINGS = { float32: 'VALUE_ENCODING_FLOAT32', bfloat16: 'VALUE_ENCODING_BFLOAT16', float16: 'VALUE_ENCODING_FLOAT16' };
const DEFAULT_CHUNK_ELEMENTS = 262144;

let loaded = null;

/**
 * Loads the gcprune.v1 and health protos once. Returns { v1, health } with the service constructors
 * (v1.Pruner, v1.Trainer, health.Health). Throws if `protosDir` does not hold the .proto files.
 */
function loadProtos(protosDir = process.env.GCPRUNE_PROTOS_DIR || DEFAULT_PROTOS_DIR) {
  if (loaded && loaded.dir === protosDir) return loaded;
  const definition = protoLoader.loadSync(
    ['gcprune/v1/pruner.proto', 'gcprune/v1/trainer.proto', 'grpc/health/v1/health.proto'],
    { ...LOADER_OPTIONS, includeDirs: [protosDir] },
  );
  const root = grpc.loadPackageDefinition(definition);
  loaded = { dir: protosDir, v1: root.gcprune.v1, health: root.grpc.health.v1 };
  return loaded;
}

/** A failed call: `code` is the gRPC status number, `codeName` its name, `details` the server's message. */
class GcpruneError extends Error {
  constructor(code, details, context) {
    const codeName = Object.keys(grpc.status).find((k) => grpc.status[k] === code) || 'UNKNOWN';
    super(`${codeName}: ${context ? `${context}: ` : ''}${details}`);
    this.name = 'GcpruneError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
  }

  static from(error, context) {
    if (error instanceof GcpruneError) return error;
    const code = typeof error.code === 'number' ? error.code : grpc.status.UNKNOWN;
    return new GcpruneError(code, error.details || error.message, context);
  }
}

/**
 * Channel settings shared by the clients. `options`: token (bearer, sent as metadata on every call),
 * tls (boolean), rootCerts / privateKey / certChain (Buffers, PEM), serverNameOverride,
 * deadlineSeconds (unary calls, default 30).
 */
class Connection {
  constructor(address, options = {}) {
    if (typeof address !== 'string' || !address.includes(':')) {
      throw new TypeError(`address: expected 'host:port', got ${JSON.stringify(address)}`);
    }
    this.address = address;
    this.deadlineSeconds = options.deadlineSeconds || 30;
    this.protos = loadProtos(options.protosDir);
    this.credentials = options.tls || options.rootCerts
      ? grpc.credentials.createSsl(options.rootCerts || null, options.privateKey || null, options.certChain || null)
      : grpc.credentials.createInsecure();
    this.channelOptions = { ...CHANNEL_OPTIONS };
    if (options.serverNameOverride) this.channelOptions['grpc.ssl_target_name_override'] = options.serverNameOverride;
    this.token = options.token || null;
  }

  metadata() {
    const metadata = new grpc.Metadata();
    if (this.token) metadata.set('authorization', `Bearer ${this.token}`);
    return metadata;
  }

  deadline(seconds = this.deadlineSeconds) {
    return new Date(Date.now() + seconds * 1000);
  }

  stub(Service) {
    return new Service(this.address, this.credentials, this.channelOptions);
  }

  /** Calls unary `method` of `stub`; resolves with the response or rejects with a GcpruneError. */
  unary(stub, method, request, seconds) {
    return new Promise((resolve, reject) => {
      stub[method](request, this.metadata(), { deadline: this.deadline(seconds) }, (error, response) => {
        if (error) reject(GcpruneError.from(error, method));
        else resolve(response);
      });
    });
  }
}

/**
 * grpc.health.v1.Health/Check of `service` ('' = the whole server) at `address`. Resolves with
 * 'SERVING', 'NOT_SERVING' or 'SERVICE_UNKNOWN' (the server does not know the service); rejects with a
 * GcpruneError (code 14 UNAVAILABLE or 4 DEADLINE_EXCEEDED when unreachable within timeoutSeconds).
 */
async function healthCheck(address, { service = '', timeoutSeconds = 5, ...options } = {}) {
  const connection = new Connection(address, options);
  const stub = connection.stub(connection.protos.health.Health);
  try {
    const response = await connection.unary(stub, 'Check', { service }, timeoutSeconds);
    return response.status;
  } catch (error) {
    if (error.code === grpc.status.NOT_FOUND) return 'SERVICE_UNKNOWN';
    throw error;
  } finally {
    stub.close();
  }
}

// ----- wire encodings

/** float32 -> bfloat16 bit patterns (Uint16Array), rounded to nearest even; NaN stays a quiet NaN. */
function toBfloat16(values) {
  const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
  const bits = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
  const out = new Uint16Array(f32.length);
  for (let i = 0; i < f32.length; i++) {
    const b = bits[i];
    if (Number.isNaN(f32[i])) out[i] = 0x7fc0;
    else out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** bfloat16 bit patterns -> Float32Array, exactly. */
function fromBfloat16(bits) {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
  return new Float32Array(out.buffer);
}

/** Little-endian bytes (a Buffer) of `values` in `encoding` ('float32' or 'bfloat16'). */
function encodeValues(values, encoding = 'float32') {
  const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
  let typed;
  if (encoding === 'float32') typed = f32;
  else if (encoding === 'bfloat16') typed = toBfloat16(f32);
  else throw new RangeError(`encoding: expected float32 or bfloat16, got ${JSON.stringify(encoding)}`);
  // Typed arrays are little-endian on every platform Node runs on here (x86-64, arm64).
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
}

/**
 * Splits tensors [{tensorIndex, size}] into messages of at most `maxElements` elements in total.
 * Returns one array per message of {tensorIndex, offset, count}; every element appears exactly once.
 */
function planChunks(sizes, maxElements) {
  if (!(maxElements >= 1)) throw new RangeError(`maxElements: expected >= 1, got ${maxElements}`);
  const messages = [];
  let current = [];
  let room = maxElements;
  for (const { tensorIndex, size } of sizes) {
    for (let offset = 0; offset < size;) {
      const count = Math.min(size - offset, room);
      current.push({ tensorIndex, offset, count });
      offset += count;
      room -= count;
      if (room === 0) {
        messages.push(current);
        current = [];
        room = maxElements;
      }
    }
  }
  if (current.length) messages.push(current);
  return messages;
}

/** Keep flags (Uint8Array of 0/1) of a TensorMask run: bit i is bit i % 8 of byte i / 8, 1 = kept. */
function unpackMask(bits, numElements) {
  if (numElements < 1 || bits.length !== Math.ceil(numElements / 8)) {
    throw new RangeError(`bits: ${bits.length} bytes for ${numElements} elements, expected ${Math.ceil(numElements / 8)}`);
  }
  const out = new Uint8Array(numElements);
  for (let i = 0; i < numElements; i++) out[i] = (bits[i >> 3] >> (i & 7)) & 1;
  return out;
}

/** The TensorMask bytes (Buffer) of keep flags (non-zero = kept), LSB first, zero padding. */
function packMask(keep) {
  const out = Buffer.alloc(Math.ceil(keep.length / 8));
  for (let i = 0; i < keep.length; i++) if (keep[i]) out[i >> 3] |= 1 << (i & 7);
  return out;
}

function numel(spec) {
  return spec.shape.reduce((a, d) => a * Number(d), 1);
}

/**
 * Collects MaskUpdate parts into { iteration, applyAtStep, keep: Map(tensorIndex -> Uint8Array),
 * summary } and checks that they cover every prunable tensor of `layout` exactly once.
 */
class MaskAssembler {
  constructor(layout) {
    this.sizes = new Map();
    layout.tensors.forEach((t, i) => { if (t.prunable) this.sizes.set(i, numel(t)); });
    this.reset();
  }

  reset() {
    this.keep = new Map();
    this.seen = new Map();
    this.iteration = null;
  }

  /** Adds a part; returns the masks on the last part, else null. Throws RangeError naming the run. */
  add(update) {
    if (this.iteration !== null && update.iteration !== this.iteration) this.reset();
    this.iteration = update.iteration;
    for (const run of update.masks) {
      const size = this.sizes.get(run.tensor_index);
      const offset = Number(run.offset);
      const count = Number(run.num_elements);
      if (size === undefined) throw new RangeError(`masks: tensor ${run.tensor_index} is not prunable`);
      if (offset < 0 || offset + count > size) {
        throw new RangeError(`masks: tensor ${run.tensor_index} run [${offset}, ${offset + count}) is outside [0, ${size})`);
      }
      if (!this.keep.has(run.tensor_index)) {
        this.keep.set(run.tensor_index, new Uint8Array(size));
        this.seen.set(run.tensor_index, new Uint8Array(size));
      }
      const seen = this.seen.get(run.tensor_index);
      if (seen.subarray(offset, offset + count).some((v) => v)) {
        throw new RangeError(`masks: tensor ${run.tensor_index} run [${offset}, ${offset + count}) overlaps another`);
      }
      this.keep.get(run.tensor_index).set(unpackMask(run.bits, count), offset);
      seen.fill(1, offset, offset + count);
    }
    if (!update.last_part) return null;
    for (const [index, size] of this.sizes) {
      const seen = this.seen.get(index);
      const missing = seen ? seen.indexOf(0) : 0;
      if (missing !== -1) throw new RangeError(`masks: tensor ${index} has no mask bits from element ${missing}`);
      if (seen.length !== size) throw new RangeError(`masks: tensor ${index} size mismatch`);
    }
    const masks = {
      iteration: update.iteration,
      applyAtStep: Number(update.apply_at_step),
      keep: this.keep,
      summary: update,
    };
    this.reset();
    return masks;
  }
}

// ----- Pruner

/**
 * One attached Session stream. Emits 'masks' (assembled masks), 'ack' (step number), 'progress'
 * (Progress), 'warning' (SessionError) and 'end' (null, or the GcpruneError that ended the stream).
 * Send methods return promises that resolve when the stream can take more (flow control).
 */
class PrunerSession extends EventEmitter {
  constructor(call) {
    super();
    this.call = call;
    this.opened = null;
    this.ackedStep = -1;
    this.latestMasks = null;
    this.error = null;
    this.ended = false;
    this.assembler = null;
    call.on('data', (response) => this.onResponse(response));
    call.on('error', (error) => this.finish(error.code === grpc.status.CANCELLED && this.cancelled ? null : GcpruneError.from(error, 'session')));
    call.on('end', () => this.finish(null));
  }

  onResponse(response) {
    switch (response.kind) {
      case 'opened':
        this.opened = response.opened;
        this.ackedStep = Number(response.opened.next_step) - 1;
        this.assembler = new MaskAssembler(response.opened.layout);
        this.emit('opened', response.opened);
        break;
      case 'ack':
        this.ackedStep = Math.max(this.ackedStep, Number(response.ack.step));
        this.emit('ack', this.ackedStep);
        break;
      case 'mask_update': {
        let masks = null;
        try {
          masks = this.assembler.add(response.mask_update);
        } catch (error) {
          this.call.cancel();
          this.finish(new GcpruneError(grpc.status.INTERNAL, error.message, 'session'));
          return;
        }
        if (masks) {
          if (!this.latestMasks || masks.iteration >= this.latestMasks.iteration) this.latestMasks = masks;
          this.emit('masks', masks);
        }
        break;
      }
      case 'progress':
        this.emit('progress', response.progress);
        break;
      case 'error':
        this.emit('warning', response.error);
        break;
      default:
        break;
    }
  }

  finish(error) {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.emit('end', error);
  }

  get sessionId() { return this.opened.session_id; }

  get chunkElements() { return Number(this.opened.recommended_chunk_elements) || DEFAULT_CHUNK_ELEMENTS; }

  /** Writes one SessionRequest; resolves once the stream can take more. */
  write(request) {
    if (this.ended) return Promise.reject(this.error || new GcpruneError(grpc.status.CANCELLED, 'the stream has ended', 'session'));
    return new Promise((resolve, reject) => {
      const onEnd = (error) => reject(error || new GcpruneError(grpc.status.CANCELLED, 'the stream has ended', 'session'));
      if (this.call.write(request)) {
        resolve();
        return;
      }
      this.once('end', onEnd);
      this.call.once('drain', () => { this.off('end', onEnd); resolve(); });
    });
  }

  /**
   * Sends a step: { step, iteration, lossBefore, lossAfter, learningRate, momentum = 0,
   * deltas: [{ tensorIndex, values: Float32Array }] } (every prunable tensor, flattened row-major), with
   * `encoding` 'float32' or 'bfloat16'; split to chunkElements per StepChunk.
   */
  async sendStep(step, encoding = 'float32') {
    const encodingName = ENCODINGS[encoding];
    if (!encodingName) throw new RangeError(`encoding: expected float32 or bfloat16, got ${JSON.stringify(encoding)}`);
    await this.write({
      step_begin: {
        step: String(step.step), iteration: step.iteration, loss_before: step.lossBefore,
        loss_after: step.lossAfter, learning_rate: step.learningRate, momentum: step.momentum || 0,
      },
    });
    const values = new Map(step.deltas.map((d) => [d.tensorIndex, d.values]));
    const plan = planChunks(step.deltas.map((d) => ({ tensorIndex: d.tensorIndex, size: d.values.length })), this.chunkElements);
    for (const runs of plan) {
      const deltas = runs.map(({ tensorIndex, offset, count }) => ({
        tensor_index: tensorIndex, offset: String(offset), encoding: encodingName,
        data: encodeValues(values.get(tensorIndex).subarray(offset, offset + count), encoding),
      }));
      await this.write({ step_chunk: { step: String(step.step), deltas } });
    }
    await this.write({ step_commit: { step: String(step.step) } });
  }

  /** Sends IterationEnd; the masks follow as a 'masks' event (see waitMasks). */
  endIteration(iteration, lastStep) {
    return this.write({ iteration_end: { iteration, last_step: String(lastStep) } });
  }

  /** Resolves with the masks of `iteration` (or a later one); rejects if the stream ends or after timeoutMs. */
  waitMasks(iteration, timeoutMs = 120000) {
    return this.waitFor(() => this.latestMasks && this.latestMasks.iteration >= iteration && this.latestMasks,
      ['masks'], timeoutMs, `masks of iteration ${iteration}`);
  }

  /** Resolves once steps 0..step are acknowledged. */
  waitAcked(step, timeoutMs = 60000) {
    return this.waitFor(() => this.ackedStep >= step, ['ack'], timeoutMs, `ack of step ${step}`);
  }

  waitFor(check, events, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const done = check();
      if (done) { resolve(done); return; }
      if (this.ended) { reject(this.error || new GcpruneError(grpc.status.CANCELLED, `the stream ended before the ${what}`, 'session')); return; }
      const cleanup = () => {
        clearTimeout(timer);
        events.forEach((e) => this.off(e, onEvent));
        this.off('end', onEnd);
      };
      const onEvent = () => { const value = check(); if (value) { cleanup(); resolve(value); } };
      const onEnd = (error) => { cleanup(); reject(error || new GcpruneError(grpc.status.CANCELLED, `the stream ended before the ${what}`, 'session')); };
      const timer = setTimeout(() => { cleanup(); reject(new GcpruneError(grpc.status.DEADLINE_EXCEEDED, `no ${what} within ${timeoutMs} ms`, 'session')); }, timeoutMs);
      events.forEach((e) => this.on(e, onEvent));
      this.on('end', onEnd);
    });
  }

  /** Sends CloseSession (complete: the session becomes COMPLETED) and resolves when the stream ends OK. */
  close(complete = false) {
    return new Promise((resolve, reject) => {
      const finish = () => (this.error ? reject(this.error) : resolve());
      if (this.ended) { finish(); return; }
      this.once('end', finish);
      this.call.write({ close: { complete } });
      this.call.end();
    });
  }

  /** Drops the stream at once; the session stays resumable. */
  cancel() {
    this.cancelled = true;
    this.call.cancel();
  }
}

/** Calls of gcprune.v1.Pruner. Unary calls reject with GcpruneError (status code and message). */
class PrunerClient {
  constructor(address, options = {}) {
    this.connection = new Connection(address, options);
    this.stub = this.connection.stub(this.connection.protos.v1.Pruner);
  }

  close() { this.stub.close(); }

  /** Opens a new session: `layout` {tensors: [{name, shape, prunable}]}, `method` a MethodConfig object. */
  createSession(layout, method = {}, label = '', timeoutMs = 30000) {
    return this.open({ create: { layout, method, label } }, timeoutMs);
  }

  /** Re-attaches to a session; the latest masks follow Opened (session.latestMasks / waitMasks). */
  resumeSession(sessionId, { expectedLayout = null, restartIteration = false } = {}, timeoutMs = 30000) {
    return this.open({ resume: { session_id: sessionId, expected_layout: expectedLayout, restart_iteration: restartIteration } }, timeoutMs);
  }

  open(target, timeoutMs) {
    const call = this.stub.Session(this.connection.metadata());
    const session = new PrunerSession(call);
    call.write({ open: target });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { session.cancel(); reject(new GcpruneError(grpc.status.UNAVAILABLE, `no answer within ${timeoutMs} ms`, 'open')); }, timeoutMs);
      session.once('opened', () => { clearTimeout(timer); resolve(session); });
      session.once('end', (error) => {
        clearTimeout(timer);
        reject(error || new GcpruneError(grpc.status.UNKNOWN, 'the stream ended without Opened', 'open'));
      });
    });
  }

  getSession(sessionId) { return this.connection.unary(this.stub, 'GetSession', { session_id: sessionId }); }

  /** Every session, newest first (all pages). */
  async listSessions({ state, pageSize = 0 } = {}) {
    const sessions = [];
    let pageToken = '';
    do {
      const page = await this.connection.unary(this.stub, 'ListSessions', { page_size: pageSize, page_token: pageToken, state });
      sessions.push(...page.sessions);
      pageToken = page.next_page_token;
    } while (pageToken);
    return sessions;
  }

  deleteSession(sessionId, force = false) {
    return this.connection.unary(this.stub, 'DeleteSession', { session_id: sessionId, force });
  }

  /** The cumulative masks after `iteration` (undefined = latest), assembled over pages. */
  async getMasks(sessionId, iteration) {
    const { layout } = await this.getSession(sessionId);
    const assembler = new MaskAssembler(layout);
    let pageToken = '';
    for (;;) {
      const request = { session_id: sessionId, page_token: pageToken };
      if (iteration !== undefined) request.iteration = iteration;
      const page = await this.connection.unary(this.stub, 'GetMasks', request);
      const masks = assembler.add(page.masks);
      pageToken = page.next_page_token;
      if (!pageToken) return masks;
    }
  }

  getReport(sessionId) { return this.connection.unary(this.stub, 'GetReport', { session_id: sessionId }); }
}

// ----- Trainer

/** Calls of gcprune.v1.Trainer. Unary calls reject with GcpruneError (status code and message). */
class TrainerClient {
  constructor(address, options = {}) {
    this.connection = new Connection(address, options);
    this.stub = this.connection.stub(this.connection.protos.v1.Trainer);
  }

  close() { this.stub.close(); }

  /** Starts a run from a RunSpec object (proto field names, enums by name); a repeated requestId returns the first run. */
  createRun(spec, requestId = '') {
    return this.connection.unary(this.stub, 'CreateRun', { spec, request_id: requestId });
  }

  getRun(runId) { return this.connection.unary(this.stub, 'GetRun', { run_id: runId }); }

  cancelRun(runId, reason = '') { return this.connection.unary(this.stub, 'CancelRun', { run_id: runId, reason }); }

  getRunReport(runId) { return this.connection.unary(this.stub, 'GetRunReport', { run_id: runId }); }

  /** Every run, newest first (all pages). */
  async listRuns({ state, pageSize = 0 } = {}) {
    const runs = [];
    let pageToken = '';
    do {
      const page = await this.connection.unary(this.stub, 'ListRuns', { page_size: pageSize, page_token: pageToken, state });
      runs.push(...page.runs);
      pageToken = page.next_page_token;
    } while (pageToken);
    return runs;
  }

  /**
   * Streams the run's events after `afterSequence` to `onEvent(event)` until RunFinished. A dropped stream
   * (UNAVAILABLE) is resumed from the last sequence seen for up to reconnectSeconds. Resolves with the
   * last event; rejects with GcpruneError (e.g. NOT_FOUND).
   */
  async watchRun(runId, { afterSequence = 0, onEvent = () => {}, reconnectSeconds = 60 } = {}) {
    let last = afterSequence;
    let lastEvent = null;
    let giveUpAt = null;
    let delay = 200;
    for (;;) {
      try {
        const finished = await new Promise((resolve, reject) => {
          const call = this.stub.WatchRun({ run_id: runId, after_sequence: String(last) }, this.connection.metadata());
          let done = false;
          call.on('data', (event) => {
            giveUpAt = null;
            last = Math.max(last, Number(event.sequence));
            lastEvent = event;
            onEvent(event);
            if (event.event === 'finished') { done = true; call.cancel(); resolve(true); }
          });
          call.on('error', (error) => { if (!done) reject(GcpruneError.from(error, 'WatchRun')); });
          call.on('end', () => { if (!done) resolve(false); });
        });
        if (finished || lastEvent) return lastEvent;
        return null;
      } catch (error) {
        if (error.code !== grpc.status.UNAVAILABLE) throw error;
        giveUpAt = giveUpAt || Date.now() + reconnectSeconds * 1000;
        if (Date.now() > giveUpAt) throw error;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }
}

module.exports = {
  Connection,
  GcpruneError,
  MaskAssembler,
  PrunerClient,
  PrunerSession,
  TrainerClient,
  encodeValues,
  fromBfloat16,
  healthCheck,
  loadProtos,
  numel,
  packMask,
  planChunks,
  status: grpc.status,
  toBfloat16,
  unpackMask,
};
