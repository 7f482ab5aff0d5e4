#include "probe.hpp"

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

void check_probe(const MatrixView& a, const ProbeSpec& s) {
    const size_t along = s.columns ? a.rows : a.cols;
    if (s.count == 0 || s.probes.size() != s.count * along)
        throw std::invalid_argument("probe_product: " + std::to_string(s.probes.size()) + " probe values for " +
                                    std::to_string(s.count) + " probes of " + std::to_string(along) +
                                    (s.columns ? " rows" : " columns"));
}

std::vector<double> probe_product(const MatrixView& a, const ProbeSpec& s, int threads,
                                  const std::atomic<bool>* cancel) {
    check_probe(a, s);
    const size_t n = a.cols, c = s.count;
    std::vector<double> out((s.columns ? n : a.rows) * c, 0.0);
    if (a.rows == 0 || n == 0) return out;
    // Single precision: sgemm runs at twice dgemm's rate on half the memory traffic (the products
    // were half of the invariants' time), and the forms keep the products to 16 bits (probes.py).
    // Each panel's product is added into double sums, so the rounding does not grow with rows.
    const std::vector<float> probes(s.probes.begin(), s.probes.end());
    const size_t panel = panel_rows(n);
    const int workers = panel_workers(a.rows, panel, threads);
    // Each worker runs its own products: OpenBLAS must not spawn more threads on top.
    std::optional<blas::RestoreThreads> restore_blas_threads;
    if (workers > 1) {
        restore_blas_threads.emplace();
        blas::set_threads(1);
    }
    const auto& L = blas::require();
    const int ci = static_cast<int>(c), ni = static_cast<int>(n), ri = static_cast<int>(a.rows);
    const float one = 1.0f, zero = 0.0f;
    // P A: every panel adds to all of the output, so workers keep private sums.
    std::vector<std::vector<double>> partial(s.columns ? static_cast<size_t>(workers) : 0);
    std::vector<int> finite(static_cast<size_t>(workers), 1);
    parallel_ranges(workers, a.rows, [&](int w, size_t r0, size_t r1) {
        std::vector<float> buf(panel * n), product((s.columns ? n : panel) * c);
        if (s.columns) partial[static_cast<size_t>(w)].assign(out.size(), 0.0);
        for (size_t p0 = r0; p0 < r1 && !(cancel && *cancel); p0 += panel) {
            const size_t rows = std::min(panel, r1 - p0);
            if (!decode_panel(a, p0, rows, buf.data())) {
                finite[static_cast<size_t>(w)] = 0;
                return;
            }
            const int pi = static_cast<int>(rows);
            const char no = 'N', tr = 'T';
            if (s.columns) {
                // Column-major: product (n x c) = buf (n x rows) * P[:, p0:p0+rows]^T (rows x c).
                L.sgemm(&no, &no, &ni, &ci, &pi, &one, buf.data(), &ni, probes.data() + p0, &ri, &zero, product.data(),
                        &ni);
                std::vector<double>& acc = partial[static_cast<size_t>(w)];
                for (size_t i = 0; i < n * c; ++i) acc[i] += product[i];
            } else {
                // Column-major: product (c x rows) = P (c x n) * buf (n x rows): out's rows p0...
                L.sgemm(&tr, &no, &ci, &pi, &ni, &one, probes.data(), &ni, buf.data(), &ni, &zero, product.data(), &ci);
                std::copy(product.begin(), product.begin() + rows * c, out.begin() + p0 * c);
            }
        }
    });
    if (cancel && *cancel) throw Cancelled();
    for (int ok : finite) require_finite(ok != 0);
    if (s.columns) {
        // The sums are n x c column-major: out is c x n row-major, the same layout.
        for (const auto& acc : partial)
            for (size_t i = 0; i < out.size(); ++i) out[i] += acc[i];
    }
    return out;
}

}  // namespace wpf
