#!/usr/bin/python3
"""Regenerates the generated parts of docs/RESULTS.md and the figures in docs/figures/ from the JSON records
under results/ (written by scripts/sweep.py and gcprune-flatness). The prose of RESULTS.md stays as written:
only the blocks between `<!-- BEGIN generated:NAME -->` and `<!-- END generated:NAME -->` are replaced, and a
results directory without a block gets a new one at the end.

  /usr/bin/python3 scripts/make_results.py                 # every results/<profile>/
  /usr/bin/python3 scripts/make_results.py --check         # exit 1 if RESULTS.md is not up to date

Layout read: results/<profile>/<run>.json (one record per run), results/<profile>/flatness/<run>.json
(gcprune-flatness output), results/<profile>/epsilon/<run>.json (gcprune-flatness --epsilon_scan output).

The phase-shift rules mirror pruner_service/causal/phase_shift.h (FindPhaseShift) exactly.
"""

import argparse
import glob
import json
import math
import os
import re
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHOD_ORDER = ["causal-v2", "causal-v2+geometric", "magnitude-global", "magnitude-global+cubic",
                "magnitude-layer", "random", "causal-v1", "none"]
COLORS = {"causal-v2": "tab:blue", "causal-v2+geometric": "tab:purple", "magnitude-global": "tab:orange",
          "magnitude-global+cubic": "tab:red", "magnitude-layer": "tab:olive", "random": "tab:gray",
          "causal-v1": "tab:green", "none": "black"}
LAYERS = ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]
MAX_DROP = 0.05  # five accuracy points: the drop-from-reference rule's k

# METHOD.md §7: a PyTorch port of V2 on LeNet-5/Fashion-MNIST (pre-train 2 epochs, 5 iterations with 1 train
# epoch between, 3 fine-tune epochs, full training set): (after pruning, after fine-tuning).
PORT_NUMBERS = {("causal-v2", 0.5): (0.884, 0.897), ("magnitude-global", 0.5): (0.871, 0.897),
                ("causal-v2", 0.9): (0.871, 0.886), ("magnitude-global", 0.9): (0.742, 0.888)}
# METHOD.md §7: the authors' largest Hessian eigenvalue, LeNet on CIFAR-10, pruned weights included.
AUTHORS_FLATNESS = {"unpruned": 46.5, "causal": {0.5: 704, 0.7: 534, 0.9: 407},
                    "magnitude": {0.5: 683, 0.7: 1065, 0.9: 1289}}


# ---------------------------------------------------------------------------------------------------------
# Phase shift (mirror of pruner_service/causal/phase_shift.cc).

def find_phase_shift(points, rule, reference=None, max_drop=MAX_DROP):
    """points: [(sparsity, accuracy)]. rule: 'drop-from-reference' or 'steepest-drop'. Returns a dict with
    found, shift (sparsity, accuracy) or None, recommended (sparsity, accuracy) or None, drop."""
    curve = sorted(points)
    for a, b in zip(curve, curve[1:]):
        if a[0] == b[0]:
            raise ValueError(f"points: sparsity {a[0]} appears more than once")
    if rule == "steepest-drop" and reference is not None and curve and curve[0][0] > 0.0:
        curve.insert(0, (0.0, reference))
    shift, drop = None, None
    if rule == "drop-from-reference":
        if reference is None:
            raise ValueError("reference_accuracy: required by rule drop-from-reference")
        floor = reference - max_drop
        for i, (_, accuracy) in enumerate(curve):
            if accuracy < floor:
                shift, drop = i, reference - accuracy
                break
    elif rule == "steepest-drop":
        best_slope = 0.0
        for i in range(len(curve) - 1):
            step = curve[i][1] - curve[i + 1][1]
            if not step > max_drop:
                continue
            slope = step / (curve[i + 1][0] - curve[i][0])
            if shift is None or slope > best_slope:
                shift, best_slope = i + 1, slope
        drop = best_slope if shift is not None else None
    else:
        raise ValueError(f"unknown rule {rule}")
    recommended = (shift - 1) if shift is not None else len(curve) - 1
    return {"found": shift is not None, "shift": curve[shift] if shift is not None else None,
            "recommended": curve[recommended] if recommended >= 0 else None, "drop": drop, "points": curve}


def self_test():
    """The crafted curves of tests/pruner_service/causal/phase_shift_test.cc."""
    curve = [(0.3, 0.90), (0.5, 0.895), (0.7, 0.89), (0.8, 0.88), (0.9, 0.87), (0.95, 0.60), (0.98, 0.20)]
    r = find_phase_shift(curve, "drop-from-reference", 0.90)
    assert r["shift"] == (0.95, 0.60) and r["recommended"] == (0.9, 0.87), r
    for max_drop, expected in [(0.05, 0.95), (0.02, 0.9), (0.01, 0.8), (0.0, 0.5)]:
        assert find_phase_shift(curve, "drop-from-reference", 0.90, max_drop)["shift"][0] == expected
    steep = [(0.3, 0.90), (0.5, 0.88), (0.9, 0.68), (0.95, 0.53)]
    r = find_phase_shift(steep, "steepest-drop")
    assert r["shift"][0] == 0.95 and r["recommended"][0] == 0.9 and abs(r["drop"] - 3.0) < 1e-9, r
    r = find_phase_shift([(0.5, 0.40), (0.9, 0.35)], "steepest-drop", 0.90)
    assert r["recommended"] == (0.0, 0.90), r
    r = find_phase_shift([(0.3, 0.90), (0.5, 0.89), (0.9, 0.88)], "steepest-drop", 0.90)
    assert not r["found"] and r["recommended"] == (0.9, 0.88), r


# ---------------------------------------------------------------------------------------------------------
# Loading.

def load_profile(directory):
    runs = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        if path.endswith(".spec.json"):
            continue
        with open(path) as f:
            record = json.load(f)
        if isinstance(record, dict) and record.get("schema") == 1:  # a sweep record (not autograd.json)
            runs.append(record)
    flatness = []
    for path in sorted(glob.glob(os.path.join(directory, "flatness", "*.json"))):
        with open(path) as f:
            record = json.load(f)
        record["name"] = os.path.splitext(os.path.basename(path))[0]
        flatness.append(record)
    epsilon = []
    for path in sorted(glob.glob(os.path.join(directory, "epsilon", "*.json"))):
        with open(path) as f:
            record = json.load(f)
        record["name"] = os.path.splitext(os.path.basename(path))[0]
        epsilon.append(record)
    autograd = []
    path = os.path.join(directory, "autograd.json")
    if os.path.exists(path):
        with open(path) as f:
            autograd = json.load(f)
    return runs, flatness, epsilon, autograd


def method_key(method):
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def by_method(runs):
    groups = {}
    for run in runs:
        groups.setdefault(run["method"], []).append(run)
    for method in groups:
        groups[method].sort(key=lambda r: (r["achieved_sparsity"], r.get("l1") or 0.0))
    return dict(sorted(groups.items(), key=lambda kv: method_key(kv[0])))


def dense_reference(runs):
    """Accuracy of the unpruned control at the point where pruned runs measure 'after pruning' (after the last
    iteration); the pre-training accuracy if there is no control."""
    for run in runs:
        if run["method"] == "none" and run.get("test_accuracy_after_prune") is not None:
            return run["test_accuracy_after_prune"], "the unpruned control run after its last iteration"
    for run in runs:
        if run.get("pretrain_test_accuracy") is not None:
            return run["pretrain_test_accuracy"], "the pre-trained model"
    return None, "none"


# ---------------------------------------------------------------------------------------------------------
# Formatting.

def pct(value, digits=2):
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}"


def table(header, rows, align=None):
    align = align or ["---"] + ["--:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def seconds(value):
    if value is None:
        return "–"
    return f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"


def settings_block(runs):
    settings = runs[0]["settings"]
    varying = [k for k in settings if any(r["settings"].get(k) != settings[k] for r in runs)]
    s = settings
    subset = "all 60,000" if not s["train_subset"] else f"first {s['train_subset']:,}"
    test = "all 10,000" if not s["test_subset"] else f"first {s['test_subset']:,}"
    lines = [
        f"- Model {s['model']}, data {s['data']}: training images {subset}, test images {test}; seed {s['seed']}.",
        f"- Pre-training {s['pretrain_epochs']} epoch(s); {s['iterations']} prune iterations with "
        f"{s['train_epochs']} training epoch(s) between them (none before the first); fine-tuning "
        f"{s['finetune_epochs']} epoch(s) (reference: 10 / 10 iterations × 10 / 300).",
        f"- SGD lr {s['lr']}, momentum {s['momentum']}, batch {s['batch_size']} in every phase; fine-tuning adds "
        f"weight decay {s['finetune_weight_decay']} and a cosine schedule.",
        f"- Collection (causal methods): {s['collection_epochs']} epoch(s) of plain SGD (η = 1e-3, batch 256) per "
        f"iteration for causal-v2; {s['v1_collection_epochs']} epoch(s) (batch 512) for causal-v1 (reference 10).",
        "- Method defaults otherwise (METHOD.md): causal-v2 cubic schedule, magnitude and random geometric schedule, "
        "causal-v1 per-layer Lasso with rewinding to the pre-trained weights and plain cross-entropy; label "
        "smoothing 0.1 for the others.",
    ]
    reused = sum(1 for r in runs if r.get("pretrain_reused_from"))
    if reused:
        lines.append(f"- Shared pre-training: {reused} of {len(runs)} runs started from the saved result of an "
                     "identical earlier pre-training on the same trainer (`RunReport.pretrain_reused`); the others "
                     "pre-trained. The engine is deterministic, so both give the same pre-trained weights.")
    else:
        lines.append("- Every run pre-trained itself with the same seed (these records predate the trainer's "
                     "shared pre-training), so all runs see the same pre-trained weights.")
    variants = sorted({r["method"] for r in runs if "+" in r["method"]})
    if variants:
        lines.append(f"- Schedule controls: {', '.join(variants)} are the same methods on the other schedule "
                     "(suffix = schedule), so that the ranking criterion and the schedule can be told apart.")
    if varying:
        lines.append(f"- Settings that differ between runs: {', '.join(varying)}.")
    return "\n".join(lines)


def main_table(groups):
    rows = []
    for method, runs in groups.items():
        if method in ("none", "causal-v1"):
            continue
        for r in sorted(runs, key=lambda r: r["target_sparsity"]):
            ft = r.get("finetune") or {}
            rows.append([method, f"{r['target_sparsity']:g}", pct(r["achieved_sparsity"]),
                         pct(r["test_accuracy_after_prune"]), pct(ft.get("last_test_accuracy")),
                         f"{pct(ft.get('best_test_accuracy'))} ({ft.get('best_epoch', '–')})",
                         seconds(r.get("total_seconds"))])
    return table(["method", "P", "sparsity %", "acc. after pruning %", "fine-tuned, last %",
                  "fine-tuned, best % (epoch)", "run time"], rows)


def pivot_table(groups, key):
    methods = [m for m in groups if m not in ("none", "causal-v1")]
    targets = sorted({r["target_sparsity"] for m in methods for r in groups[m]})
    rows = []
    for target in targets:
        row = [f"{target:g}"]
        for method in methods:
            match = [r for r in groups[method] if r["target_sparsity"] == target]
            row.append(pct(key(match[0])) if match else "–")
        rows.append(row)
    return table(["P"] + methods, rows)


def phase_shift_table(groups, reference):
    rows = []
    for method, runs in groups.items():
        if method == "none":
            continue
        points = [(r["achieved_sparsity"], r["test_accuracy_after_prune"]) for r in runs]
        if len({p[0] for p in points}) != len(points):
            points = list(dict(points).items())  # duplicates (causal-v1 at full sparsity): keep one
        cells = [method]
        own = reference
        if method == "causal-v1" and runs[0].get("pretrain_test_accuracy") is not None:
            # causal-v1 rewinds to the pre-trained weights before measuring: its dense reference is that model.
            own = runs[0]["pretrain_test_accuracy"]
            cells = [f"causal-v1 (reference: pre-trained, {pct(own)})"]
        for rule in ("drop-from-reference", "steepest-drop"):
            if rule == "drop-from-reference" and own is None:
                cells += ["–", "–"]
                continue
            result = find_phase_shift(points, rule, own)
            shift = result["shift"]
            rec = result["recommended"]
            cells.append(f"{pct(shift[0])} ({pct(shift[1])})" if shift else "beyond the sweep")
            cells.append(f"{pct(rec[0])} ({pct(rec[1])})" if rec else "none")
        rows.append(cells)
    return table(["method", "shift: sparsity % (acc. %), 5-point drop", "recommended", "shift, steepest drop",
                  "recommended"], rows)


def layer_table(groups, targets):
    rows = []
    for method, runs in groups.items():
        for r in runs:
            if r["method"] == "none" or (r["target_sparsity"] not in targets and r["method"] != "causal-v1"):
                continue
            label = f"l1 = {r['l1']:g}" if r["method"] == "causal-v1" else f"P = {r['target_sparsity']:g}"
            rows.append([method, label, pct(r["achieved_sparsity"])] +
                        [pct(r["layer_sparsity"].get(layer)) for layer in LAYERS])
    return table(["method", "setting", "global %"] + [f"{l} %" for l in LAYERS], rows)


def v1_table(groups):
    rows = []
    for r in sorted(groups.get("causal-v1", []), key=lambda r: r["l1"]):
        ft = r.get("finetune") or {}
        per_iteration = ", ".join(pct(i["achieved_sparsity"], 1) for i in r["iterations"])
        rows.append([f"{r['l1']:g}", pct(r["achieved_sparsity"]), per_iteration, pct(r["test_accuracy_after_prune"]),
                     pct(ft.get("last_test_accuracy")), pct(ft.get("best_test_accuracy"))])
    return table(["l1 (α)", "sparsity %", "per iteration %", "acc. after pruning %", "fine-tuned, last %",
                  "best %"], rows)


def port_table(groups):
    rows = []
    for (method, target), (after, tuned) in sorted(PORT_NUMBERS.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        match = [r for r in groups.get(method, []) if r["target_sparsity"] == target]
        ours = match[0] if match else None
        ft = (ours or {}).get("finetune") or {}
        rows.append([method, f"{target:g}", pct(after, 1), pct(ours["test_accuracy_after_prune"]) if ours else "–",
                     pct(tuned, 1), pct(ft.get("last_test_accuracy")) if ours else "–"])
    return table(["method", "P", "port: after pruning %", "ours", "port: fine-tuned %", "ours"], rows)


def timing_table(groups):
    rows = []
    for method, runs in groups.items():
        totals = {}
        for r in runs:
            for phase, value in r.get("timings_seconds", {}).items():
                totals.setdefault(phase, []).append(value)
        def median(values):
            values = sorted(values)
            return values[len(values) // 2] if values else None
        rows.append([method, len(runs)] + [seconds(median(totals.get(p, []))) for p in
                                           ("pretrain", "train", "collect", "prune", "finetune")] +
                    [seconds(median([r["total_seconds"] for r in runs]))])
    return table(["method", "runs", "pre-train", "train", "collect", "prune (fit + wait)", "fine-tune", "total"],
                 rows)


def replay_matches(record, runs):
    """Whether gcprune-flatness's in-process replay reproduced the service run of the same name: the same
    accuracy after every prune iteration and after fine-tuning. None when there is no service record."""
    service = [r for r in runs if r["name"] == record["name"]]
    if not service:
        return None
    replayed = record.get("report", {})
    ours = [i.get("test_accuracy_after_prune") for i in replayed.get("iterations", [])]
    theirs = [i["test_accuracy_after_prune"] for i in service[0]["iterations"]]
    tuned = replayed.get("finetune", {}).get("last_test_accuracy")
    return ours == theirs and tuned == (service[0].get("finetune") or {}).get("last_test_accuracy")


def flatness_rows(flatness, runs):
    rows = []
    for record in flatness:
        spec = record.get("run_spec", {})
        method_enum = spec.get("method", {}).get("method", "METHOD_CAUSAL_V2")
        method = method_enum.replace("METHOD_", "").lower().replace("_", "-")
        if "-P" in record["name"]:  # sweep names: <method>[+schedule]-P<target>
            method = record["name"].rsplit("-P", 1)[0]
        matches = replay_matches(record, runs)
        for m in record["measurements"]:
            rows.append({"run": record["name"], "method": method, "replay": matches, **m})
    return rows


def flatness_table(rows):
    grouped = {}
    for m in rows:
        key = (m["run"], m["stage"])
        entry = grouped.setdefault(key, {"method": m["method"], "sparsity": m["sparsity"],
                                         "accuracy": m["test_accuracy"], "examples": m["examples"],
                                         "replay": m["replay"]})
        entry[m["subspace"]] = m
    out = []
    for (run, stage), e in sorted(grouped.items(), key=lambda kv: (kv[0][1] != "final", method_key(kv[1]["method"]),
                                                                   kv[1]["sparsity"])):
        def cell(subspace):
            m = e.get(subspace)
            if not m:
                return "–"
            mark = "" if m["converged"] else " *"
            return f"{m['eigenvalues'][0]:.3g}{mark}"
        replay = {True: "yes", False: "NO", None: "–"}[e["replay"]]
        out.append([stage, e["method"], pct(e["sparsity"]), pct(e["accuracy"]), cell("all"), cell("unpruned"),
                    f"{e['examples']:,}", replay])
    return table(["model", "method", "sparsity %", "test acc. % (Hessian set)", "λ_max, all parameters",
                  "λ_max, unpruned", "test images", "replay = service run"], out)


def authors_flatness_table(rows):
    """METHOD.md §7's largest eigenvalues (LeNet / CIFAR-10, pruned weights included) beside ours (LeNet-5 /
    Fashion-MNIST, all parameters), each also as a multiple of its own unpruned model's."""
    def ours(method, stage, target):
        for m in rows:
            if (m["method"] == method and m["stage"] == stage and m["subspace"] == "all"
                    and abs(m["sparsity"] - target) < 1e-9):
                return m["eigenvalues"][0]
        return None
    dense = {stage: next((m["eigenvalues"][0] for m in rows if m["method"] == "none" and m["stage"] == stage
                          and m["subspace"] == "all"), None) for stage in ("pruned", "final")}
    a_dense = AUTHORS_FLATNESS["unpruned"]
    fmt = lambda v, d: "–" if v is None else (f"{v:.4g} ({v / d:.2f}×)" if d else f"{v:.4g}")
    out = [["0 (unpruned)", fmt(a_dense, a_dense), fmt(a_dense, a_dense)] +
           [fmt(dense[stage], dense[stage]) for stage in ("pruned", "final") for _ in (0, 1)]]
    for target in sorted(AUTHORS_FLATNESS["causal"]):
        row = [f"{target:g}", fmt(AUTHORS_FLATNESS["causal"][target], a_dense),
               fmt(AUTHORS_FLATNESS["magnitude"][target], a_dense)]
        for stage in ("pruned", "final"):
            row += [fmt(ours("causal-v2", stage, target), dense[stage]),
                    fmt(ours("magnitude-global", stage, target), dense[stage])]
        out.append(row)
    return table(["P", "authors: causal", "authors: magnitude", "ours, right after pruning: causal-v2",
                  "magnitude", "ours, after fine-tuning: causal-v2", "magnitude"], out)


def epsilon_table(epsilon):
    rows = []
    for record in epsilon:
        for m in record["measurements"]:
            rows.append([record["name"], m["stage"], m["subspace"], f"{m['epsilon']:g}", f"{m['eigenvalues'][0]:.4g}",
                         f"{m['residuals'][0]:.2g}", m["iterations"], m["examples"]])
    return table(["run", "model", "subspace", "ε", "λ_max", "residual bound", "products", "test images"], rows)


def autograd_table(autograd, flatness, epsilon):
    """scripts/hessian_torch.py's exact (autograd) top eigenvalues beside gcprune-flatness's for the same
    weights, subspace and test images."""
    rows = []
    for a in autograd:
        run, _, stage = a["prefix"].rpartition(".")
        ours = []
        for record in flatness + epsilon:
            if record["name"] != run:
                continue
            for m in record["measurements"]:
                if m["stage"] == stage and m["subspace"] == a["subspace"] and m["examples"] == a["examples"]:
                    ours.append((m["epsilon"], m["eigenvalues"][0]))
        for eps, value in sorted(set(ours)):
            rows.append([run, stage, a["subspace"], a["examples"], f"{a['top_eigenvalue']:.4g}", f"{eps:g}",
                         f"{value:.4g}", f"{100 * (value - a['top_eigenvalue']) / a['top_eigenvalue']:+.2f} %"])
    return table(["run", "model", "subspace", "test images", "autograd λ_max", "ε", "finite differences λ_max",
                  "difference"], rows)


# ---------------------------------------------------------------------------------------------------------
# Figures.

def sparsity_axis(ax):
    ticks = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99]
    ax.set_xticks([-math.log10(1 - t) for t in ticks])
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_xlabel("sparsity (axis: −log10(1 − s))")


def x_of(sparsity):
    return -math.log10(max(1.0 - sparsity, 1e-4))


def accuracy_figure(groups, reference, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    for ax, key, label in ((axes[0], lambda r: r["test_accuracy_after_prune"], "right after the last prune iteration"),
                           (axes[1], lambda r: (r.get("finetune") or {}).get("last_test_accuracy"),
                            "after fine-tuning (last epoch)")):
        for method, runs in groups.items():
            if method == "none":
                continue
            pts = [(r["achieved_sparsity"], key(r)) for r in runs if key(r) is not None]
            pts.sort()
            ax.plot([x_of(s) for s, _ in pts], [a for _, a in pts], "o-" if method != "causal-v1" else "s--",
                    color=COLORS.get(method), label=method, markersize=4)
            if ax is axes[0] and reference is not None and method != "causal-v1":
                result = find_phase_shift(list(dict(pts).items()), "drop-from-reference", reference)
                if result["found"]:
                    ax.axvline(x_of(result["shift"][0]), color=COLORS.get(method), linestyle=":", linewidth=1.2)
        control = [key(r) for r in groups.get("none", []) if key(r) is not None]
        level = control[0] if control else (reference if ax is axes[0] else None)
        if level is not None:
            ax.axhline(level, color="black", linewidth=0.8, linestyle="--", label="unpruned control")
        if reference is not None:
            if ax is axes[0]:
                ax.axhline(reference - MAX_DROP, color="black", linewidth=0.5, linestyle=":",
                           label="5 points below: phase-shift threshold")
        sparsity_axis(ax)
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(title + " (dotted verticals: phase shift per method)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def flatness_figure(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=False)
    for ax, subspace in zip(axes, ("all", "unpruned")):
        for stage, style in (("final", "o-"), ("pruned", "x--")):
            series = {}
            for m in rows:
                if m["subspace"] == subspace and m["stage"] == stage:
                    series.setdefault(m["method"], []).append((m["sparsity"], m["eigenvalues"][0]))
            dense = series.pop("none", [])
            for method, pts in series.items():
                pts = sorted(pts + [(0.0, v) for _, v in dense])
                ax.plot([x_of(s) for s, _ in pts], [v for _, v in pts], style, color=COLORS.get(method),
                        label=f"{method}, {stage}", markersize=5)
        sparsity_axis(ax)
        ax.set_ylabel("largest Hessian eigenvalue of the test loss")
        ax.set_title("all parameters (pruned weights perturbed)" if subspace == "all" else "unpruned parameters")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------
# The document.

def profile_block(profile, directory, figures_dir, doc_dir):
    runs, flatness, epsilon, autograd = load_profile(directory)
    if not runs:
        return None
    groups = by_method(runs)
    reference, reference_source = dense_reference(runs)
    rel = lambda p: os.path.relpath(p, doc_dir)
    out = [f"### Profile `{profile}` ({len(runs)} runs, records in `{os.path.relpath(directory, REPO)}/`)", "",
           settings_block(runs), ""]
    # Runs with the same loss (label smoothing) share the pre-training exactly; causal-v1 trains with plain
    # cross-entropy, so its pre-training differs.
    by_loss = {}
    for r in runs:
        if r.get("pretrain_test_accuracy") is not None:
            loss = "plain cross-entropy (causal-v1)" if r["method"] == "causal-v1" else "label smoothing 0.1"
            by_loss.setdefault(loss, set()).add(round(r["pretrain_test_accuracy"], 6))
    if by_loss:
        parts = [f"{', '.join(pct(p) for p in sorted(values))} % with {loss} "
                 f"({'identical in all ' + str(sum(1 for r in runs if (r['method'] == 'causal-v1') == ('v1' in loss))) + ' runs' if len(values) == 1 else 'differs between runs'})"
                 for loss, values in sorted(by_loss.items(), key=lambda kv: kv[0] != "label smoothing 0.1")]
        out.append(f"Pre-trained accuracy: {'; '.join(parts)}. Dense reference for the phase shift: "
                   f"{pct(reference)} % ({reference_source}).")
        out.append("")
    figure = os.path.join(figures_dir, f"accuracy_vs_sparsity_{profile}.png")
    accuracy_figure(groups, reference, figure, f"LeNet-5 / Fashion-MNIST, profile {profile}")
    out += [f"![accuracy versus sparsity]({rel(figure)})", ""]
    out += ["Test accuracy (%) right after the last prune iteration, before fine-tuning:", "",
            pivot_table(groups, lambda r: r["test_accuracy_after_prune"]), ""]
    out += ["Test accuracy (%) after fine-tuning (last epoch):", "",
            pivot_table(groups, lambda r: (r.get("finetune") or {}).get("last_test_accuracy")), ""]
    out += ["Phase shift (`FindPhaseShift` rules on accuracy right after pruning versus achieved sparsity; "
            "5-point drop: the first point more than 5 accuracy points below the dense reference; steepest drop: the "
            "end of the segment with the largest drop per unit sparsity among drops of more than 5 points, the dense "
            "reference at sparsity 0 included):", "", phase_shift_table(groups, reference), ""]
    if any(k[0] in groups for k in PORT_NUMBERS):
        out += ["Beside METHOD.md §7's PyTorch port of V2 (full training set, same protocol otherwise):", "",
                port_table(groups), ""]
    if "causal-v1" in groups:
        out += ["causal-v1 (sparsity is an outcome of the penalty):", "", v1_table(groups), ""]
    out += ["Per-layer sparsity (%) at P = 0.9 and 0.99, and for causal-v1:", "",
            layer_table(groups, {0.9, 0.99}), ""]
    out += ["<details><summary>Every run</summary>", "", main_table(groups), "", "</details>", ""]
    threads = sorted({r.get("environment", {}).get("server_threads") for r in runs} - {None})
    threads_text = (f"{', '.join(map(str, threads))} OpenMP thread(s) per server" if threads
                    else "one OpenMP thread per server")
    out += [f"Median wall time per phase (two cores, {threads_text}; runs that reused a pre-training show "
            "only the time to restore it):", "", timing_table(groups), ""]
    rows = flatness_rows(flatness, runs)
    if rows:
        figure = os.path.join(figures_dir, f"flatness_{profile}.png")
        flatness_figure(rows, figure, f"Flatness, LeNet-5 / Fashion-MNIST, profile {profile}")
        hessian = flatness[0].get("hessian", {})
        out += ["Flatness: largest eigenvalue of the Hessian of the test loss (label-smoothed cross-entropy, as "
                "trained), Lanczos on central-difference Hessian-vector products, ε = "
                f"{rows[0]['epsilon']:g}, at most {hessian.get('max_iterations', '?')} products, tolerance "
                f"{hessian.get('tolerance', '?')} (* = not converged to it). 'pruned' = right after the last prune "
                "iteration, 'final' = after fine-tuning; the unpruned control appears as method none.", "",
                flatness_table(rows), "", f"![flatness versus sparsity]({rel(figure)})", "",
                "Beside the authors' largest eigenvalues (METHOD.md §7: LeNet on CIFAR-10, pruned weights "
                "included, at which stage is not stated); in brackets, the multiple of the same setting's unpruned "
                "model (first row):", "", authors_flatness_table(rows), ""]
    if epsilon:
        out += ["Dependence of the top eigenvalue on the finite-difference step ε:", "", epsilon_table(epsilon), ""]
    if autograd:
        out += ["Cross-check against exact Hessian-vector products (PyTorch autograd in float64, "
                "`scripts/hessian_torch.py` on the weights `gcprune-flatness --save_weights` wrote):", "",
                autograd_table(autograd, flatness, epsilon), ""]
    return "\n".join(out).rstrip() + "\n"


def seeds_block(results_dir, base="small"):
    """Compares the runs of profile `base` with the same runs at other seeds (directories `<base>-seed<N>/`,
    written by `sweep.py --profile <base> --set seed=N --out results/<base>-seed<N>`)."""
    others = sorted(d for d in glob.glob(os.path.join(results_dir, f"{base}-seed*")) if os.path.isdir(d))
    if not others:
        return None
    base_runs = {r["name"]: r for r in load_profile(os.path.join(results_dir, base))[0]}
    columns = [(base_runs, next(iter(base_runs.values()))["settings"]["seed"] if base_runs else "?")]
    for directory in others:
        runs = {r["name"]: r for r in load_profile(directory)[0]}
        if runs:
            columns.append((runs, next(iter(runs.values()))["settings"]["seed"]))
    names = sorted(set.intersection(*[set(runs) for runs, _ in columns]),
                   key=lambda n: (method_key(base_runs[n]["method"]), base_runs[n]["achieved_sparsity"]))
    if not names:
        return None
    seeds = [seed for _, seed in columns]
    header = (["method", "P"] + [f"after pruning, seed {s}" for s in seeds] + ["spread"] +
              [f"fine-tuned, seed {s}" for s in seeds] + ["spread"])
    rows = []
    spreads_after, spreads_tuned = [], []
    for name in names:
        run = base_runs[name]
        after = [runs[name]["test_accuracy_after_prune"] for runs, _ in columns]
        tuned = [((runs[name].get("finetune") or {}).get("last_test_accuracy")) for runs, _ in columns]
        spread_after = max(after) - min(after) if None not in after else None
        spread_tuned = max(tuned) - min(tuned) if None not in tuned else None
        if run["method"] != "none":
            spreads_after.append(spread_after)
            spreads_tuned.append(spread_tuned)
        target = run.get("target_sparsity")
        rows.append([run["method"], "–" if target is None else f"{target:g}"] + [pct(a) for a in after] +
                    [pct(spread_after)] + [pct(t) for t in tuned] + [pct(spread_tuned)])
    out = [f"Seeds: the runs of profile `{base}` repeated with other seeds (everything else equal; each seed "
           "changes the initialisation, every shuffle and the pruner's shuffling). Test accuracy (%), spread = "
           "largest minus smallest:", "", table(header, rows), ""]
    valid_after = [x for x in spreads_after if x is not None]
    valid_tuned = [x for x in spreads_tuned if x is not None]
    if valid_after:
        out.append(f"Median spread over the pruned runs: {pct(statistics.median(valid_after))} points right after "
                   f"pruning, {pct(statistics.median(valid_tuned))} points after fine-tuning; largest "
                   f"{pct(max(valid_after))} and {pct(max(valid_tuned))}.")
    return "\n".join(out).rstrip() + "\n"


def update_document(doc, blocks):
    for name, block in blocks.items():
        begin, end = f"<!-- BEGIN generated:{name} -->", f"<!-- END generated:{name} -->"
        source = "results/small/ and results/small-seed*/" if name == "seeds" else f"results/{name}/"
        text = f"{begin}\n<!-- Generated by scripts/make_results.py from {source}; do not edit. -->\n{block}{end}"
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
        if pattern.search(doc):
            doc = pattern.sub(lambda _: text, doc)
        else:
            doc = doc.rstrip() + f"\n\n## Results: profile {name}\n\n{text}\n"
    return doc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=os.path.join(REPO, "results"))
    parser.add_argument("--doc", default=os.path.join(REPO, "docs", "RESULTS.md"))
    parser.add_argument("--figures", default=os.path.join(REPO, "docs", "figures"))
    parser.add_argument("--check", action="store_true", help="only report whether the document is up to date")
    args = parser.parse_args()
    self_test()
    os.makedirs(args.figures, exist_ok=True)
    blocks = {}
    for directory in sorted(glob.glob(os.path.join(args.results, "*"))):
        if os.path.isdir(directory) and "-seed" not in os.path.basename(directory):
            block = profile_block(os.path.basename(directory), directory, args.figures, os.path.dirname(args.doc))
            if block:
                blocks[os.path.basename(directory)] = block
    seeds = seeds_block(args.results)
    if seeds:
        blocks["seeds"] = seeds
    doc = open(args.doc).read() if os.path.exists(args.doc) else "# Results\n"
    updated = update_document(doc, blocks)
    if args.check:
        print("docs/RESULTS.md is up to date" if updated == doc else "docs/RESULTS.md is out of date")
        return 0 if updated == doc else 1
    with open(args.doc, "w") as f:
        f.write(updated)
    print(f"make_results: {len(blocks)} profile(s) -> {os.path.relpath(args.doc, REPO)}, figures in "
          f"{os.path.relpath(args.figures, REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
