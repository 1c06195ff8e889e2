#!/usr/bin/python3
"""Trains LeNet-5 on Fashion-MNIST with PyTorch and prunes it through a gcprune pruner server (causal-v2
by default), printing the sparsity and test accuracy after every prune iteration and fine-tuning epoch.

    gcprune-pruner --port=50052 &
    PYTHONPATH=clients/python:build/clients/python/stubs \\
        /usr/bin/python3 clients/python/examples/prune_lenet5.py --address=127.0.0.1:50052

The protocol follows METHOD.md at a size that fits a laptop: pre-train, then per iteration (train between
iterations, not before the first) one collection epoch whose steps stream to the pruner, then fine-tune.
The data are the gzipped IDX files of /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist),
read with gzip and NumPy.
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import gcprune.torch  # noqa: E402

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set statistics (METHOD.md §6)


def read_idx(path: str, expected_dims: int) -> np.ndarray:
    """An IDX array of unsigned bytes from a gzipped file. Raises ValueError naming the file for a wrong
    magic number, dimension count or a size that does not match the header."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError("%s: not an IDX file of unsigned bytes (magic %s)" % (path, data[:4].hex()))
    dims = data[3]
    if dims != expected_dims:
        raise ValueError("%s: %d dimensions, expected %d" % (path, dims, expected_dims))
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    offset = 4 + 4 * dims
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError("%s: %d data bytes, the header says %s" % (path, len(data) - offset, shape))
    return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def load_split(directory: str, prefix: str, subset: int):
    """(images [N, 1, 28, 28] float32 normalised, labels [N] int64) of 'train' or 't10k', first `subset`."""
    images = read_idx(os.path.join(directory, "%s-images-idx3-ubyte.gz" % prefix), 3)
    labels = read_idx(os.path.join(directory, "%s-labels-idx1-ubyte.gz" % prefix), 1)
    if len(images) != len(labels):
        raise ValueError("%s: %d images but %d labels" % (prefix, len(images), len(labels)))
    if subset:
        images, labels = images[:subset], labels[:subset]
    x = (torch.from_numpy(images.astype(np.float32) / 255.0) - MEAN) / STD
    return x.unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def lenet5() -> nn.Module:
    """The Caffe LeNet-5 of METHOD.md §6: 430,500 prunable weights."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10),
    )


class Batches:
    """Shuffled minibatches of (x, y), a new permutation per pass, from a seeded generator."""

    def __init__(self, x, y, batch_size: int, seed: int):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        order = torch.randperm(len(self.x), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]

    def __len__(self):
        return (len(self.x) + self.batch_size - 1) // self.batch_size


def train_epoch(model, optimizer, loss_fn, batches) -> float:
    model.train()
    total, count = 0.0, 0
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += float(loss) * len(y)
        count += len(y)
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model, x, y, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        correct += int((model(x[start : start + batch_size]).argmax(1) == y[start : start + batch_size]).sum())
    model.train()
    return correct / len(x)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default="127.0.0.1:50052", help="host:port of gcprune-pruner")
    parser.add_argument("--token", default=os.environ.get("GCPRUNE_AUTH_TOKEN"), help="bearer token, if the pruner wants one")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train-subset", type=int, default=0, help="first N training images (0 = all 60,000)")
    parser.add_argument("--test-subset", type=int, default=0, help="first N test images (0 = all 10,000)")
    parser.add_argument("--method", default="causal-v2", help="causal-v2, causal-v1, magnitude-global, ...")
    parser.add_argument("--target", type=float, default=0.9, help="final sparsity P")
    parser.add_argument("--iterations", type=int, default=5, help="prune iterations n")
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--train-epochs", type=int, default=1, help="training epochs between iterations (>= 1)")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--collection-lr", type=float, default=1e-3)
    parser.add_argument("--encoding", default="float32", help="deltas on the wire: float32 or bfloat16")
    parser.add_argument("--seed", type=int, default=314159)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--strict", action="store_true", help="fail instead of training on without the pruner")
    parser.add_argument("--mask-timeout", type=float, default=300.0, help="seconds to wait for masks")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.pretrain_epochs < 1 or args.train_epochs < 1:
        parser.error("--pretrain-epochs and --train-epochs must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, y_train = load_split(args.data_dir, "train", args.train_subset)
    x_test, y_test = load_split(args.data_dir, "t10k", args.test_subset)
    print("data: %d training and %d test images from %s" % (len(x_train), len(x_test), args.data_dir), flush=True)

    model = lenet5()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    train_batches = Batches(x_train, y_train, args.batch_size, args.seed)
    collect_batches = Batches(x_train, y_train, 256, args.seed + 1)  # METHOD.md: shuffled, batch 256

    # The added lines: a pruner bound to the model and optimizer, prune epochs after pre-training.
    pruner = gcprune.torch.CausalPruner(
        model, optimizer, address=args.address, token=args.token, method=args.method, target=args.target,
        iterations=args.iterations, seed=args.seed, start_epoch=args.pretrain_epochs - 1, every=args.train_epochs,
        loss_fn=loss_fn, collection_lr=args.collection_lr, encoding=args.encoding, strict=args.strict,
        mask_timeout=args.mask_timeout, label="prune_lenet5.py",
    )
    prune_epochs = args.pretrain_epochs + (args.iterations - 1) * args.train_epochs
    results = {"prunable_weights": sum(p.numel() for p in pruner.prunable.values()), "iterations": [], "finetune": []}
    started = time.monotonic()
    try:
        for epoch in range(prune_epochs + args.finetune_epochs):
            t0 = time.monotonic()
            loss = train_epoch(model, optimizer, loss_fn, train_batches)
            accuracy = evaluate(model, x_test, y_test)
            phase = "pretrain" if epoch < args.pretrain_epochs else ("train" if epoch < prune_epochs else "finetune")
            print("epoch %d (%s): train loss %.4f, test accuracy %.4f, sparsity %.4f (%.1f s)"
                  % (epoch + 1, phase, loss, accuracy, pruner.sparsity, time.monotonic() - t0), flush=True)
            if phase == "finetune":
                results["finetune"].append({"epoch": epoch + 1, "train_loss": loss, "test_accuracy": accuracy})

            record = pruner.epoch_end(epoch, collect_batches)  # the other added line
            if record is None:
                continue
            after = evaluate(model, x_test, y_test)
            if record.skipped:
                print("iteration %d skipped: %s" % (record.iteration, record.reason), flush=True)
            else:
                print("iteration %d/%d: target sparsity %.4f, achieved %.4f (%d of %d pruned), test accuracy %.4f "
                      "after pruning; %d steps, collect %.1f s, wait %.1f s"
                      % (record.iteration, args.iterations, record.target_sparsity, record.sparsity, record.pruned,
                         record.pruned + record.kept, after, record.steps, record.collect_seconds, record.wait_seconds),
                      flush=True)
            entry = dict(record.__dict__)
            entry["test_accuracy"] = after
            entry["zero_weights"] = sum(int((p == 0).sum()) for p in pruner.prunable.values())
            results["iterations"].append(entry)
    finally:
        pruner.close()

    results["layers"] = {
        name: {"numel": p.numel(), "zeros": int((p == 0).sum())} for name, p in pruner.prunable.items()
    }
    results["final_sparsity"] = pruner.sparsity
    results["status"] = pruner.status
    results["session_id"] = pruner.session_id
    results["seconds"] = time.monotonic() - started
    for name, layer in results["layers"].items():
        print("  %-12s %7d weights, sparsity %.4f" % (name, layer["numel"], layer["zeros"] / layer["numel"]))
    if results["finetune"]:
        best = max(results["finetune"], key=lambda e: e["test_accuracy"])
        print("final: sparsity %.4f, test accuracy %.4f at the last epoch, best %.4f (epoch %d); %.1f s"
              % (pruner.sparsity, results["finetune"][-1]["test_accuracy"], best["test_accuracy"], best["epoch"],
                 results["seconds"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
