#include "nn/init.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace miras::init {
namespace {

void check_fan(int64_t fan, const char* op) {
    if (fan <= 0) throw std::invalid_argument(std::string(op) + ": fan must be positive, got " + std::to_string(fan));
}

}  // namespace

Tensor normal(const Shape& shape, double std, Generator& gen, DType dt) {
    if (!(std >= 0)) throw std::invalid_argument("init::normal: std must be >= 0, got " + std::to_string(std));
    return randn(shape, gen, dt, 0.0, std);
}

Tensor uniform(const Shape& shape, double bound, Generator& gen, DType dt) {
    if (!(bound >= 0)) throw std::invalid_argument("init::uniform: bound must be >= 0, got " + std::to_string(bound));
    return rand(shape, gen, dt, -bound, bound);
}

Tensor lecun_normal(const Shape& shape, int64_t fan_in, Generator& gen, DType dt) {
    check_fan(fan_in, "init::lecun_normal");
    return normal(shape, 1.0 / std::sqrt((double)fan_in), gen, dt);
}

Tensor xavier_uniform(const Shape& shape, int64_t fan_in, int64_t fan_out, Generator& gen, DType dt) {
    check_fan(fan_in, "init::xavier_uniform");
    check_fan(fan_out, "init::xavier_uniform");
    return uniform(shape, std::sqrt(6.0 / (double)(fan_in + fan_out)), gen, dt);
}

}  // namespace miras::init
