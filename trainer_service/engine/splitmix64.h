// The portable splitmix64 generator and the Fisher–Yates permutation of METHOD.md's "Shuffling"
// paragraph, so a seed gives the same sample order in C++, Python or any other language.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_SPLITMIX64_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_SPLITMIX64_H_

#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace gcprune::trainer {

// splitmix64 (Steele, Lea & Flood 2014). All arithmetic is modulo 2^64:
//   state += 0x9E3779B97F4A7C15; z = state;
//   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//   output z ^ (z >> 31).
// The state is a counter, so skipping n outputs is one multiplication (Skip).
class SplitMix64 {
 public:
  static constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += kGamma;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // Advances the generator as if Next() had been called `n` times.
  void Skip(uint64_t n) { state_ += n * kGamma; }

  uint64_t state() const { return state_; }

 private:
  uint64_t state_;
};

// Overwrites `perm` with a permutation of 0..n-1 (n >= 0): perm = 0..n-1; for i = n-1 down to 1:
// j = rng.Next() mod (i + 1); swap perm[i], perm[j]. Draws exactly max(n - 1, 0) numbers.
inline void FisherYatesPermutation(int64_t n, SplitMix64* rng, std::vector<int64_t>* perm) {
  perm->resize(static_cast<size_t>(n > 0 ? n : 0));
  std::iota(perm->begin(), perm->end(), int64_t{0});
  for (int64_t i = n - 1; i >= 1; --i) {
    const uint64_t j = rng->Next() % static_cast<uint64_t>(i + 1);
    std::swap((*perm)[static_cast<size_t>(i)], (*perm)[static_cast<size_t>(j)]);
  }
}

// The permutation of epoch `epoch` (>= 0) of `n` samples under `seed`: the one a single generator
// seeded with `seed` produces when it draws one Fisher–Yates permutation per epoch, epochs 0, 1, ...
// in order. Because each permutation draws exactly n - 1 numbers, epoch e starts from the generator
// skipped by e * (n - 1) outputs, so any epoch costs O(n) without drawing the earlier ones.
inline void EpochPermutation(uint64_t seed, int64_t epoch, int64_t n, std::vector<int64_t>* perm) {
  SplitMix64 rng(seed);
  if (n > 1 && epoch > 0) rng.Skip(static_cast<uint64_t>(epoch) * static_cast<uint64_t>(n - 1));
  FisherYatesPermutation(n, &rng, perm);
}

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_SPLITMIX64_H_
