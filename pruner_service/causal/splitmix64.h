// The splitmix64 generator and the Fisher–Yates permutation of METHOD.md ("Shuffling") that order the
// causal fits' minibatches, so that a seed gives the same sample order in C++, Python or any language.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_SPLITMIX64_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_SPLITMIX64_H_

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace gcprune::pruner {

// splitmix64 (Steele, Lea & Flood 2014); all arithmetic modulo 2^64:
//   state += 0x9E3779B97F4A7C15; z = state;
//   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//   output z ^ (z >> 31).
// The first output for seed s is therefore computed from state s + 0x9E3779B97F4A7C15.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  uint64_t state() const { return state_; }

 private:
  uint64_t state_;
};

// Overwrites `perm` with a fresh permutation of 0..n-1 (n >= 0; n <= 0 gives an empty vector):
// perm = 0..n-1; for i = n-1 down to 1: j = rng->Next() mod (i + 1); swap perm[i], perm[j].
// Draws exactly max(n - 1, 0) numbers from `rng`. A fit calls this once per epoch on one generator
// seeded with the session seed, so epoch e's order depends on the epochs before it.
inline void ShufflePermutation(int64_t n, SplitMix64* rng, std::vector<int64_t>* perm) {
  perm->resize(static_cast<size_t>(n > 0 ? n : 0));
  std::iota(perm->begin(), perm->end(), int64_t{0});
  for (int64_t i = n - 1; i >= 1; --i) {
    const uint64_t j = rng->Next() % static_cast<uint64_t>(i + 1);
    std::swap((*perm)[static_cast<size_t>(i)], (*perm)[static_cast<size_t>(j)]);
  }
}

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_SPLITMIX64_H_
