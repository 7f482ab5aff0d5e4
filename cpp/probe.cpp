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
    const double one = 1.0, zero = 0.0;
    // P A: every panel adds to all of the output, so workers keep private sums.
    std::vector<std::vector<double>> partial(s.columns ? static_cast<size_t>(workers) : 0);
    std::vector<int> finite(static_cast<size_t>(workers), 1);
    parallel_ranges(workers, a.rows, [&](int w, size_t r0, size_t r1) {
        std::vector<double> buf(panel * n);
        if (s.columns) partial[static_cast<size_t>(w)].assign(out.size(), 0.0);
        for (size_t p0 = r0; p0 < r1 && !(cancel && *cancel); p0 += panel) {
            const size_t rows = std::min(panel, r1 - p0);
            if (!decode_panel(a, p0, rows, buf.data())) {
                finite[static_cast<size_t>(w)] = 0;
                return;
            }
            const int pi = static_cast<int>(rows);
            if (s.columns) {
                // Column-major: out^T (n x c) += buf (n x rows) * P[:, p0:p0+rows]^T (rows x c).
                const char no = 'N';
                L.dgemm(&no, &no, &ni, &ci, &pi, &one, buf.data(), &ni, s.probes.data() + p0, &ri, &one,
                        partial[static_cast<size_t>(w)].data(), &ni);
            } else {
                // Column-major: out[p0:p0+rows]^T (c x rows) = P (c x n) * buf (n x rows).
                const char tr = 'T', no = 'N';
                L.dgemm(&tr, &no, &ci, &pi, &ni, &one, s.probes.data(), &ni, buf.data(), &ni, &zero,
                        out.data() + p0 * c, &ci);
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
