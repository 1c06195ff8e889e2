#!/usr/bin/python3
"""Independent check of gcprune-flatness: the top Hessian eigenvalue of a model's test loss by PyTorch autograd
(exact Hessian-vector products, the double-backward that PyHessian and the paper's authors use) and Lanczos in
float64, for weights that `gcprune-flatness --save_weights=PREFIX` wrote.

  /usr/bin/python3 scripts/hessian_torch.py PREFIX.final --examples 2000 [--subspace all|unpruned] [--json out]

The model is rebuilt from the layer text in PREFIX.final.json (conv/linear/maxpool/relu/flatten), the test images
are the first N of Fashion-MNIST's t10k set normalised as the engine does, and the loss is the saved label-smoothed
cross-entropy. 'unpruned' keeps the prunable weights that are exactly 0 fixed (the engine holds pruned weights at
exactly 0; a trained weight is exactly 0 with negligible probability).

Autograd differentiates ReLU and max-pooling as piecewise linear functions (second derivative 0 at the kinks),
whereas central differences of gradients also see kinks crossed within ±ε; comparing both shows how much that
matters at the ε gcprune-flatness uses.
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_weights(prefix):
    with open(prefix + ".json") as f:
        index = json.load(f)
    values = np.fromfile(prefix + ".bin", dtype="<f4")
    params = []
    for p in index["parameters"]:
        params.append((p["name"], np.array(values[p["offset"]:p["offset"] + p["numel"]]).reshape(p["shape"])))
    return index, params


def build_forward(layer_text, params):
    """A functional forward over `params` (tensors in the engine's order) for the layer text."""
    layers = [t.strip() for t in layer_text.split(",") if t.strip()]

    def forward(x, tensors):
        i = 0
        for layer in layers:
            parts = layer.split(":")
            kind = parts[0]
            options = dict(p.split("=") for p in parts[1:] if "=" in p)
            has_bias = "nobias" not in parts
            if kind == "conv":
                w = tensors[i]
                b = tensors[i + 1] if has_bias else None
                i += 2 if has_bias else 1
                x = F.conv2d(x, w, b, stride=int(options.get("stride", 1)), padding=int(options.get("pad", 0)))
            elif kind == "linear":
                w = tensors[i]
                b = tensors[i + 1] if has_bias else None
                i += 2 if has_bias else 1
                x = F.linear(x, w, b)
            elif kind == "maxpool":
                k = int(parts[1])
                x = F.max_pool2d(x, k, stride=int(options.get("stride", k)), padding=int(options.get("pad", 0)))
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "flatten":
                x = x.flatten(1)
            else:
                raise SystemExit(f"hessian_torch: unknown layer '{layer}'")
        return x

    return forward


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)
    return np.frombuffer(data, dtype=np.uint8, offset=8)


def lanczos_top(hvp, dim, free, steps, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(dim) * free
    q /= np.linalg.norm(q)
    basis, alpha, beta = [], [], []
    value = None
    for j in range(steps):
        basis.append(q)
        w = hvp(q) * free
        a = float(q @ w)
        alpha.append(a)
        w = w - a * q - (beta[-1] * basis[-2] if j > 0 else 0.0)
        for _ in range(2):
            for b in basis:
                w -= (b @ w) * b
        bnorm = float(np.linalg.norm(w))
        t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
        values, vectors = np.linalg.eigh(t)
        value, residual = values[-1], abs(bnorm * vectors[-1, -1])
        print(f"  step {j + 1}: top Ritz value {value:.6g}, residual bound {residual:.2g}", flush=True)
        if residual <= 1e-3 * abs(value) or bnorm < 1e-12:
            return value, residual, j + 1
        beta.append(bnorm)
        q = w / bnorm
    return value, residual, steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefix", help="PREFIX.STAGE as written by gcprune-flatness --save_weights")
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--subspace", choices=["all", "unpruned"], default="all")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="append the result to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    index, params = load_weights(args.prefix)
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for _, v in params]
    forward = build_forward(index["model"], tensors)
    images = read_idx(os.path.join(args.data_dir, "t10k-images-idx3-ubyte.gz"))[:args.examples]
    labels = read_idx(os.path.join(args.data_dir, "t10k-labels-idx1-ubyte.gz"))[:args.examples]
    x = (images.astype(np.float32) / np.float32(255.0) - np.float32(0.2860)) / np.float32(0.3530)
    x = torch.tensor(x, dtype=torch.float64).reshape(-1, *index["input_shape"])
    y = torch.tensor(labels.astype(np.int64))
    smoothing = float(index["label_smoothing"])

    sizes = [t.numel() for t in tensors]
    prunable = [name.endswith(".weight") for name, _ in params]
    free = np.concatenate([((v != 0) if (args.subspace == "unpruned" and p) else np.ones(v.size)).reshape(-1)
                           for (_, v), p in zip(params, prunable)]).astype(np.float64)
    loss = F.cross_entropy(forward(x, tensors), y, label_smoothing=smoothing)
    grads = torch.autograd.grad(loss, tensors, create_graph=True)
    accuracy = float((forward(x, tensors).argmax(1) == y).double().mean())
    print(f"hessian_torch: {args.prefix}: loss {float(loss):.6f}, accuracy {accuracy:.4f}, "
          f"{int(free.sum())} free of {free.size} parameters", flush=True)

    def hvp(v):
        pieces = torch.split(torch.tensor(v, dtype=torch.float64), sizes)
        dot = sum((g * p.reshape(g.shape)).sum() for g, p in zip(grads, pieces))
        hv = torch.autograd.grad(dot, tensors, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).numpy()

    start = time.time()
    value, residual, steps = lanczos_top(hvp, free.size, free, args.steps, args.seed)
    result = {"prefix": args.prefix, "subspace": args.subspace, "examples": args.examples, "loss": float(loss),
              "accuracy": accuracy, "top_eigenvalue": value, "residual": residual, "steps": steps,
              "seconds": time.time() - start, "method": "torch autograd double-backward, float64, Lanczos"}
    print(json.dumps(result))
    if args.json:
        existing = []
        if os.path.exists(args.json):
            with open(args.json) as f:
                existing = json.load(f)
        existing.append(result)
        with open(args.json, "w") as f:
            json.dump(existing, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
