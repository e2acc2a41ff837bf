#pragma once
// SHA-256 (OpenSSL's libcrypto), fed in pieces: the hash of checkpoints
// (train/checkpoint.h) and the fingerprint of a byte corpus (train/tasks.h).
#include <cstddef>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace miras {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void add(const void* data, size_t n);
    void add(std::string_view s) { add(s.data(), s.size()); }
    // The digest as 64 lowercase hex digits; the object is spent afterwards.
    std::string hex();

private:
    evp_md_ctx_st* ctx_;
};

}  // namespace miras
