#include "train/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <stdexcept>

namespace miras {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
        EVP_MD_CTX_free(ctx_);
        throw std::runtime_error("SHA-256 is unavailable (OpenSSL's libcrypto)");
    }
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::add(const void* data, size_t n) {
    if (n > 0 && EVP_DigestUpdate(ctx_, data, n) != 1) throw std::runtime_error("SHA-256 failed");
}

std::string Sha256::hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx_, md, &n) != 1) throw std::runtime_error("SHA-256 failed");
    std::string out;
    char buf[3];
    for (unsigned i = 0; i < n; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", md[i]);
        out += buf;
    }
    return out;
}

}  // namespace miras
