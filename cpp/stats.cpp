#include "stats.hpp"
#include "simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "errors.hpp"
#include "parallel.hpp"

namespace wpf {

void Moments::merge(const Moments& o) {
    nan += o.nan;
    inf += o.inf;
    // Unknown (NaN) extremes, as a LoRA delta's, make the merged extremes unknown too.
    const double unknown = std::numeric_limits<double>::quiet_NaN();
    min = std::isnan(min) || std::isnan(o.min) ? unknown : std::min(min, o.min);
    max = std::isnan(max) || std::isnan(o.max) ? unknown : std::max(max, o.max);
    if (o.n == 0) return;
    if (n == 0) {
        n = o.n;
        mean = o.mean;
        m2 = o.m2;
        m3 = o.m3;
        m4 = o.m4;
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

constexpr size_t kBlock = 4096;  // elements per block: partial sums stay accurate, buffers stay in L1/L2

struct F32 {};  // source tags for the fused loads
struct F64 {};

inline double load(F32, const uint8_t* p, size_t i) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return static_cast<double>(f);
}
inline double load(F64, const uint8_t* p, size_t i) {
    double d;
    std::memcpy(&d, p + 8 * i, 8);
    return d;
}

// Moments of n values from their power sums about a shift c close to their mean (so that
// converting to central sums cancels nothing significant).
Moments from_shifted_sums(size_t n, double c, double s1, double s2, double s3, double s4, double lo, double hi) {
    Moments b;
    const double nd = static_cast<double>(n);
    const double delta = s1 / nd;  // block mean - c
    b.n = n;
    b.mean = c + delta;
    b.m2 = std::max(0.0, s2 - s1 * delta);
    b.m3 = s3 - 3.0 * delta * s2 + 2.0 * nd * delta * delta * delta;
    b.m4 = s4 - 4.0 * delta * s3 + 6.0 * delta * delta * s2 - 3.0 * nd * delta * delta * delta * delta;
    b.min = lo;
    b.max = hi;
    return b;
}

// One fused pass over a block, straight from the encoded bytes: decode, shifted power sums in
// double, extremes. Non-finite input shows up as a non-finite mean or m4 and is redone by the caller.
template <typename Src>
WPF_MULTIVERSION Moments fused_block(const uint8_t* p, size_t n, double c) {
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
#pragma omp simd reduction(+ : s1, s2, s3, s4) reduction(min : lo) reduction(max : hi)
    for (size_t i = 0; i < n; ++i) {
        const double x = load(Src{}, p, i);
        const double d = x - c;
        const double d2 = d * d;
        s1 += d;
        s2 += d2;
        s3 += d2 * d;
        s4 += d2 * d2;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    return from_shifted_sums(n, c, s1, s2, s3, s4, lo, hi);
}

// BF16 read as 32-bit words: each word holds two values, exactly word << 16 and word & 0xFFFF0000
// as floats. Order does not matter for sums and extremes, so no shuffles are needed.
WPF_MULTIVERSION
Moments fused_bf16(const uint8_t* p, size_t n, double c) {
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
    const size_t words = n / 2;
#pragma omp simd reduction(+ : s1, s2, s3, s4) reduction(min : lo) reduction(max : hi)
    for (size_t i = 0; i < words; ++i) {
        uint32_t w;
        std::memcpy(&w, p + 4 * i, 4);
        const double x0 = __builtin_bit_cast(float, w << 16);
        const double x1 = __builtin_bit_cast(float, w & 0xFFFF0000u);
        const double d0 = x0 - c, d1 = x1 - c;
        const double q0 = d0 * d0, q1 = d1 * d1;
        s1 += d0 + d1;
        s2 += q0 + q1;
        s3 += q0 * d0 + q1 * d1;
        s4 += q0 * q0 + q1 * q1;
        lo = std::min(lo, std::min(x0, x1));
        hi = std::max(hi, std::max(x0, x1));
    }
    if (n % 2) {
        uint16_t h;
        std::memcpy(&h, p + 2 * (n - 1), 2);
        const double x = __builtin_bit_cast(float, static_cast<uint32_t>(h) << 16);
        const double d = x - c;
        s1 += d;
        s2 += d * d;
        s3 += d * d * d;
        s4 += d * d * d * d;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    return from_shifted_sums(n, c, s1, s2, s3, s4, lo, hi);
}

Moments fused(DType t, const uint8_t* p, size_t n, double c) {
    if (t == DType::BF16) return fused_bf16(p, n, c);
    return t == DType::F32 ? fused_block<F32>(p, n, c) : fused_block<F64>(p, n, c);
}

bool finite_sums(const Moments& m) { return std::isfinite(m.mean) && std::isfinite(m.m4); }

// Moments of elements [first, first + n) of the encoded row at `row`. buf holds kBlock doubles
// of scratch.
Moments block_moments(DType t, const uint8_t* row, size_t first, size_t n, double c, double* buf) {
    const bool direct = t == DType::BF16 || t == DType::F32 || t == DType::F64;
    if (direct) {
        Moments m = fused(t, row + encoded_bytes(t, first), n, c);
        if (finite_sums(m)) return m;
    }
    decode_range(t, row, first, n, buf);
    Moments m;
    if (!direct) {
        m = fused(DType::F64, reinterpret_cast<const uint8_t*>(buf), n, c);
        if (finite_sums(m)) return m;
    }
    // Rare path: drop NaN and Inf, count them, and measure the rest.
    size_t k = 0;
    Moments bad;
    for (size_t i = 0; i < n; ++i) {
        if (std::isnan(buf[i]))
            ++bad.nan;
        else if (std::isinf(buf[i]))
            ++bad.inf;
        else
            buf[k++] = buf[i];
    }
    m = k ? fused(DType::F64, reinterpret_cast<const uint8_t*>(buf), k, std::isfinite(c) ? c : buf[0]) : Moments{};
    m.nan += bad.nan;
    m.inf += bad.inf;
    return m;
}

// Moments of elements [begin, end) of the view in row-major order.
Moments range_moments(const MatrixView& a, size_t begin, size_t end, const std::atomic<bool>* cancel) {
    std::vector<double> buf(kBlock);
    Moments acc;
    double shift = 0;
    bool have_shift = false;
    size_t i = begin;
    while (i < end) {
        if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled();
        const size_t r = i / a.cols, c = i % a.cols;
        const size_t len = std::min({kBlock, end - i, a.cols - c});
        const uint8_t* row = a.row(r);
        if (!have_shift) {
            // The first value of the range: within a few std of the mean for any sane data.
            double first;
            decode_range(a.dtype, row, c, 1, &first);
            shift = std::isfinite(first) ? first : 0.0;
            have_shift = true;
        }
        acc.merge(block_moments(a.dtype, row, c, len, acc.n ? acc.mean : shift, buf.data()));
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
    parallel_ranges(workers, total,
                    [&](int w, size_t b, size_t e) { parts[static_cast<size_t>(w)] = range_moments(a, b, e, cancel); });
    Moments out;
    for (const auto& p : parts) out.merge(p);
    return out;
}

}  // namespace wpf
