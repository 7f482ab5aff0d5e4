#include "stats.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "errors.hpp"
#include "parallel.hpp"

namespace wpf {

void Moments::merge(const Moments& o) {
    nan += o.nan;
    inf += o.inf;
    min = std::min(min, o.min);
    max = std::max(max, o.max);
    if (o.n == 0) return;
    if (n == 0) {
        n = o.n; mean = o.mean; m2 = o.m2; m3 = o.m3; m4 = o.m4;
        return;
    }
    const double na = static_cast<double>(n), nb = static_cast<double>(o.n);
    const double nn = na + nb;
    const double d = o.mean - mean;
    const double d_n = d / nn;
    const double d_n2 = d_n * d_n;
    const double term = d * d_n * na * nb;  // = d^2 na nb / n
    m4 = m4 + o.m4 + term * d_n2 * (na * na - na * nb + nb * nb) + 6.0 * d_n2 * (na * na * o.m2 + nb * nb * m2) +
         4.0 * d_n * (na * o.m3 - nb * m3);
    m3 = m3 + o.m3 + term * d_n * (na - nb) + 3.0 * d_n * (na * o.m2 - nb * m2);
    m2 = m2 + o.m2 + term;
    mean += d_n * nb;
    n += o.n;
}

double Moments::skewness() const {
    if (n == 0 || m2 == 0) return std::numeric_limits<double>::quiet_NaN();
    const double nd = static_cast<double>(n);
    return std::sqrt(nd) * m3 / std::pow(m2, 1.5);
}

double Moments::excess_kurtosis() const {
    if (n == 0 || m2 == 0) return std::numeric_limits<double>::quiet_NaN();
    const double nd = static_cast<double>(n);
    return nd * m4 / (m2 * m2) - 3.0;
}

namespace {

constexpr size_t kBlock = 2048;  // decoded values per block: stays in L1 for the second pass

// Moments of one block of decoded values; two passes over L1-resident data.
__attribute__((target_clones("arch=haswell", "default")))
Moments block_moments(double* x, size_t n) {
    Moments b;
    size_t bad = 0;
#pragma omp simd reduction(+ : bad)
    for (size_t i = 0; i < n; ++i) bad += !(std::fabs(x[i]) <= std::numeric_limits<double>::max());
    if (bad) {
        size_t k = 0;
        for (size_t i = 0; i < n; ++i) {
            if (std::isnan(x[i])) ++b.nan;
            else if (std::isinf(x[i])) ++b.inf;
            else x[k++] = x[i];
        }
        n = k;
        if (n == 0) return b;
    }
    double s = 0, lo = x[0], hi = x[0];
#pragma omp simd reduction(+ : s) reduction(min : lo) reduction(max : hi)
    for (size_t i = 0; i < n; ++i) {
        s += x[i];
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    const double mean = s / static_cast<double>(n);
    double c1 = 0, c2 = 0, c3 = 0, c4 = 0;
#pragma omp simd reduction(+ : c1, c2, c3, c4)
    for (size_t i = 0; i < n; ++i) {
        const double d = x[i] - mean;
        const double d2 = d * d;
        c1 += d;
        c2 += d2;
        c3 += d2 * d;
        c4 += d2 * d2;
    }
    // c1 is the rounding residue of the mean; folding it in makes the block mean exact to
    // double precision even when the values share a large offset.
    const double corr = c1 / static_cast<double>(n);
    b.n = n;
    b.mean = mean + corr;
    b.m2 = c2 - c1 * corr;
    b.m3 = c3 - 3.0 * corr * c2 + 2.0 * c1 * corr * corr;
    b.m4 = c4 - 4.0 * corr * c3 + 6.0 * corr * corr * c2 - 3.0 * c1 * corr * corr * corr;
    b.min = lo;
    b.max = hi;
    return b;
}

// Moments of elements [begin, end) of the view in row-major order.
Moments range_moments(const MatrixView& a, size_t begin, size_t end, const std::atomic<bool>* cancel) {
    std::vector<double> buf(kBlock);
    Moments acc;
    const size_t es = dtype_size(a.dtype);
    size_t i = begin;
    while (i < end) {
        if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled();
        const size_t r = i / a.cols, c = i % a.cols;
        const size_t len = std::min({kBlock, end - i, a.cols - c});
        decode(a.dtype, a.row(r) + c * es, len, buf.data());
        acc.merge(block_moments(buf.data(), len));
        i += len;
    }
    return acc;
}

}  // namespace

Moments moments(const MatrixView& a, int threads, const std::atomic<bool>* cancel) {
    const size_t total = a.size();
    // Below ~1M elements a thread costs more than it saves.
    const int workers = std::max(1, std::min<int>(threads, static_cast<int>(total >> 20) + 1));
    std::vector<Moments> parts(static_cast<size_t>(workers));
    parallel_ranges(workers, total, [&](int w, size_t b, size_t e) {
        parts[static_cast<size_t>(w)] = range_moments(a, b, e, cancel);
    });
    Moments out;
    for (const auto& p : parts) out.merge(p);
    return out;
}

}  // namespace wpf
