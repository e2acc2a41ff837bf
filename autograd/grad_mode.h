#pragma once
// Whether ops record graph nodes. Thread-local, like PyTorch's GradMode; the
// engine sets it to `create_graph` while it runs backward formulas, which is
// the whole mechanism behind gradients of gradients.

namespace miras {

bool grad_enabled();
void set_grad_enabled(bool on);

// RAII: sets grad mode for a scope and restores the previous mode.
class GradModeGuard {
public:
    explicit GradModeGuard(bool on) : prev_(grad_enabled()) { set_grad_enabled(on); }
    ~GradModeGuard() { set_grad_enabled(prev_); }
    GradModeGuard(const GradModeGuard&) = delete;
    GradModeGuard& operator=(const GradModeGuard&) = delete;
private:
    bool prev_;
};

struct NoGradGuard : GradModeGuard { NoGradGuard() : GradModeGuard(false) {} };
struct EnableGradGuard : GradModeGuard { EnableGradGuard() : GradModeGuard(true) {} };

}  // namespace miras
