#!/usr/bin/python3
"""Computes the LassoSGD cases that lasso_sgd_test.cc embeds, from METHOD.md §3.3 and §4 alone.

An independent, plain re-implementation (Python loops; β, q and the gradient rounded to float32 after
every operation as the C++ code keeps them, u / residuals / losses in float64) of the truncated-gradient
Lasso with cumulative penalty, including the splitmix64 shuffle, minibatches, early stopping, the best
epoch restore and the "reference ranking" vector (β before the fit's last minibatch update):
    /usr/bin/python3 tests/pruner_service/causal/testdata/lasso_sgd_reference.py
"""
import math

import numpy as np

from splitmix64_reference import SplitMix64, permutation

f32 = np.float32


def fit(X, y, active, *, minibatch, lr0, lr_power, alpha, half_loss, max_epochs, patience, tol, seed,
        clamp=1e12, trace=False):
    T, N = len(X), len(X[0])
    X = [[f32(v) for v in row] for row in X]
    beta = [f32(0)] * N
    q = [f32(0)] * N
    best_beta = list(beta)
    ref_beta = list(beta)
    rng = SplitMix64(seed)
    tau, u = 0, 0.0
    best, bad = math.inf, 0
    losses, best_epoch = [], 0
    for epoch in range(1, max_epochs + 1):
        perm = permutation(rng, T)
        batches = [perm[i:i + minibatch] for i in range(0, T, minibatch)]
        loss_sum = 0.0
        for b, idx in enumerate(batches):
            n = len(idx)
            r = [sum(float(X[i][k]) * float(beta[k]) for k in range(N)) - y[i] for i in idx]
            loss_sum += (0.5 if half_loss else 1.0) * sum(v * v for v in r) / n
            scale = (1.0 if half_loss else 2.0) / n
            coef = [f32(scale * v) for v in r]
            tau += 1
            lr = lr0 / tau ** lr_power
            u += lr * alpha
            if b == len(batches) - 1:
                ref_beta = list(beta)
            for k in range(N):
                if not active[k]:
                    continue
                g = f32(0)
                for c, i in zip(coef, idx):
                    g = f32(g + f32(c * X[i][k]))
                g = f32(min(max(g, -clamp), clamp))
                z = f32(beta[k] - f32(f32(lr) * g))
                if trace and z != 0 and abs(z) <= abs(f32(u)) + abs(q[k]):
                    print("    clipped k=%d z=%.9g" % (k, z))
                if z > 0:
                    nb = f32(max(f32(0), f32(z - f32(f32(u) + q[k]))))
                elif z < 0:
                    nb = f32(min(f32(0), f32(z + f32(f32(u) - q[k]))))
                else:
                    nb = z
                q[k] = f32(q[k] + f32(nb - z))
                beta[k] = nb
            if trace:
                print("  epoch %d update %d: tau=%d lr=%.9g u=%.9g beta=%s q=%s" % (
                    epoch, b, tau, lr, u, [float(v) for v in beta], [float(v) for v in q]))
        loss = loss_sum / len(batches)
        losses.append(loss)
        if loss < best - tol:
            best, bad, best_epoch = loss, 0, epoch
            best_beta = list(beta)
        else:
            bad += 1
            if bad >= patience:
                break
    return dict(beta=[float(v) for v in best_beta], ref=[float(v) for v in ref_beta], losses=losses,
                best_epoch=best_epoch, epochs=len(losses), updates=tau)


def normalise(y):
    mean = sum(y) / len(y)
    return [v / mean if math.isfinite(v / mean) else 0.0 for v in y] if mean != 0 else [0.0] * len(y)


def show(name, res):
    print(name)
    print("  beta      = {%s}" % ", ".join("%.9g" % v for v in res["beta"]))
    print("  reference = {%s}" % ", ".join("%.9g" % v for v in res["ref"]))
    print("  losses    = {%s}" % ", ".join("%.12g" % v for v in res["losses"]))
    print("  best_epoch = %d, epochs = %d, updates = %d" % (res["best_epoch"], res["epochs"], res["updates"]))


# Case 1 (V2 constants except l1, one epoch): T = 3, N = 6, minibatch 2 (batches of 2 and 1), feature 3
# frozen; l1 large enough that the truncation shrinks coefficients of both signs and clips small ones
# (features 4 and 5, of both signs) to exactly 0.
X1 = [[1.0, 0.5, 2.0, 3.0, 0.01, 0.0],
      [0.2, 1.5, 1.0, 1.0, 0.0, 0.03],
      [2.0, 0.1, 0.5, 0.7, 0.01, 0.0]]
y1_raw = [-0.03, 0.01, -0.04]
ACTIVE1 = [1, 1, 1, 0, 1, 1]

# Case 2 (V1 rule: ½ loss, minibatch 1, α = l1): same X, raw targets, three epochs.
# Case 3 (early stop): tol so large that no epoch after the first improves; patience 2.


def main():
    y1 = normalise(y1_raw)
    print("case1 Y =", ["%.12g" % v for v in y1])
    res = fit(X1, y1, ACTIVE1, minibatch=2, lr0=0.1, lr_power=0.1, alpha=0.3 / 6, half_loss=False,
              max_epochs=1, patience=2, tol=1e-7, seed=42, trace=True)
    show("case1 (V2, l1 = 0.3, N = 6, seed 42, 1 epoch)", res)
    res = fit(X1, y1_raw, [1, 1, 1, 1, 1, 1], minibatch=1, lr0=0.01, lr_power=0.25, alpha=1e-4, half_loss=True,
              max_epochs=3, patience=2, tol=1e-7, seed=7, trace=True)
    show("case2 (V1, l1 = 1e-4, seed 7, 3 epochs)", res)
    res = fit(X1, y1, ACTIVE1, minibatch=2, lr0=0.1, lr_power=0.1, alpha=0.3 / 6, half_loss=False,
              max_epochs=30, patience=2, tol=1e9, seed=42)
    show("case3 (case1 with tol = 1e9, 30 epochs)", res)
    res = fit(X1, y1, ACTIVE1, minibatch=2, lr0=0.1, lr_power=0.1, alpha=1e-3 / 6, half_loss=False,
              max_epochs=30, patience=2, tol=1e-7, seed=42)
    show("case4 (V2 defaults, l1 = 1e-3, seed 42, to convergence)", res)


if __name__ == "__main__":
    main()
