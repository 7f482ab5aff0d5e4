#include "sketch.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "dtype.hpp"
#include "errors.hpp"
#include "panels.hpp"
#include "parallel.hpp"

namespace wpf {

namespace {

// SplitMix64's finalizer: a fixed, well-mixed hash of a position (the same on every platform).
uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

}  // namespace

void check_sketch(size_t buckets) {
    if (buckets < 2 || buckets > (size_t{1} << 16) || (buckets & (buckets - 1)) != 0)
        throw std::invalid_argument("count_sketch: " + std::to_string(buckets) +
                                    " buckets (a power of two from 2 to 65536 expected)");
}

std::vector<double> count_sketch(const MatrixView& a, size_t buckets, int threads, const std::atomic<bool>* cancel) {
    check_sketch(buckets);
    const size_t n = a.cols, mask = buckets - 1;
    std::vector<double> out(buckets, 0.0);
    if (a.rows == 0 || n == 0) return out;
    // A position's bucket and sign come from a row hash and a column hash: (r ^ c) picks the
    // bucket, the product of their top bits the sign; two positions collide with chance 1/buckets.
    std::vector<uint64_t> col_hash(n);
    std::vector<double> col_sign(n);
    for (size_t j = 0; j < n; ++j) {
        col_hash[j] = mix(j ^ 0x5EEDC01ull);
        col_sign[j] = (col_hash[j] >> 63) ? -1.0 : 1.0;
    }
    const size_t panel = cache_panel_rows(n);
    const int workers = panel_workers(a.rows, panel, threads);
    std::vector<std::vector<double>> partial(static_cast<size_t>(workers));
    std::vector<int> finite(static_cast<size_t>(workers), 1);
    parallel_ranges(workers, a.rows, [&](int w, size_t r0, size_t r1) {
        std::vector<double>& acc = partial[static_cast<size_t>(w)];
        acc.assign(buckets, 0.0);
        std::vector<double> buf(panel * n);
        for (size_t p0 = r0; p0 < r1 && !(cancel && *cancel); p0 += panel) {
            const size_t rows = std::min(panel, r1 - p0);
            if (!decode_panel(a, p0, rows, buf.data())) {
                finite[static_cast<size_t>(w)] = 0;
                return;
            }
            for (size_t i = 0; i < rows; ++i) {
                const uint64_t rh = mix((p0 + i) ^ 0x5EEDB0Bull);
                const double rs = (rh >> 63) ? -1.0 : 1.0;
                const double* row = buf.data() + i * n;
                for (size_t j = 0; j < n; ++j) acc[(rh ^ col_hash[j]) & mask] += rs * col_sign[j] * row[j];
            }
        }
    });
    if (cancel && *cancel) throw Cancelled();
    for (int ok : finite) require_finite(ok != 0);
    for (const auto& acc : partial)
        for (size_t b = 0; b < buckets; ++b) out[b] += acc[b];
    return out;
}

}  // namespace wpf
