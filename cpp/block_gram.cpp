#include "block_gram.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>

#include "blas.hpp"
#include "dtype.hpp"
#include "errors.hpp"
#include "panels.hpp"
#include "parallel.hpp"

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
            double* gb = out.data() + b * g * g;
            if (g == 1) {  // a row's squared norm: a BLAS call per row would cost more than the sum
                double sum = 0;
                for (size_t j = 0; j < n; ++j) sum += buf[j] * buf[j];
                *gb = sum;
                continue;
            }
            // buf is n x g column-major (one row of A per column): G = buf^T buf.
            const char uplo = 'U', trans = 'T';
            const int gi = static_cast<int>(g), ni = static_cast<int>(n);
            const double one = 1.0, zero = 0.0;
            L.dsyrk(&uplo, &trans, &gi, &ni, &one, buf.data(), &ni, &zero, gb, &gi);
        }
    });
    for (int ok : finite) require_finite(ok != 0);
}

// Column blocks: every panel of rows adds to every block, so threads take row ranges into
// private sums that are added at the end.
void column_blocks(const MatrixView& a, const BlockGramSpec& s, int threads, const std::atomic<bool>* cancel,
                   std::vector<double>& out) {
    const size_t g = s.block, n = a.cols, blocks = n / g;
    const double* weights = s.weights.empty() ? nullptr : s.weights.data();
    // Squared norms are element-wise: cache-sized panels; the Gram blocks are BLAS calls.
    const size_t panel = g == 1 ? cache_panel_rows(n) : panel_rows(n);
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
            if (g == 1) {  // columns' squared norms: one pass, not a BLAS call per column
                for (size_t i = 0; i < rows; ++i) {
                    const double* row = buf.data() + i * n;
                    for (size_t j = 0; j < n; ++j) acc[j] += row[j] * row[j];
                }
                continue;
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
    if (spec.columns)
        column_blocks(a, spec, threads, cancel, out);
    else
        row_blocks(a, spec, threads, cancel, out);
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
