#!/usr/bin/python3
"""Prints the splitmix64 outputs and Fisher-Yates permutations that splitmix64_test.cc embeds.

Written from METHOD.md's "Shuffling" paragraph alone (Python integers, reduced mod 2^64), so it checks
the C++ generator independently:
    /usr/bin/python3 tests/pruner_service/causal/testdata/splitmix64_reference.py
"""

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def permutation(rng, n):
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.next() % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def main():
    rng = SplitMix64(42)
    print("first outputs, seed 42:", ", ".join("0x%016XULL" % rng.next() for _ in range(3)))
    rng = SplitMix64(42)
    for epoch in range(3):
        print("seed 42, T = 10, epoch %d: {%s}" % (epoch, ", ".join(str(v) for v in permutation(rng, 10))))
    rng = SplitMix64(43)
    print("seed 43, T = 10, epoch 0: {%s}" % ", ".join(str(v) for v in permutation(rng, 10)))


if __name__ == "__main__":
    main()
