#include "gram_product.hpp"
#include "simd.hpp"

#include <algorithm>
#include <cstring>

#include "parallel.hpp"

namespace wpf {

namespace {

// 16 floats: one AVX-512 register, two AVX2 or four SSE registers; the compiler splits it to
// whatever the target has. aligned(4): loads and stores may be unaligned.
typedef float v16 __attribute__((vector_size(64), aligned(4)));

constexpr int kLanes = 16;
constexpr int kMaxVectors = 4;  // columns per pass: 64, so accumulators stay in registers


// For R rows starting at a (stride ld) and W vectors of columns starting at column c0 of the
// padded row-major blocks x and y (row length pw): z = a x, then y += a^T z.
template <int R, int W>
WPF_MULTIVERSION
void tile(const float* a, size_t ld, size_t n, const float* x, float* y, int pw, int c0) {
    v16 acc[R][W];
    for (int i = 0; i < R; ++i)
        for (int w = 0; w < W; ++w) acc[i][w] = v16{};
    for (size_t p = 0; p < n; ++p) {
        v16 xv[W];
        for (int w = 0; w < W; ++w) std::memcpy(&xv[w], x + p * pw + c0 + w * kLanes, sizeof(v16));
        for (int i = 0; i < R; ++i) {
            const float s = a[i * ld + p];
            for (int w = 0; w < W; ++w) acc[i][w] += s * xv[w];
        }
    }
    for (size_t p = 0; p < n; ++p) {
        float* yp = y + p * pw + c0;
        v16 yv[W];
        for (int w = 0; w < W; ++w) std::memcpy(&yv[w], yp + w * kLanes, sizeof(v16));
        for (int i = 0; i < R; ++i) {
            const float s = a[i * ld + p];
            for (int w = 0; w < W; ++w) yv[w] += s * acc[i][w];
        }
        for (int w = 0; w < W; ++w) std::memcpy(yp + w * kLanes, &yv[w], sizeof(v16));
    }
}

template <int R>
void tile_columns(const float* a, size_t ld, size_t n, const float* x, float* y, int pw) {
    for (int c0 = 0; c0 < pw; c0 += kMaxVectors * kLanes) {
        switch (std::min(kMaxVectors, (pw - c0) / kLanes)) {
            case 1: tile<R, 1>(a, ld, n, x, y, pw, c0); break;
            case 2: tile<R, 2>(a, ld, n, x, y, pw, c0); break;
            case 3: tile<R, 3>(a, ld, n, x, y, pw, c0); break;
            default: tile<R, 4>(a, ld, n, x, y, pw, c0); break;
        }
    }
}

// Rows [begin, end) of r into y (zeroed here): four rows at a time, then the remainder singly.
void rows_product(const float* r, size_t ld, size_t n, size_t begin, size_t end, const float* x, float* y, int pw) {
    std::fill(y, y + n * static_cast<size_t>(pw), 0.0f);
    size_t i = begin;
    for (; i + 4 <= end; i += 4) tile_columns<4>(r + i * ld, ld, n, x, y, pw);
    for (; i < end; ++i) tile_columns<1>(r + i * ld, ld, n, x, y, pw);
}

}  // namespace

GramProduct::GramProduct(const float* r, size_t rows, size_t cols, size_t ld, int width, int threads)
    : r_(r), rows_(rows), cols_(cols), ld_(ld), width_(width) {
    padded_ = (width + kLanes - 1) / kLanes * kLanes;
    // A worker needs enough rows to pay for its own copy of y.
    workers_ = static_cast<int>(std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(1, threads)),
                                                                       rows / 64)));
    x_.assign(cols * static_cast<size_t>(padded_), 0.0f);
    parts_.assign(cols * static_cast<size_t>(padded_) * static_cast<size_t>(workers_), 0.0f);
}

void GramProduct::apply(const float* x, float* y) {
    const size_t n = cols_, pw = static_cast<size_t>(padded_), w = static_cast<size_t>(width_);
    for (size_t c = 0; c < w; ++c)
        for (size_t p = 0; p < n; ++p) x_[p * pw + c] = x[p + c * n];
    parallel_ranges(workers_, rows_, [&](int t, size_t b, size_t e) {
        rows_product(r_, ld_, n, b, e, x_.data(), parts_.data() + n * pw * static_cast<size_t>(t), padded_);
    });
    for (size_t c = 0; c < w; ++c)
        for (size_t p = 0; p < n; ++p) {
            float s = 0;
            for (int t = 0; t < workers_; ++t) s += parts_[n * pw * static_cast<size_t>(t) + p * pw + c];
            y[p + c * n] = s;
        }
}

}  // namespace wpf
