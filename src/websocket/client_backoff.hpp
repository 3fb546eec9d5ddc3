#pragma once
// Reconnect delays of ebb::websocket::Client, as a pure function so that the
// schedule is tested without sockets or clocks.
#include <algorithm>
#include <chrono>
#include <cmath>

namespace ebb::websocket::detail {

struct Backoff {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{10000};
  double multiplier = 2.0;  ///< >= 1
  double jitter = 0.2;      ///< 0..1
};

/// The delay before reconnect attempt `n` (0 for the first retry):
/// min(max, initial * multiplier^n), scaled by 1 - jitter + 2 * jitter * unit.
/// `unit` is a uniform random number in [0, 1] (clamped), so the result lies
/// in [base * (1 - jitter), base * (1 + jitter)]: jitter may push a delay past
/// `max` by at most that factor, which is what spreads a crowd of clients that
/// all lost the same server. Never negative; huge `n` saturates at `max`.
inline std::chrono::milliseconds backoff_delay(const Backoff& b, int n, double unit) noexcept {
  const double cap = static_cast<double>(b.max.count());
  double base = static_cast<double>(b.initial.count()) *
                std::pow(std::max(b.multiplier, 1.0), static_cast<double>(std::max(n, 0)));
  if (!(base <= cap)) base = cap;  // also catches inf and NaN
  const double jitter = std::clamp(b.jitter, 0.0, 1.0);
  const double factor = 1.0 - jitter + 2.0 * jitter * std::clamp(unit, 0.0, 1.0);
  return std::chrono::milliseconds(
      static_cast<long long>(std::llround(std::max(0.0, base * factor))));
}

}  // namespace ebb::websocket::detail
