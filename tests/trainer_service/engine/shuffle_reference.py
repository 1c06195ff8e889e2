#!/usr/bin/python3
"""Prints the epoch permutations embedded in dataset_test.cc: one splitmix64 generator seeded with the
seed draws one Fisher-Yates permutation per epoch (METHOD.md, "Shuffling"). Pure Python, no packages.
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


def permutation(n, rng):
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.next() % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def main():
    print("// splitmix64(0): first three outputs")
    rng = SplitMix64(0)
    print("{" + ", ".join("0x%016XULL" % rng.next() for _ in range(3)) + "}")
    print("// seed 314159, n = 10, epochs 0, 1, 2")
    rng = SplitMix64(314159)
    for _ in range(3):
        print("{" + ", ".join(str(v) for v in permutation(10, rng)) + "},")


if __name__ == "__main__":
    main()
