#!/usr/bin/python3
"""Prints the torch.optim reference values embedded in optimizer_test.cc.

Each case runs 3 steps on a 3-element float32 tensor with fixed gradients and prints the weights after
every step and the optimizer state after the last one, as C++ initialisers. Run with Debian's
/usr/bin/python3 (torch 1.13): /usr/bin/python3 optimizer_reference.py
"""
import torch

W0 = [0.5, -1.25, 2.0]
GRADS = [[0.1, -0.2, 0.3], [-0.4, 0.05, 0.25], [0.3, 0.3, -0.1]]

CASES = [
    ("kSgdPlain", lambda p: torch.optim.SGD(p, lr=0.1)),
    ("kSgdMomentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("kSgdMomentumWeightDecay", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("kSgdNesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)),
    ("kAdamDefault", lambda p: torch.optim.Adam(p, lr=0.01)),
    ("kAdamWeightDecay", lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6,
                                                    weight_decay=0.01)),
]


def fmt(values):
    return "{" + ", ".join("%.9gf" % v for v in values) + "}"


def main():
    for name, make in CASES:
        w = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
        opt = make([w])
        steps = []
        for g in GRADS:
            w.grad = torch.tensor(g, dtype=torch.float32)
            opt.step()
            steps.append(w.detach().tolist())
        state = opt.state[w]
        slots = []
        if "momentum_buffer" in state and state["momentum_buffer"] is not None:
            slots.append(state["momentum_buffer"].tolist())
        if "exp_avg" in state:
            slots.append(state["exp_avg"].tolist())
            slots.append(state["exp_avg_sq"].tolist())
        print("// %s" % name)
        print("const Reference %s = {{%s}, {%s}};" % (
            name, ", ".join(fmt(s) for s in steps), ", ".join(fmt(s) for s in slots)))


if __name__ == "__main__":
    main()
