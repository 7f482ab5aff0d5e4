// Per-matrix statistics: count, mean, central moments, extremes and non-finite counts.
#pragma once
#include <atomic>
#include <cstdint>
#include <limits>

#include "matrix.hpp"

namespace wpf {

// Moments of the finite elements, accumulated in double by exact merging of small blocks
// (Chan/Pebay), so the result is as good as a pairwise sum over 10^9 values.
struct Moments {
    uint64_t n = 0;                           // finite elements
    double mean = 0, m2 = 0, m3 = 0, m4 = 0;  // sums of (x - mean)^p
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
    uint64_t nan = 0;
    uint64_t inf = 0;

    // Chan/Pebay: exactly the moments of both sets of elements together.
    void merge(const Moments& o);
    double variance() const { return n ? m2 / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN(); }
    double skewness() const;
    double excess_kurtosis() const;
};

// Moments of every element in the view, over `threads` threads. Checks `cancel` between blocks.
Moments moments(const MatrixView& a, int threads, const std::atomic<bool>* cancel = nullptr);

}  // namespace wpf
