#!/usr/bin/python3
"""Prints the torch.optim.lr_scheduler reference values embedded in lr_schedule_test.cc.

Each scheduler is stepped once per unit as in a training loop; the printed value at index t is the
learning rate in force during unit t. Run with Debian's /usr/bin/python3 (torch 1.13).
"""
import torch


def trace(make_scheduler, base_lr, units):
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=base_lr)
    sched = make_scheduler(opt)
    values = []
    for _ in range(units):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values


def fmt(values):
    return "{" + ", ".join(repr(v) for v in values) + "}"


def main():
    from torch.optim.lr_scheduler import CosineAnnealingLR, StepLR
    print("// CosineAnnealingLR(T_max=10, eta_min=0.001), base 0.1, 25 epochs (past T_max)")
    print("const std::vector<double> kCosine10 = %s;" % fmt(
        trace(lambda o: CosineAnnealingLR(o, T_max=10, eta_min=0.001), 0.1, 25)))
    print("// CosineAnnealingLR(T_max=7, eta_min=0), base 0.05, 8 steps")
    print("const std::vector<double> kCosine7 = %s;" % fmt(
        trace(lambda o: CosineAnnealingLR(o, T_max=7), 0.05, 8)))
    print("// StepLR(step_size=3, gamma=0.5), base 0.1, 10 epochs")
    print("const std::vector<double> kStep3 = %s;" % fmt(
        trace(lambda o: StepLR(o, step_size=3, gamma=0.5), 0.1, 10)))


if __name__ == "__main__":
    main()
