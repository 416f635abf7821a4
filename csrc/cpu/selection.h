// Turning accumulated sums into selection keys and distances, and the tie rules of
// docs/reselection.md, for the CPU kernels.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "plan.h"

namespace gamdss::cpu {

// uint8 sums are exact int64; keys compare exactly. Centered key: D*sum(d^2) - (sum d)^2.
inline int64_t selection_key(int64_t sq, int64_t lin, Distance dist, int64_t d) {
  return dist == Distance::kCentered ? d * sq - lin * lin : sq;
}
inline double distance_from_key(int64_t key, Distance dist, int64_t d) {
  return dist == Distance::kCentered ? std::sqrt(static_cast<double>(key) / static_cast<double>(d))
                                     : std::sqrt(static_cast<double>(key));
}

// Floating sums: centered key sum(d^2) - (sum d)^2 / D. NaN ranks below every number.
inline double selection_key(double sq, double lin, Distance dist, int64_t d) {
  const double key = dist == Distance::kCentered ? sq - lin * lin / static_cast<double>(d) : sq;
  return std::isnan(key) ? -std::numeric_limits<double>::infinity() : key;
}
inline double distance_from_key(double key, Distance, int64_t) {
  return std::sqrt(key > 0.0 ? key : 0.0);
}

// Rise: larger key, then smaller |o - n_o| + |a - n_a|, then smaller o, then smaller a.
template <typename Key>
struct RiseBest {
  bool any = false;
  Key key{};
  int64_t cost = 0, o = 0, a = 0;
  void offer(Key k, int64_t o_, int64_t a_, const ClipPlan& c) {
    const int64_t cost_ = std::llabs(o_ - c.n_o) + std::llabs(a_ - c.n_a);
    const bool better =
        !any || k > key ||
        (k == key && (cost_ < cost || (cost_ == cost && (o_ < o || (o_ == o && a_ < a)))));
    if (better) {
      any = true;
      key = k;
      cost = cost_;
      o = o_;
      a = a_;
    }
  }
};

// Fall: larger key, then smaller |f - n_f|, then smaller f.
template <typename Key>
struct FallBest {
  bool any = false;
  Key key{};
  int64_t cost = 0, f = 0;
  void offer(Key k, int64_t f_, const ClipPlan& c) {
    const int64_t cost_ = std::llabs(f_ - c.n_f);
    const bool better = !any || k > key || (k == key && (cost_ < cost || (cost_ == cost && f_ < f)));
    if (better) {
      any = true;
      key = k;
      cost = cost_;
      f = f_;
    }
  }
};

}  // namespace gamdss::cpu
