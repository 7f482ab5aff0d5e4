#include "sketch.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "dtype.hpp"
#include "errors.hpp"
#include "parallel.hpp"
#include "simd.hpp"

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

namespace {

// Column tiles of at most this many values: a tile's row sum and decoded row stay in L1.
constexpr size_t kTileValues = 1024;

// Column tiles of the matrix (whole quantization blocks where a block fits), at least one per
// worker so that the workers share the columns.
struct Tiles {
    size_t width = 0, count = 0;
};

Tiles column_tiles(size_t cols, DType dtype, int threads) {
    const size_t block = block_elements(dtype);
    const size_t align = block > 1 ? block : 16;
    const size_t workers = static_cast<size_t>(std::max(1, threads));
    const size_t fewest = (cols + kTileValues - 1) / kTileValues;
    const size_t count = (std::max(fewest, workers) + workers - 1) / workers * workers;
    size_t width = (cols + count - 1) / count;
    if (width >= align) width = (width + align - 1) / align * align;
    return {width, (cols + width - 1) / width};
}

// sum[j] += s * x[j]: the add every element of the matrix goes through.
WPF_MULTIVERSION void add_scaled(double* __restrict sum, const double* __restrict x, double s, size_t n) {
    for (size_t j = 0; j < n; ++j) sum[j] += s * x[j];
}

// The same add straight from BF16.
WPF_MULTIVERSION void add_scaled_bf16(double* __restrict sum, const uint8_t* __restrict src, double s, size_t n) {
    for (size_t j = 0; j < n; ++j) sum[j] += s * bf16_at(src, j);
}

}  // namespace

std::vector<double> count_sketch(const MatrixView& a, size_t buckets, int threads, const std::atomic<bool>* cancel) {
    check_sketch(buckets);
    const size_t n = a.cols, mask = buckets - 1;
    std::vector<double> out(buckets, 0.0);
    if (a.rows == 0 || n == 0) return out;
    // A position's bucket and sign come from a row hash and a column hash: (r ^ c) picks the
    // bucket, the product of their top bits the sign; two positions collide with chance 1/buckets.
    std::vector<uint32_t> col_bucket(n);
    std::vector<double> col_sign(n);
    for (size_t j = 0; j < n; ++j) {
        const uint64_t h = mix(j ^ 0x5EEDC01ull);
        col_bucket[j] = static_cast<uint32_t>(h & mask);
        col_sign[j] = (h >> 63) ? -1.0 : 1.0;
    }
    std::vector<uint32_t> row_bucket(a.rows);
    std::vector<double> row_sign(a.rows);
    for (size_t i = 0; i < a.rows; ++i) {
        const uint64_t h = mix(i ^ 0x5EEDB0Bull);
        row_bucket[i] = static_cast<uint32_t>(h & mask);
        row_sign[i] = (h >> 63) ? -1.0 : 1.0;
    }
    // The bucket is (row bucket) ^ (column bucket) and the sign a product, so the rows of one row
    // bucket are summed first (signed; a vectorized add per element into a sum that stays in L1)
    // and only their sum is scattered: rows / buckets times fewer scattered adds. Rows are taken
    // bucket by bucket (a counting sort, ascending within a bucket).
    std::vector<size_t> start(buckets + 1, 0);
    for (uint32_t r : row_bucket) ++start[r + 1];
    for (size_t b = 0; b < buckets; ++b) start[b + 1] += start[b];
    std::vector<size_t> order(a.rows);
    {
        std::vector<size_t> next(start.begin(), start.end() - 1);
        for (size_t i = 0; i < a.rows; ++i) order[next[row_bucket[i]]++] = i;
    }
    const bool direct = a.dtype == DType::BF16;
    const Tiles tiles = column_tiles(n, a.dtype, threads);
    const int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(1, threads)), tiles.count));
    std::vector<std::vector<double>> partial(static_cast<size_t>(workers));
    std::vector<int> finite(static_cast<size_t>(workers), 1);
    parallel_ranges(workers, tiles.count, [&](int w, size_t t0, size_t t1) {
        std::vector<double>& acc = partial[static_cast<size_t>(w)];
        acc.assign(buckets, 0.0);
        std::vector<double> sum(tiles.width), row(direct ? 0 : tiles.width);
        for (size_t t = t0; t < t1; ++t) {
            const size_t c0 = t * tiles.width, len = std::min(tiles.width, n - c0);
            const uint64_t tile_offset = encoded_bytes(a.dtype, c0), tile_bytes = encoded_bytes(a.dtype, len);
            for (size_t r = 0; r < buckets; ++r) {
                if (start[r] == start[r + 1]) continue;
                if (cancel && cancel->load(std::memory_order_relaxed)) return;
                std::fill(sum.begin(), sum.begin() + len, 0.0);
                for (size_t k = start[r]; k < start[r + 1]; ++k) {
                    const size_t i = order[k];
                    // Rows come in hash order, which no hardware prefetcher can follow.
                    if (k + 2 < a.rows) {
                        const uint8_t* ahead = a.row(order[k + 2]) + tile_offset;
                        for (uint64_t b = 0; b < tile_bytes; b += 64) __builtin_prefetch(ahead + b);
                    }
                    if (direct) {
                        add_scaled_bf16(sum.data(), a.row(i) + 2 * c0, row_sign[i], len);
                    } else {
                        decode_range(a.dtype, a.row(i), c0, len, row.data());
                        add_scaled(sum.data(), row.data(), row_sign[i], len);
                    }
                }
                // A NaN or Inf among the rows leaves the sum not finite.
                if (!all_finite(sum.data(), len)) {
                    finite[static_cast<size_t>(w)] = 0;
                    return;
                }
                for (size_t j = 0; j < len; ++j) acc[r ^ col_bucket[c0 + j]] += col_sign[c0 + j] * sum[j];
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
