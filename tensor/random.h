#pragma once
// A seeded, portable random generator: the same seed gives the same numbers
// on every machine and compiler (no std:: distributions, whose algorithms are
// implementation-defined). xoshiro256** seeded through splitmix64; normals by
// Box-Muller.
#include <cmath>
#include <cstdint>

namespace miras {

class Generator {
public:
    explicit Generator(uint64_t seed = 0) { seed_with(seed); }
    void seed_with(uint64_t seed) {
        uint64_t z = seed;
        for (auto& w : s_) w = splitmix(z);
        has_spare_ = false;
    }
    uint64_t next_u64() {
        uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
        s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3];
        s_[2] ^= t; s_[3] = rotl(s_[3], 45);
        return r;
    }
    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return (double)(next_u64() >> 11) * 0x1.0p-53; }
    // Uniform integer in [0, n).
    uint64_t below(uint64_t n) { return n ? next_u64() % n : 0; }
    double normal() {
        if (has_spare_) { has_spare_ = false; return spare_; }
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        double r = std::sqrt(-2.0 * std::log(u1)), a = 6.283185307179586 * u2;
        spare_ = r * std::sin(a);
        has_spare_ = true;
        return r * std::cos(a);
    }
    // Full state, for checkpoints (resume reproduces the same stream).
    struct State { uint64_t s[4]; double spare; bool has_spare; };
    State state() const { return {{s_[0], s_[1], s_[2], s_[3]}, spare_, has_spare_}; }
    void set_state(const State& st) {
        for (int i = 0; i < 4; ++i) s_[i] = st.s[i];
        spare_ = st.spare; has_spare_ = st.has_spare;
    }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static uint64_t splitmix(uint64_t& z) {
        uint64_t r = (z += 0x9e3779b97f4a7c15ULL);
        r = (r ^ (r >> 30)) * 0xbf58476d1ce4e5b9ULL;
        r = (r ^ (r >> 27)) * 0x94d049bb133111ebULL;
        return r ^ (r >> 31);
    }
    uint64_t s_[4];
    double spare_ = 0;
    bool has_spare_ = false;
};

}  // namespace miras
