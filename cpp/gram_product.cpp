#include "gram_product.hpp"
#include "simd.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "errors.hpp"
#include "parallel.hpp"

namespace wpf {

namespace {

// Vectors of 16 floats (one AVX-512 register) where the CPU has AVX-512, else of 8 (one AVX2
// register): GCC lowers a 64-byte vector on AVX2 through memory and general registers, which
// measured 2-8 GFLOP/s per core on an AVX2-only EPYC. aligned(4): unaligned loads and stores.
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef float v8 __attribute__((vector_size(32), aligned(4)));

constexpr size_t kLanes = kBlockMultiple;  // columns of a block: one v16, two v8
constexpr int kMaxVectors = 4;             // v16 per pass: 64 columns, accumulators in registers
constexpr size_t kRows = 4;                // rows of A per tile
// Rows per tile when a row of the block is a single v16 (16 columns): 8 accumulator chains, as
// two 512-bit FMA ports with 4-cycle latency need; 4 would leave half the ports idle.
constexpr size_t kSingleVectorRows = 8;

// WPF_VECTOR_FLOATS=8 or 16 overrides the CPU's choice, so that each kernel can be tested on
// any machine (16 on a CPU without AVX-512 is correct, only slow).
bool wide_vectors() {
    static const bool wide = [] {
        const char* forced = std::getenv("WPF_VECTOR_FLOATS");
        if (forced && std::strcmp(forced, "16") == 0) return true;
        if (forced && std::strcmp(forced, "8") == 0) return false;
#if defined(__x86_64__) && defined(__GNUC__)
        return static_cast<bool>(__builtin_cpu_supports("avx512f"));
#else
        return false;
#endif
    }();
    return wide;
}

size_t tile_rows(size_t pw) { return wide_vectors() && pw == kLanes ? kSingleVectorRows : kRows; }

// Kernels on R rows of decoded values a (row stride lda, n columns) and blocks of row length pw,
// columns c0 .. c0 + W vectors of V.

// out[r] += sum_p a[r][p] x[p]
template <typename V, int R, int W>
WPF_MULTIVERSION void dot_rows(const float* a, size_t lda, size_t n, const float* x, size_t pw, size_t c0, float* out) {
    constexpr size_t L = sizeof(V) / sizeof(float);
    V acc[R][W];
    for (int r = 0; r < R; ++r)
        for (int w = 0; w < W; ++w) std::memcpy(&acc[r][w], out + r * pw + c0 + w * L, sizeof(V));
    for (size_t p = 0; p < n; ++p) {
        V xv[W];
        for (int w = 0; w < W; ++w) std::memcpy(&xv[w], x + p * pw + c0 + w * L, sizeof(V));
        for (int r = 0; r < R; ++r) {
            const float s = a[r * lda + p];
            for (int w = 0; w < W; ++w) acc[r][w] += s * xv[w];
        }
    }
    for (int r = 0; r < R; ++r)
        for (int w = 0; w < W; ++w) std::memcpy(out + r * pw + c0 + w * L, &acc[r][w], sizeof(V));
}

// y[p] += sum_r a[r][p] z[r]
template <typename V, int R, int W>
WPF_MULTIVERSION void axpy_rows(const float* a, size_t lda, size_t n, const float* z, size_t pw, size_t c0, float* y) {
    constexpr size_t L = sizeof(V) / sizeof(float);
    V zv[R][W];
    for (int r = 0; r < R; ++r)
        for (int w = 0; w < W; ++w) std::memcpy(&zv[r][w], z + r * pw + c0 + w * L, sizeof(V));
    for (size_t p = 0; p < n; ++p) {
        float* yp = y + p * pw + c0;
        V yv[W];
        for (int w = 0; w < W; ++w) std::memcpy(&yv[w], yp + w * L, sizeof(V));
        for (int r = 0; r < R; ++r) {
            const float s = a[r * lda + p];
            for (int w = 0; w < W; ++w) yv[w] += s * zv[r][w];
        }
        for (int w = 0; w < W; ++w) std::memcpy(yp + w * L, &yv[w], sizeof(V));
    }
}

// fn(vector type, vectors, c0) over all columns: with wide vectors up to kMaxVectors v16 at a
// time, else one 16-column block (two v8) at a time, so that kRows rows of accumulators fit in
// AVX2's 16 registers.
template <typename Fn>
void by_column_chunks(size_t pw, Fn&& fn) {
    if (!wide_vectors()) {
        for (size_t c0 = 0; c0 < pw; c0 += kLanes) fn(v8{}, std::integral_constant<int, 2>{}, c0);
        return;
    }
    for (size_t c0 = 0; c0 < pw; c0 += kMaxVectors * kLanes) {
        switch (std::min<size_t>(kMaxVectors, (pw - c0) / kLanes)) {
            case 1: fn(v16{}, std::integral_constant<int, 1>{}, c0); break;
            case 2: fn(v16{}, std::integral_constant<int, 2>{}, c0); break;
            case 3: fn(v16{}, std::integral_constant<int, 3>{}, c0); break;
            default: fn(v16{}, std::integral_constant<int, 4>{}, c0); break;
        }
    }
}

// Both kernels over all columns; rows: 1, kRows or kSingleVectorRows.
template <int R>
void dot_all(const float* a, size_t lda, size_t n, const float* x, size_t pw, float* out) {
    by_column_chunks(pw, [&](auto v, auto w, size_t c0) {
        dot_rows<decltype(v), R, decltype(w)::value>(a, lda, n, x, pw, c0, out);
    });
}

template <int R>
void axpy_all(const float* a, size_t lda, size_t n, const float* z, size_t pw, float* y) {
    by_column_chunks(
        pw, [&](auto v, auto w, size_t c0) { axpy_rows<decltype(v), R, decltype(w)::value>(a, lda, n, z, pw, c0, y); });
}

void dot(size_t rows, const float* a, size_t lda, size_t n, const float* x, size_t pw, float* out) {
    if (rows == kSingleVectorRows)
        dot_all<kSingleVectorRows>(a, lda, n, x, pw, out);
    else if (rows == kRows)
        dot_all<kRows>(a, lda, n, x, pw, out);
    else
        for (size_t r = 0; r < rows; ++r) dot_all<1>(a + r * lda, lda, n, x, pw, out + r * pw);
}

void axpy(size_t rows, const float* a, size_t lda, size_t n, const float* z, size_t pw, float* y) {
    if (rows == kSingleVectorRows)
        axpy_all<kSingleVectorRows>(a, lda, n, z, pw, y);
    else if (rows == kRows)
        axpy_all<kRows>(a, lda, n, z, pw, y);
    else
        for (size_t r = 0; r < rows; ++r) axpy_all<1>(a + r * lda, lda, n, z + r * pw, pw, y);
}

// The two products on a panel of rows of A, by chunks of kChunk columns: each chunk of x (or
// y) is used by every row of the panel while it sits in L1, instead of streaming all of x and
// y (512 KB each at 4096 x 32) through the cache for every kRows rows. Measured on a 2-core
// AVX2 EPYC, 32 columns: 88 -> 119 GFLOP/s (4096^2), 100 -> 126 (14336 x 4096), 99 -> 115
// (4096 x 14336); chunks of 256 and tiles of 6 rows measured no better.
constexpr size_t kChunk = 128;

// fn(tile rows, first row, first column, columns) over a panel of `rows` x n, by chunks of
// columns and, within each, tiles of rows.
template <typename Fn>
void by_tiles(size_t rows, size_t n, size_t pw, Fn&& fn) {
    const size_t tile = tile_rows(pw);
    for (size_t c0 = 0; c0 < n; c0 += kChunk) {
        const size_t cn = std::min(kChunk, n - c0);
        for (size_t r = 0; r < rows; r += tile) fn(std::min(tile, rows - r), r, c0, cn);
    }
}

// out (rows x pw) += a (rows x n) x (n x pw)
void panel_dot(size_t rows, const float* a, size_t lda, size_t n, const float* x, size_t pw, float* out) {
    by_tiles(rows, n, pw, [&](size_t tile, size_t r, size_t c0, size_t cn) {
        dot(tile, a + r * lda + c0, lda, cn, x + c0 * pw, pw, out + r * pw);
    });
}

// y (n x pw) += a^T (n x rows) z (rows x pw)
void panel_axpy(size_t rows, const float* a, size_t lda, size_t n, const float* z, size_t pw, float* y) {
    by_tiles(rows, n, pw, [&](size_t tile, size_t r, size_t c0, size_t cn) {
        axpy(tile, a + r * lda + c0, lda, cn, z + r * pw, pw, y + c0 * pw);
    });
}

bool rows_finite(const float* a, size_t lda, size_t rows, size_t n) {
    for (size_t r = 0; r < rows; ++r)
        if (!all_finite(a + r * lda, n)) return false;
    return true;
}

// Rows of A per panel: a decoded tall panel (16 x 4096 floats) stays in L2 for both products.
constexpr size_t kPanelRows = 16;

// Columns of a wide A per decoded panel (16 x 2048 floats), and per worker's slice of A^T x.
constexpr size_t kSlice = 2048;

}  // namespace

GramProduct::GramProduct(const MatrixView& a, int width, int threads) : a_(a), wide_(a.rows < a.cols), width_(width) {
    direct_ = a.dtype == DType::F32 && a.single_group() && reinterpret_cast<uintptr_t>(a.data) % alignof(float) == 0;
    s_ = wide_ ? a.rows : a.cols;
    l_ = wide_ ? a.cols : a.rows;
    pw_ = (static_cast<size_t>(width) + kLanes - 1) / kLanes * kLanes;
    // A worker needs enough rows (or, wide, columns) to pay for starting it.
    workers_ =
        static_cast<int>(std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(1, threads)), l_ / 64)));
    x_.assign(s_ * pw_, 0.0f);
    work_.assign((wide_ ? l_ : s_ * static_cast<size_t>(workers_)) * pw_, 0.0f);
    if (wide_) y_.assign(s_ * pw_, 0.0f);
}

void GramProduct::apply(const float* x, float* y) {
    const size_t w = static_cast<size_t>(width_);
    for (size_t c = 0; c < w; ++c)
        for (size_t p = 0; p < s_; ++p) x_[p * pw_ + c] = x[p + c * s_];
    require_finite(wide_ ? apply_wide() : apply_tall());
    checked_ = true;
    const size_t parts = wide_ ? 1 : static_cast<size_t>(workers_);
    const float* src = wide_ ? y_.data() : work_.data();
    for (size_t p = 0; p < s_; ++p)
        for (size_t c = 0; c < w; ++c) {
            float sum = 0;
            for (size_t t = 0; t < parts; ++t) sum += src[(t * s_ + p) * pw_ + c];
            y[p + c * s_] = sum;
        }
}

// Rows i .. i+rows, columns j0 .. j0+n of A as floats with row stride lda: in place, or decoded
// into tile.
const float* GramProduct::rows_at(size_t i, size_t rows, size_t j0, size_t n, float* tile, size_t& lda) const {
    if (direct_) {
        lda = a_.row_stride;
        return reinterpret_cast<const float*>(a_.row(i)) + j0;
    }
    for (size_t r = 0; r < rows; ++r) decode_range(a_.dtype, a_.row(i + r), j0, n, tile + r * n);
    lda = n;
    return tile;
}

// Tall A (l x s): per panel of rows, z = panel x, then y += panel^T z; each worker sums into its
// own copy of y. False if the first call met NaN or Inf.
bool GramProduct::apply_tall() {
    std::atomic<bool> finite{true};
    parallel_ranges(workers_, l_, [&](int w, size_t begin, size_t end) {
        float* part = work_.data() + static_cast<size_t>(w) * s_ * pw_;
        std::fill(part, part + s_ * pw_, 0.0f);
        std::vector<float> tile(direct_ ? 0 : kPanelRows * s_), z(kPanelRows * pw_);
        for (size_t i = begin; i < end; i += kPanelRows) {
            const size_t rows = std::min(kPanelRows, end - i);
            size_t lda = 0;
            const float* t = rows_at(i, rows, 0, s_, tile.data(), lda);
            if (!checked_ && !rows_finite(t, lda, rows, s_)) finite = false;
            std::fill(z.begin(), z.end(), 0.0f);
            panel_dot(rows, t, lda, s_, x_.data(), pw_, z.data());
            panel_axpy(rows, t, lda, s_, z.data(), pw_, part);
        }
    });
    return finite;
}

// Wide A (s x l): z = A^T x by slices of columns (each worker owns its slices of z), then
// y = A z by rows. False if the first call met NaN or Inf.
bool GramProduct::apply_wide() {
    const size_t slices = (l_ + kSlice - 1) / kSlice;
    parallel_ranges(std::min<int>(workers_, static_cast<int>(slices)), slices, [&](int, size_t begin, size_t end) {
        std::vector<float> tile(direct_ ? 0 : kPanelRows * kSlice);
        for (size_t sl = begin; sl < end; ++sl) {
            const size_t j0 = sl * kSlice, n = std::min(kSlice, l_ - j0);
            float* zs = work_.data() + j0 * pw_;
            std::fill(zs, zs + n * pw_, 0.0f);
            for (size_t i = 0; i < s_; i += kPanelRows) {
                const size_t rows = std::min(kPanelRows, s_ - i);
                size_t lda = 0;
                const float* t = rows_at(i, rows, j0, n, tile.data(), lda);
                panel_axpy(rows, t, lda, n, x_.data() + i * pw_, pw_, zs);
            }
        }
    });
    std::atomic<bool> finite{true};
    parallel_ranges(workers_, s_, [&](int, size_t begin, size_t end) {
        std::vector<float> tile(direct_ ? 0 : kPanelRows * kSlice);
        std::fill(y_.data() + begin * pw_, y_.data() + end * pw_, 0.0f);
        for (size_t i = begin; i < end; i += kPanelRows) {
            const size_t rows = std::min(kPanelRows, end - i);
            for (size_t j0 = 0; j0 < l_; j0 += kSlice) {
                const size_t n = std::min(kSlice, l_ - j0);
                size_t lda = 0;
                const float* t = rows_at(i, rows, j0, n, tile.data(), lda);
                if (!checked_ && !rows_finite(t, lda, rows, n)) finite = false;
                panel_dot(rows, t, lda, n, work_.data() + j0 * pw_, pw_, y_.data() + i * pw_);
            }
        }
    });
    return finite;
}

}  // namespace wpf
