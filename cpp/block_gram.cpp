#include "block_gram.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

#include "blas.hpp"
#include "dtype.hpp"
#include "errors.hpp"
#include "panels.hpp"
#include "parallel.hpp"
#include "simd.hpp"

namespace wpf {

namespace {

// Decodes `count` rows from `first` into buf (row i at buf + i * cols), each value times
// col_weights[j] (per column) or row_weights[i] (per row) where given; false if any is not finite.
bool decode_rows(const MatrixView& a, size_t first, size_t count, const double* col_weights, const double* row_weights,
                 double* buf) {
    const size_t n = a.cols;
    for (size_t i = 0; i < count; ++i) {
        double* row = buf + i * n;
        decode_range(a.dtype, a.row(first + i), 0, n, row);
        if (col_weights)
            for (size_t j = 0; j < n; ++j) row[j] *= col_weights[j];
        if (row_weights)
            for (size_t j = 0; j < n; ++j) row[j] *= row_weights[first + i];
    }
    return all_finite(buf, count * n);
}

// sum over j of (w[j] x[j])^2 (w null: all ones).
WPF_MULTIVERSION double weighted_squares(const double* __restrict x, const double* __restrict w, size_t n) {
    double sum = 0;
    if (w) {
#pragma omp simd reduction(+ : sum)
        for (size_t j = 0; j < n; ++j) sum += (w[j] * x[j]) * (w[j] * x[j]);
    } else {
#pragma omp simd reduction(+ : sum)
        for (size_t j = 0; j < n; ++j) sum += x[j] * x[j];
    }
    return sum;
}

// The same straight from BF16.
WPF_MULTIVERSION double weighted_squares_bf16(const uint8_t* __restrict src, const double* __restrict w, size_t n) {
    double sum = 0;
    if (w) {
#pragma omp simd reduction(+ : sum)
        for (size_t j = 0; j < n; ++j) sum += (w[j] * bf16_at(src, j)) * (w[j] * bf16_at(src, j));
    } else {
#pragma omp simd reduction(+ : sum)
        for (size_t j = 0; j < n; ++j) sum += bf16_at(src, j) * bf16_at(src, j);
    }
    return sum;
}

// acc[j] += (s x[j])^2.
WPF_MULTIVERSION void add_squares(double* __restrict acc, const double* __restrict x, double s, size_t n) {
    for (size_t j = 0; j < n; ++j) acc[j] += (s * x[j]) * (s * x[j]);
}

WPF_MULTIVERSION void add_squares_bf16(double* __restrict acc, const uint8_t* __restrict src, double s, size_t n) {
    for (size_t j = 0; j < n; ++j) acc[j] += (s * bf16_at(src, j)) * (s * bf16_at(src, j));
}

}  // namespace

void check_block_gram(const MatrixView& a, const BlockGramSpec& s) {
    const size_t blocked = s.columns ? a.cols : a.rows;
    const size_t summed = s.columns ? a.rows : a.cols;
    if (s.block == 0 || blocked % s.block != 0)
        throw std::invalid_argument("block_gram: block " + std::to_string(s.block) + " does not divide " +
                                    std::to_string(blocked) + (s.columns ? " columns" : " rows"));
    if (!s.weights.empty() && s.weights.size() != summed)
        throw std::invalid_argument("block_gram: " + std::to_string(s.weights.size()) + " weights for " +
                                    std::to_string(summed) + (s.columns ? " rows" : " columns"));
}

namespace {

// Rows' weighted squared norms (blocks of one row): a sum per row, no BLAS call.
void row_norms(const MatrixView& a, const BlockGramSpec& s, int threads, const std::atomic<bool>* cancel,
               std::vector<double>& out) {
    const size_t n = a.cols;
    const double* weights = s.weights.empty() ? nullptr : s.weights.data();
    const bool direct = a.dtype == DType::BF16;
    std::vector<int> finite(static_cast<size_t>(std::max(1, threads)), 1);
    parallel_ranges(threads, a.rows, [&](int w, size_t r0, size_t r1) {
        std::vector<double> row(direct ? 0 : n);
        for (size_t i = r0; i < r1; ++i) {
            if ((i - r0) % 64 == 0 && cancel && cancel->load(std::memory_order_relaxed)) return;
            if (!direct) decode_range(a.dtype, a.row(i), 0, n, row.data());
            out[i] = direct ? weighted_squares_bf16(a.row(i), weights, n) : weighted_squares(row.data(), weights, n);
            // A NaN or Inf in the row leaves its sum not finite.
            if (!std::isfinite(out[i])) {
                finite[static_cast<size_t>(w)] = 0;
                return;
            }
        }
    });
    for (int ok : finite) require_finite(ok != 0);
}

// Row blocks: each block's rows are decoded, weighted and multiplied independently, so blocks
// are split across threads.
void row_blocks(const MatrixView& a, const BlockGramSpec& s, int threads, const std::atomic<bool>* cancel,
                std::vector<double>& out) {
    const size_t g = s.block, n = a.cols, blocks = a.rows / g;
    const double* weights = s.weights.empty() ? nullptr : s.weights.data();
    const auto& L = blas::require();
    std::vector<int> finite(static_cast<size_t>(std::max(1, threads)), 1);
    parallel_ranges(threads, blocks, [&](int w, size_t b0, size_t b1) {
        std::vector<double> buf(g * n);
        for (size_t b = b0; b < b1 && !(cancel && *cancel); ++b) {
            if (!decode_rows(a, b * g, g, weights, nullptr, buf.data())) {
                finite[static_cast<size_t>(w)] = 0;
                return;
            }
            // buf is n x g column-major (one row of A per column): G = buf^T buf.
            const char uplo = 'U', trans = 'T';
            const int gi = static_cast<int>(g), ni = static_cast<int>(n);
            const double one = 1.0, zero = 0.0;
            L.dsyrk(&uplo, &trans, &gi, &ni, &one, buf.data(), &ni, &zero, out.data() + b * g * g, &gi);
        }
    });
    for (int ok : finite) require_finite(ok != 0);
}

// Columns' weighted squared norms (blocks of one column): every row adds to every column, so
// threads take row ranges into private sums that are added at the end.
void column_norms(const MatrixView& a, const BlockGramSpec& s, int threads, const std::atomic<bool>* cancel,
                  std::vector<double>& out) {
    const size_t n = a.cols;
    const double* weights = s.weights.empty() ? nullptr : s.weights.data();
    const bool direct = a.dtype == DType::BF16;
    const int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(1, threads)), a.rows));
    std::vector<std::vector<double>> partial(static_cast<size_t>(workers));
    parallel_ranges(workers, a.rows, [&](int w, size_t r0, size_t r1) {
        std::vector<double>& acc = partial[static_cast<size_t>(w)];
        acc.assign(n, 0.0);
        std::vector<double> row(direct ? 0 : n);
        for (size_t i = r0; i < r1; ++i) {
            if ((i - r0) % 64 == 0 && cancel && cancel->load(std::memory_order_relaxed)) return;
            const double scale = weights ? weights[i] : 1.0;
            if (direct) {
                add_squares_bf16(acc.data(), a.row(i), scale, n);
            } else {
                decode_range(a.dtype, a.row(i), 0, n, row.data());
                add_squares(acc.data(), row.data(), scale, n);
            }
        }
    });
    // A NaN or Inf in a column leaves its sum not finite.
    for (const auto& acc : partial) require_finite(all_finite(acc.data(), acc.size()));
    for (const auto& acc : partial)
        for (size_t j = 0; j < n; ++j) out[j] += acc[j];
}

// Column blocks: every panel of rows adds to every block, so threads take row ranges into
// private sums that are added at the end.
void column_blocks(const MatrixView& a, const BlockGramSpec& s, int threads, const std::atomic<bool>* cancel,
                   std::vector<double>& out) {
    const size_t g = s.block, n = a.cols, blocks = n / g;
    const double* weights = s.weights.empty() ? nullptr : s.weights.data();
    const size_t panel = panel_rows(n);
    const auto& L = blas::require();
    const int workers = panel_workers(a.rows, panel, threads);
    std::vector<std::vector<double>> partial(static_cast<size_t>(workers));
    std::vector<int> finite(static_cast<size_t>(workers), 1);
    parallel_ranges(workers, a.rows, [&](int w, size_t r0, size_t r1) {
        std::vector<double>& acc = partial[static_cast<size_t>(w)];
        acc.assign(out.size(), 0.0);
        std::vector<double> buf(panel * n);
        for (size_t p0 = r0; p0 < r1 && !(cancel && *cancel); p0 += panel) {
            const size_t rows = std::min(panel, r1 - p0);
            if (!decode_rows(a, p0, rows, nullptr, weights, buf.data())) {
                finite[static_cast<size_t>(w)] = 0;
                return;
            }
            // buf is n x rows column-major; block b is its g x rows slice at row b*g: G_b += X X^T.
            const char uplo = 'U', trans = 'N';
            const int gi = static_cast<int>(g), ki = static_cast<int>(rows), ld = static_cast<int>(n);
            const double one = 1.0;
            for (size_t b = 0; b < blocks; ++b)
                L.dsyrk(&uplo, &trans, &gi, &ki, &one, buf.data() + b * g, &ld, &one, acc.data() + b * g * g, &gi);
        }
    });
    for (int ok : finite) require_finite(ok != 0);
    for (const auto& acc : partial)
        for (size_t i = 0; i < out.size(); ++i) out[i] += acc[i];
}

}  // namespace

std::vector<double> block_gram(const MatrixView& a, const BlockGramSpec& spec, int threads,
                               const std::atomic<bool>* cancel) {
    check_block_gram(a, spec);
    const size_t blocked = spec.columns ? a.cols : a.rows;
    std::vector<double> out(blocked * spec.block, 0.0);
    if (a.rows == 0 || a.cols == 0) return out;
    // Each thread runs its own small products: OpenBLAS must not spawn more on top. With one
    // thread the caller may be one of several concurrent jobs, already on single-threaded BLAS,
    // and OpenBLAS's thread count must not change under another thread's call.
    std::optional<blas::RestoreThreads> restore_blas_threads;
    if (threads > 1) {
        restore_blas_threads.emplace();
        blas::set_threads(1);
    }
    if (spec.block == 1)
        (spec.columns ? column_norms : row_norms)(a, spec, threads, cancel, out);
    else
        (spec.columns ? column_blocks : row_blocks)(a, spec, threads, cancel, out);
    if (cancel && *cancel) throw Cancelled();
    // dsyrk filled the upper triangle (column-major), i.e. the lower one of each row-major
    // block: mirror it so every block is a full symmetric matrix.
    const size_t g = spec.block;
    for (size_t b = 0; b < blocked / g; ++b) {
        double* gb = out.data() + b * g * g;
        for (size_t i = 0; i < g; ++i)
            for (size_t j = i + 1; j < g; ++j) gb[i * g + j] = gb[j * g + i];
    }
    return out;
}

}  // namespace wpf
