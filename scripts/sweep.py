#!/usr/bin/python3
"""Runs the accuracy-versus-sparsity grid of docs/RESULTS.md through the services: starts gcprune-pruner and
gcprune-trainer on 127.0.0.1 (ephemeral ports, a temporary state directory), submits one run per grid point,
follows it to its end and writes one JSON record per run (and the RunSpec it sent, which gcprune-flatness
replays) into the results directory. Runs whose record already exists are skipped, so an interrupted sweep
resumes where it stopped and a larger grid can be added to a smaller one.

  /usr/bin/python3 scripts/sweep.py --profile smoke                 # minutes: the tooling end to end
  /usr/bin/python3 scripts/sweep.py --profile small                 # what a loaded 2-core machine allows
  /usr/bin/python3 scripts/sweep.py --profile full                  # the whole grid at reference-like budgets
  /usr/bin/python3 scripts/sweep.py --profile small --methods causal-v2 --targets 0.5,0.9 --dry-run
  /usr/bin/python3 scripts/sweep.py --profile small --flatness      # Hessian eigenvalues of finished runs

Uses Debian's /usr/bin/python3 (grpc, protobuf) and the system protoc for the stubs. The servers come from
--build-dir (targets gcprune-trainer and gcprune-pruner; built on request with --build). Then
`/usr/bin/python3 scripts/make_results.py` turns the records into docs/RESULTS.md.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# OpenMP threads of the servers (set by main): results are bit-identical only for the same count.
SERVER_THREADS = 0
# In the order the runs are made: the informative targets first.
TARGETS = [0.5, 0.9, 0.95, 0.7, 0.98, 0.8, 0.99, 0.3]
SCHEDULED_METHODS = ["causal-v2", "magnitude-global", "random"]
METHOD_ENUM = {
    "causal-v2": "METHOD_CAUSAL_V2",
    "causal-v1": "METHOD_CAUSAL_V1",
    "magnitude-global": "METHOD_MAGNITUDE_GLOBAL",
    "magnitude-layer": "METHOD_MAGNITUDE_LAYER",
    "random": "METHOD_RANDOM",
    "none": "METHOD_NONE",
}


@dataclasses.dataclass
class Settings:
    """The protocol of every run of a sweep (METHOD.md §3, reduced budgets stated in every record)."""

    model: str = "lenet5"
    data: str = "fashion-mnist"
    train_subset: int = 0  # 0 = all 60,000
    test_subset: int = 0  # 0 = all 10,000
    pretrain_epochs: int = 2
    train_epochs: int = 1  # between iterations, not before the first
    iterations: int = 5
    collection_epochs: int = 1  # causal-v2 (METHOD default 1)
    v1_collection_epochs: int = 1  # causal-v1 (METHOD default 10)
    finetune_epochs: int = 3
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    finetune_weight_decay: float = 5e-4
    seed: int = 314159


PROFILES = {
    # The tooling end to end in a few minutes: a 2,048-image subset, one epoch per phase.
    "smoke": dict(
        settings=Settings(train_subset=2048, test_subset=2000, pretrain_epochs=1, train_epochs=1, iterations=2,
                          finetune_epochs=1),
        methods=["causal-v2", "magnitude-global"], targets=[0.5, 0.9], v1_l1=[], dense=True),
    # What the shared 2-core machine allows: a 12,000-image subset (a fifth of the training set), the
    # protocol of METHOD.md §7's PyTorch port with fewer images.
    "small": dict(
        settings=Settings(train_subset=12000, pretrain_epochs=2, train_epochs=1, iterations=5, finetune_epochs=3),
        methods=SCHEDULED_METHODS, targets=TARGETS, v1_l1=[1e-16, 1e-15, 1e-14, 1e-13], dense=True),
    # METHOD.md §7's PyTorch-port protocol on the full training set.
    "port": dict(
        settings=Settings(pretrain_epochs=2, train_epochs=1, iterations=5, finetune_epochs=3),
        methods=SCHEDULED_METHODS, targets=TARGETS, v1_l1=[1e-16, 1e-15, 1e-14, 1e-13], dense=True),
    # Closer to the reference: 10 pre-training epochs, 10 iterations with 2 epochs between, 20 fine-tuning
    # epochs. Hours per run on two cores.
    "full": dict(
        settings=Settings(pretrain_epochs=10, train_epochs=2, iterations=10, finetune_epochs=20,
                          v1_collection_epochs=10),
        methods=SCHEDULED_METHODS, targets=TARGETS, v1_l1=[1e-16, 1e-15, 1e-14, 1e-13], dense=True),
}


def log(message):
    print(f"sweep: {message}", flush=True)


# ---------------------------------------------------------------------------------------------------------
# Grid and RunSpecs.

@dataclasses.dataclass
class GridPoint:
    name: str
    method: str
    target: float = None  # schedule target P (scheduled methods)
    l1: float = None  # causal-v1 penalty


def grid(methods, targets, v1_l1, dense):
    points = []
    if dense:
        points.append(GridPoint("none", "none"))
    # Target by target, so that a sweep cut short still compares every method at the targets it reached.
    for target in targets:
        for method in methods:
            points.append(GridPoint(f"{method}-P{target:g}", method, target=target))
    for l1 in v1_l1:
        points.append(GridPoint(f"causal-v1-l1-{l1:g}", "causal-v1", l1=l1))
    return points


def phase(epochs, settings, weight_decay=0.0, cosine=False):
    spec = {
        "epochs": epochs,
        "batch_size": settings.batch_size,
        "optimizer": {"kind": "OPTIMIZER_KIND_SGD", "learning_rate": settings.lr, "momentum": settings.momentum,
                      "weight_decay": weight_decay},
    }
    if cosine:
        spec["lr_schedule"] = {"kind": "LR_SCHEDULE_KIND_COSINE"}
    return spec


SCHEDULE_ENUM = {"cubic": "SCHEDULE_KIND_CUBIC", "geometric": "SCHEDULE_KIND_GEOMETRIC"}


def split_method(name):
    """'magnitude-global+cubic' -> ('magnitude-global', 'cubic'); a plain name has schedule None (the
    method's default: cubic for causal-v2, geometric for magnitude and random)."""
    method, _, schedule = name.partition("+")
    return method, schedule or None


def run_spec(point, settings, pruner_address):
    """The RunSpec (protobuf JSON form) of one grid point."""
    base, schedule = split_method(point.method)
    method = {"method": METHOD_ENUM[base], "schedule": {"iterations": settings.iterations}}
    if schedule:
        method["schedule"]["kind"] = SCHEDULE_ENUM[schedule]
    collection = {"epochs": settings.collection_epochs}
    if point.target is not None:
        method["schedule"]["target_sparsity"] = point.target
    if point.method == "causal-v1":
        method["lasso_sgd"] = {"l1": point.l1}
        collection = {"epochs": settings.v1_collection_epochs}
    spec = {
        "model": {"preset": settings.model},
        "data": {"name": settings.data, "train_subset": settings.train_subset, "test_subset": settings.test_subset},
        "pretrain": phase(settings.pretrain_epochs, settings),
        "train": phase(settings.train_epochs, settings),
        "collection": collection,
        "finetune": phase(settings.finetune_epochs, settings, settings.finetune_weight_decay, cosine=True),
        "seed": str(settings.seed),  # uint64 travels as a string in proto JSON
        "method": method,
        "label": f"sweep {point.name}",
    }
    if point.method != "none":
        spec["pruner"] = {"address": pruner_address, "failure_policy": "FAILURE_POLICY_STRICT"}
    return spec


# ---------------------------------------------------------------------------------------------------------
# Servers.

class Servers:
    """gcprune-pruner and gcprune-trainer on ephemeral ports, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, build_dir, threads, keep_state):
        self.build_dir = build_dir
        self.threads = threads
        self.keep_state = keep_state
        self.state_dir = tempfile.mkdtemp(prefix="gcprune-sweep.")
        self.processes = []
        self.trainer = self.pruner = None

    def binary(self, relative):
        path = os.path.join(self.build_dir, relative)
        if not os.access(path, os.X_OK):
            raise SystemExit(f"sweep: {path} not found; build it with `cmake --build {self.build_dir} --target "
                             f"gcprune-trainer gcprune-pruner` or pass --build")
        return path

    def start_one(self, name, binary, *args):
        port_file = os.path.join(self.state_dir, f"{name}.port")
        env = dict(os.environ)
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        log_file = open(os.path.join(self.state_dir, f"{name}.log"), "w")
        process = subprocess.Popen([binary, "--host=127.0.0.1", "--port=0", f"--port_file={port_file}", *args],
                                   stdout=log_file, stderr=subprocess.STDOUT, env=env)
        self.processes.append((name, process))
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
                with open(port_file) as f:
                    return f"127.0.0.1:{f.read().strip()}"
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited during start-up (log: {log_file.name})")
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not report its port within 60 s")

    def start(self):
        self.pruner = self.start_one("pruner", self.binary("pruner_service/gcprune-pruner"),
                                     f"--state_dir={os.path.join(self.state_dir, 'pruner-state')}")
        self.trainer = self.start_one("trainer", self.binary("trainer_service/gcprune-trainer"),
                                      "--progress_interval_seconds=5")
        log(f"pruner {self.pruner}, trainer {self.trainer} (logs in {self.state_dir})")

    def stop(self):
        for _, process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"{name} ignored SIGTERM for 30 s; killing it")
                process.kill()
                process.wait()
        if self.keep_state:
            log(f"server logs and state kept in {self.state_dir}")
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def load_stubs(stub_dir):
    """Generates the gcprune.v1 Python modules with the system protoc and imports them."""
    protos = os.path.join(REPO, "protos")
    command = ["protoc", "-I", protos, f"--python_out={stub_dir}", f"--grpc_python_out={stub_dir}",
               "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
               "gcprune/v1/common.proto", "gcprune/v1/trainer.proto"]
    subprocess.run(command, check=True)
    sys.path.insert(0, stub_dir)
    import grpc  # noqa: F401  (fails early with a clear message on the wrong interpreter)
    from gcprune.v1 import trainer_pb2, trainer_pb2_grpc
    return trainer_pb2, trainer_pb2_grpc


# ---------------------------------------------------------------------------------------------------------
# Runs.

def follow(stub, pb, run_id, point):
    """Streams the run's events, printing iteration and fine-tuning summaries; returns the final Run."""
    import grpc
    after = 0
    while True:
        try:
            for event in stub.WatchRun(pb.WatchRunRequest(run_id=run_id, after_sequence=after)):
                after = event.sequence
                kind = event.WhichOneof("event")
                if kind == "masks_applied":
                    e = event.masks_applied
                    log(f"  {point.name}: iteration {e.iteration}: sparsity {e.achieved_sparsity:.4f}, "
                        f"test accuracy {e.test_accuracy:.4f}")
                elif kind == "epoch_finished" and event.epoch_finished.phase in (pb.PHASE_PRETRAIN,
                                                                                   pb.PHASE_FINETUNE):
                    e = event.epoch_finished
                    log(f"  {point.name}: {pb.Phase.Name(e.phase).lower()[6:]} epoch {e.epoch}/{e.epochs}: "
                        f"test accuracy {e.test_accuracy:.4f} ({e.seconds:.0f} s)")
            run = stub.GetRun(pb.GetRunRequest(run_id=run_id))
            if run.state in (pb.RUN_STATE_SUCCEEDED, pb.RUN_STATE_FAILED, pb.RUN_STATE_CANCELLED):
                return run
        except grpc.RpcError as error:
            log(f"  watch of {run_id} interrupted ({error.code().name}: {error.details()}); resuming")
            time.sleep(2)


def number(value):
    return None if value is None or value != value else value


def summarize(pb, point, settings, profile, spec, run, report, wall_seconds, load_before):
    from google.protobuf import json_format
    pb_report = json_format.MessageToDict(report, preserving_proto_field_name=True)
    iterations = []
    for it in report.iterations:
        iterations.append({
            "iteration": it.iteration, "target_sparsity": number(it.target_sparsity),
            "achieved_sparsity": it.achieved_sparsity, "test_accuracy_after_prune": it.test_accuracy_after_prune,
            "test_loss_after_prune": it.test_loss_after_prune, "train_seconds": it.train_seconds,
            "collect_seconds": it.collect_seconds, "prune_wait_seconds": it.prune_wait_seconds,
            "steps": it.num_steps, "skipped": it.skipped})
    last = report.iterations[-1] if report.iterations else None
    timings = {pb.Phase.Name(t.phase).lower().replace("phase_", ""): t.seconds for t in report.timings}
    return {
        "schema": 1,
        "name": point.name,
        "profile": profile,
        "method": point.method,
        "target_sparsity": point.target,
        "l1": point.l1,
        "settings": dataclasses.asdict(settings),
        "run_id": run.run_id,
        "state": pb.RunState.Name(run.state),
        "error": run.error_message,
        "pretrain_test_accuracy": number(report.pretrain_test_accuracy),
        "pretrain_reused_from": report.pretrain_reused.source_run_id if report.HasField("pretrain_reused") else None,
        "achieved_sparsity": last.achieved_sparsity if last else 0.0,
        "layer_sparsity": {t.name: t.sparsity for t in report.tensors},
        "test_accuracy_after_prune": last.test_accuracy_after_prune if last else None,
        "test_loss_after_prune": last.test_loss_after_prune if last else None,
        "finetune": {"epochs": report.finetune.epochs, "last_test_accuracy": number(report.finetune.last_test_accuracy),
                     "best_test_accuracy": number(report.finetune.best_test_accuracy),
                     "best_epoch": report.finetune.best_epoch} if report.HasField("finetune") else None,
        "iterations": iterations,
        "skipped_iterations": sum(1 for it in report.iterations if it.skipped),
        "timings_seconds": timings,
        "total_seconds": report.total_seconds,
        "wall_seconds": wall_seconds,
        "environment": {
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "server_threads": SERVER_THREADS,
            "load_average_before": load_before, "load_average_after": list(os.getloadavg()),
        },
        "spec": spec,
        "report": pb_report,
    }


def git_commit():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def execute(point, settings, profile, out_dir, stub, pb, pruner_address):
    from google.protobuf import json_format
    spec = run_spec(point, settings, pruner_address)
    # The spec without the address is what gcprune-flatness replays in process.
    replay = {k: v for k, v in spec.items() if k != "pruner"}
    with open(os.path.join(out_dir, f"{point.name}.spec.json"), "w") as f:
        json.dump(replay, f, indent=1)
    message = json_format.ParseDict(spec, pb.RunSpec())
    load_before = list(os.getloadavg())
    start = time.time()
    run = stub.CreateRun(pb.CreateRunRequest(spec=message, request_id=f"{profile}-{point.name}-{int(start)}"))
    log(f"{point.name}: run {run.run_id} created")
    run = follow(stub, pb, run.run_id, point)
    report = stub.GetRunReport(pb.GetRunReportRequest(run_id=run.run_id))
    wall = time.time() - start
    record = summarize(pb, point, settings, profile, spec, run, report, wall, load_before)
    if run.state != pb.RUN_STATE_SUCCEEDED:
        log(f"{point.name}: run ended {record['state']}: {run.error_message}; no record written")
        return None
    path = os.path.join(out_dir, f"{point.name}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".tmp", path)
    ft = record["finetune"] or {}
    log(f"{point.name}: sparsity {record['achieved_sparsity']:.4f}, after pruning "
        f"{record['test_accuracy_after_prune']:.4f}, fine-tuned {ft.get('last_test_accuracy')} "
        f"(best {ft.get('best_test_accuracy')}), {wall:.0f} s -> {os.path.relpath(path, REPO)}")
    return record


FLATNESS_DEFAULT = ["none"] + [f"{m}-P{t:g}" for m in ("causal-v2", "magnitude-global", "random") for t in (0.5, 0.7, 0.9)]


def flatness(names, out_dir, build_dir, threads, examples, iterations, epsilon):
    """Replays each run's RunSpec in gcprune-flatness (same protocol and seeds, in process) and measures the
    top Hessian eigenvalue of the pruned and fine-tuned models; writes <out>/flatness/<run>.json."""
    tool = os.path.join(build_dir, "trainer_service/engine/gcprune-flatness")
    if not os.access(tool, os.X_OK):
        raise SystemExit(f"sweep: {tool} not found; build it with `cmake --build {build_dir} --target gcprune-flatness`")
    os.makedirs(os.path.join(out_dir, "flatness"), exist_ok=True)
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    failures = 0
    for name in names:
        spec = os.path.join(out_dir, f"{name}.spec.json")
        output = os.path.join(out_dir, "flatness", f"{name}.json")
        if os.path.exists(output):
            continue
        if not os.path.exists(spec):
            log(f"flatness {name}: no {os.path.relpath(spec, REPO)} (run the sweep first); skipped")
            continue
        log(f"flatness {name}: replaying the run and measuring ({examples} test images, <= {iterations} products)")
        start = time.time()
        result = subprocess.run([tool, f"--run_spec={spec}", f"--output={output}", f"--hessian_examples={examples}",
                                 f"--max_iterations={iterations}", f"--epsilon={epsilon}"], env=env)
        if result.returncode != 0:
            failures += 1
            log(f"flatness {name}: gcprune-flatness failed with exit code {result.returncode}")
        else:
            log(f"flatness {name}: {time.time() - start:.0f} s -> {os.path.relpath(output, REPO)}")
    return failures


def parse_list(text, kind=float):
    return [kind(x) for x in text.split(",") if x.strip()] if text is not None else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
    parser.add_argument("--out", help="results directory (default results/<profile>)")
    parser.add_argument("--methods", help="comma-separated scheduled methods (default: the profile's); a suffix "
                        "+cubic or +geometric overrides the method's default schedule, e.g. magnitude-global+cubic")
    parser.add_argument("--targets", help="comma-separated targets P (default: the profile's)")
    parser.add_argument("--v1-l1", help="comma-separated causal-v1 L1 values ('' for none)")
    parser.add_argument("--no-dense", action="store_true", help="skip the unpruned control run")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a protocol setting, e.g. --set finetune_epochs=5 (fields: " +
                        ", ".join(f.name for f in dataclasses.fields(Settings)) + ")")
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    parser.add_argument("--build", action="store_true", help="build the two servers first")
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP_NUM_THREADS of the servers (0: their default); 1 is faster on a busy machine")
    parser.add_argument("--keep-state", action="store_true", help="keep server logs and pruner state")
    parser.add_argument("--dry-run", action="store_true", help="print the grid and the first RunSpec only")
    parser.add_argument("--max-runs", type=int, default=0, help="stop after this many new runs (0: all)")
    parser.add_argument("--flatness", nargs="?", const="default", metavar="RUNS",
                        help="instead of runs: measure flatness of these finished runs (comma-separated names; "
                        "default: " + ",".join(FLATNESS_DEFAULT) + ") with gcprune-flatness")
    parser.add_argument("--flatness-examples", type=int, default=2000, help="test images of the Hessian")
    parser.add_argument("--flatness-iterations", type=int, default=30, help="Lanczos steps per Hessian")
    parser.add_argument("--epsilon", type=float, default=1e-2, help="finite-difference step of the Hessian")
    args = parser.parse_args()

    global SERVER_THREADS
    SERVER_THREADS = args.threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or os.cpu_count()
    profile = PROFILES[args.profile]
    settings = dataclasses.replace(profile["settings"])
    for assignment in args.set:
        field, _, value = assignment.partition("=")
        if field not in {f.name for f in dataclasses.fields(Settings)}:
            parser.error(f"--set: unknown field '{field}'")
        kind = type(getattr(settings, field))
        setattr(settings, field, kind(value))
    methods = parse_list(args.methods, str) if args.methods is not None else profile["methods"]
    for method in methods:
        base, schedule = split_method(method)
        if base not in METHOD_ENUM or base in ("none", "causal-v1") or (schedule and schedule not in SCHEDULE_ENUM):
            parser.error(f"--methods: '{method}' is not a scheduled method ({', '.join(SCHEDULED_METHODS)}), "
                         f"optionally with a schedule suffix ({', '.join('+' + k for k in SCHEDULE_ENUM)})")
    targets = parse_list(args.targets) if args.targets is not None else profile["targets"]
    v1_l1 = parse_list(args.v1_l1) if args.v1_l1 is not None else profile["v1_l1"]
    points = grid(methods, targets, v1_l1, profile["dense"] and not args.no_dense)
    out_dir = args.out or os.path.join(REPO, "results", args.profile)
    os.makedirs(out_dir, exist_ok=True)
    if args.flatness:
        names = FLATNESS_DEFAULT if args.flatness == "default" else parse_list(args.flatness, str)
        return 1 if flatness(names, out_dir, args.build_dir, args.threads, args.flatness_examples,
                             args.flatness_iterations, args.epsilon) else 0
    todo = [p for p in points if not os.path.exists(os.path.join(out_dir, f"{p.name}.json"))]
    log(f"profile {args.profile}: {len(points)} runs, {len(points) - len(todo)} already in "
        f"{os.path.relpath(out_dir, REPO)}; settings {dataclasses.asdict(settings)}")
    if args.dry_run:
        for p in todo:
            log(f"  would run {p.name}")
        if todo:
            print(json.dumps(run_spec(todo[0], settings, "PRUNER"), indent=1))
        return 0
    if args.max_runs:
        todo = todo[:args.max_runs]
    if not todo:
        return 0
    if args.build:
        subprocess.run(["cmake", "--build", args.build_dir, "--target", "gcprune-trainer", "gcprune-pruner"],
                       check=True)

    servers = Servers(args.build_dir, args.threads, args.keep_state)
    stub_dir = tempfile.mkdtemp(prefix="gcprune-sweep-stubs.")
    failures = 0
    # SIGTERM unwinds like Ctrl-C, so the servers are always stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        pb, pb_grpc = load_stubs(stub_dir)
        servers.start()
        import grpc
        channel = grpc.insecure_channel(servers.trainer)
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.TrainerStub(channel)
        for point in todo:
            if execute(point, settings, args.profile, out_dir, stub, pb, servers.pruner) is None:
                failures += 1
        # The phase shift of this invocation's runs, as `gcprune report --sweep` computes it on the trainer
        # (docs/RESULTS.md has the whole grid, from the records).
        cli = os.path.join(args.build_dir, "clients", "cli", "gcprune")
        if os.path.exists(cli):
            log("gcprune report --sweep over the runs of this invocation:")
            subprocess.run([cli, "report", "--sweep", f"--trainer={servers.trainer}", "--label_prefix=sweep "],
                           check=False)
    except KeyboardInterrupt:
        log("interrupted; finished runs are kept")
        return 130
    finally:
        servers.stop()
        shutil.rmtree(stub_dir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
