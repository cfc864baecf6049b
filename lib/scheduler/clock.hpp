// The injected clock. Nothing below daemon/ reads the system clock: the daemon passes the
// real one, `--once --as-of` and tests pass a fixed or manually advanced one.
#pragma once

#include <chrono>

namespace billingd::scheduler {

class clock {
  public:
    virtual ~clock() = default;
    virtual std::chrono::sys_seconds now() const = 0;
};

class system_clock final : public clock {
  public:
    std::chrono::sys_seconds now() const override {
        return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    }
};

// A test clock (like Stripe's test clocks): stays where it is put.
class manual_clock final : public clock {
  public:
    explicit manual_clock(std::chrono::sys_seconds t) : now_(t) {}
    std::chrono::sys_seconds now() const override { return now_; }
    void set(std::chrono::sys_seconds t) { now_ = t; }
    void advance(std::chrono::seconds d) { now_ += d; }

  private:
    std::chrono::sys_seconds now_;
};

}  // namespace billingd::scheduler
