#include "spectral.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>

#include "blas.hpp"
#include "errors.hpp"
#include "gram_product.hpp"
#include "parallel.hpp"

namespace wpf {

bool parse_svd_method(const std::string& name, SvdMethod& out) {
    if (name == "exact")
        out = SvdMethod::Exact;
    else if (name == "fast")
        out = SvdMethod::Fast;
    else if (name == "auto")
        out = SvdMethod::Auto;
    else
        return false;
    return true;
}

namespace {

// Adds the seconds f takes to acc.
template <typename F>
void timed(double& acc, F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    acc += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void check_cancel(const std::atomic<bool>* cancel) {
    if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled();
}

int to_int(size_t v) {
    if (v > static_cast<size_t>(std::numeric_limits<int>::max()))
        throw std::length_error("matrix dimension exceeds the 32-bit BLAS interface");
    return static_cast<int>(v);
}

// Eigenvalues il..iu (1-based, ascending) of the symmetric n x n matrix g (upper triangle used,
// destroyed), with eigenvectors in z (n x (iu-il+1)) when z is non-null.
std::vector<double> sym_eig_range(double* g, int n, int il, int iu, double* z) {
    const auto& L = blas::require();
    const char jobz = z ? 'V' : 'N', range = 'I', uplo = 'U';
    const double vl = 0, vu = 0, abstol = 0;
    int found = 0, info = 0, lwork = -1, liwork = -1, iwork_q = 0;
    double work_q = 0;
    std::vector<double> w(static_cast<size_t>(n));
    std::vector<int> isuppz(2 * static_cast<size_t>(std::max(1, iu - il + 1)));
    double zdummy = 0;
    const int ldz = z ? n : 1;
    L.dsyevr(&jobz, &range, &uplo, &n, g, &n, &vl, &vu, &il, &iu, &abstol, &found, w.data(), z ? z : &zdummy, &ldz,
             isuppz.data(), &work_q, &lwork, &iwork_q, &liwork, &info);
    lwork = static_cast<int>(work_q) + 1;
    liwork = iwork_q + 1;
    std::vector<double> work(static_cast<size_t>(lwork));
    std::vector<int> iwork(static_cast<size_t>(liwork));
    L.dsyevr(&jobz, &range, &uplo, &n, g, &n, &vl, &vu, &il, &iu, &abstol, &found, w.data(), z ? z : &zdummy, &ldz,
             isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
    if (info != 0) throw std::runtime_error("LAPACK dsyevr failed with info=" + std::to_string(info));
    w.resize(static_cast<size_t>(found));
    return w;
}

// Exact: G = A A^T or A^T A (whichever is smaller) accumulated in double from panels decoded
// straight from the source, then the top k eigenvalues of G.
SvdResult exact(const MatrixView& a, int k, const std::atomic<bool>* cancel) {
    const auto& L = blas::require();
    SvdResult r;
    const auto t0 = std::chrono::steady_clock::now();
    const bool wide = a.rows <= a.cols;  // Gram of the rows when they are the short side
    const size_t s = wide ? a.rows : a.cols;
    const size_t l = wide ? a.cols : a.rows;
    const int si = to_int(s);
    std::vector<double> g(s * s, 0.0);
    const size_t panel = std::max<size_t>(64, std::min<size_t>(512, (size_t{1} << 24) / std::max<size_t>(s, 1)));
    std::vector<double> buf(s * panel);
    const double one = 1.0;
    for (size_t p0 = 0; p0 < l; p0 += panel) {
        check_cancel(cancel);
        const size_t w = std::min(panel, l - p0);
        const int wi = to_int(w);
        double beta = p0 == 0 ? 0.0 : 1.0;
        if (wide) {
            // Column panel: X (w x s, column-major) holds A[:, p0:p0+w]^T; G += X^T X.
            for (size_t i = 0; i < s; ++i) decode_range(a.dtype, a.row(i), p0, w, buf.data() + i * w);
            require_finite(all_finite(buf.data(), s * w));
            const char uplo = 'U', trans = 'T';
            L.dsyrk(&uplo, &trans, &si, &wi, &one, buf.data(), &wi, &beta, g.data(), &si);
        } else {
            // Row panel: Y (s x w, column-major) holds A[p0:p0+w, :]^T; G += Y Y^T.
            for (size_t j = 0; j < w; ++j) decode_range(a.dtype, a.row(p0 + j), 0, s, buf.data() + j * s);
            require_finite(all_finite(buf.data(), s * w));
            const char uplo = 'U', trans = 'N';
            L.dsyrk(&uplo, &trans, &si, &wi, &one, buf.data(), &si, &beta, g.data(), &si);
        }
    }
    check_cancel(cancel);
    r.phases.gram = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<double> w;
    timed(r.phases.eigen, [&] { w = sym_eig_range(g.data(), si, si - k + 1, si, nullptr); });
    r.method = "exact";
    for (auto it = w.rbegin(); it != w.rend(); ++it) r.values.push_back(std::sqrt(std::max(0.0, *it)));
    return r;
}

// The bounds below hold in exact arithmetic; the float32 products put rounding errors of a few
// 1e-7 on the Ritz values themselves (measured up to 3e-7 on 8192-wide matrices), which the
// residuals do not see. Every certified bound carries this floor, so tolerances under it are
// never certified by the Krylov method and go to the exact one.
constexpr double kRoundingFloor = 1e-6;

// Block Krylov subspace of C = A^T A (A tall) or A A^T (A wide), with full
// reorthogonalization and Rayleigh-Ritz. With tol > 0 it grows until every one of the top k
// Ritz values carries an error bound that puts its singular value within tol relative; it
// returns an empty result if max_blocks is reached first.
//
// The bound for Ritz pair i (theta_i, unit x_i, residual r_i = ||C x_i - theta_i x_i||):
// Rayleigh-Ritz values sit below the eigenvalues (Cauchy interlacing, theta_i <= lambda_i), and
// lambda_i - theta_i <= min(r_i, r_i^2 / (theta_i - alpha)) for any alpha >= lambda_{i+1} below
// theta_i: the first is Bauer-Fike, the second follows from x^T (C - alpha)(C - lambda_i) x >= 0
// when no eigenvalue lies strictly between alpha and lambda_i. alpha = theta_{i+1} + r_{i+1}
// assumes that the Ritz value i+1 approximates lambda_{i+1} (the random start block makes
// missing an eigenvalue improbable; Bauer-Fike alone rests on the same assumption). The
// quadratic form certifies well-separated values several blocks earlier.
class Krylov {
public:
    Krylov(const MatrixView& a, int k, int block, int threads, uint64_t seed)
        : k_(k), b_(block), threads_(std::max(1, threads)), product_(a, block, threads) {
        s_ = to_int(product_.short_side());
        l_ = to_int(product_.long_side());
        std::mt19937_64 rng(seed);
        std::normal_distribution<float> normal;
        start_.resize(static_cast<size_t>(s_) * static_cast<size_t>(b_));
        for (auto& x : start_) x = normal(rng);
    }

    SvdResult run(int max_blocks, double tol, const std::atomic<bool>* cancel) {
        // The products run on the engine's own threads; OpenBLAS workers left spinning after
        // its small calls (basis orthogonalization) would take their cores.
        const blas::RestoreThreads restore_blas_threads;
        blas::set_threads(1);
        allocate(max_blocks);
        const size_t s = static_cast<size_t>(s_), b = static_cast<size_t>(b_);
        std::copy(start_.begin(), start_.end(), q_.begin());
        timed(phases_.orthogonalization, [&] { orthonormalize(0, false); });
        CheckSchedule schedule;
        for (int j = 0; j <= max_blocks; ++j) {
            check_cancel(cancel);
            float* qj = q_.data() + s * b * static_cast<size_t>(j);
            float* cqj = cq_.data() + s * b * static_cast<size_t>(j);
            timed(phases_.products, [&] { apply(qj, cqj); });
            timed(phases_.projection, [&] { extend_projection(j); });
            const bool last = j == max_blocks;
            if (tol > 0 && (j + 1 >= schedule.next || last)) {
                SvdResult r;
                timed(phases_.checks, [&] { r = rayleigh_ritz(j + 1, true); });
                if (r.error_bound <= tol) return with_phases(std::move(r));
                schedule.after(j + 1, r.error_bound, tol, cheap_check(j + 2));
            }
            if (last) break;
            std::copy_n(cqj, s * b, qj + s * b);
            timed(phases_.orthogonalization, [&] { orthonormalize(j + 1, true); });
        }
        if (tol > 0) return with_phases(SvdResult{});  // not certified within the budget
        SvdResult r;
        timed(phases_.checks, [&] { r = rayleigh_ritz(max_blocks + 1, false); });
        return with_phases(std::move(r));
    }

private:
    SvdPhases phases_;

    SvdResult with_phases(SvdResult r) const {
        r.phases = phases_;
        return r;
    }

    int k_, b_, threads_, s_ = 0, l_ = 0;
    GramProduct product_;
    std::vector<float> start_, q_, cq_, h_, tau_, work_, partial_;
    size_t dmax_ = 0;        // largest basis size of this run
    std::vector<double> t_;  // T = Q^T C Q, column-major with leading dimension dmax_, upper part kept

    // Where the next Rayleigh-Ritz check goes. A check that costs little next to a block (large
    // matrices) runs after every block from the third on. Otherwise the next one is placed where
    // the bound should reach tol if it kept falling geometrically; Krylov convergence
    // accelerates, so that guess overshoots and is capped at 20% more blocks.
    struct CheckSchedule {
        int next = 3;
        double prev_blocks = 0, prev_log_bound = 0;

        void after(int blocks_done, double bound, double tol, bool next_is_cheap) {
            const double blocks = blocks_done, log_bound = std::log(bound);
            int guess = static_cast<int>(std::ceil(blocks * 1.25));
            if (prev_blocks > 0 && log_bound < prev_log_bound) {
                const double slope = (log_bound - prev_log_bound) / (blocks - prev_blocks);
                guess = static_cast<int>(std::ceil(blocks + (std::log(tol) - log_bound) / slope));
            }
            next = next_is_cheap ? blocks_done + 1
                                 : std::clamp(guess, blocks_done + 1, static_cast<int>(std::ceil(blocks * 1.2)) + 1);
            prev_blocks = blocks;
            prev_log_bound = log_bound;
        }
    };

    // The basis, its image, the projection and LAPACK's QR workspace for up to max_blocks + 1 blocks.
    void allocate(int max_blocks) {
        const size_t s = static_cast<size_t>(s_), b = static_cast<size_t>(b_);
        dmax_ = b * static_cast<size_t>(max_blocks + 1);
        q_.assign(s * dmax_, 0.0f);
        cq_.assign(s * dmax_, 0.0f);
        t_.assign(dmax_ * dmax_, 0.0);
        h_.resize(dmax_ * b);
        tau_.resize(b);
        int lwork = -1, info = 0;
        float wq = 0;
        blas::require().sgeqrf(&s_, &b_, q_.data(), &s_, tau_.data(), &wq, &lwork, &info);
        if (info != 0)
            throw std::runtime_error("LAPACK sgeqrf workspace query failed with info=" + std::to_string(info));
        work_.resize(static_cast<size_t>(std::max(1, static_cast<int>(wq))) * 2);
    }

    // Flop model, fitted to timings: a check (dsyevr of the d x d projection, residual
    // products) costs at most an eighth of a block (two products with A).
    bool cheap_check(int blocks) const {
        const double d = static_cast<double>(blocks) * b_;
        const double check = 50.0 * d * d * d + 4.0 * s_ * d * (k_ + 1);
        const double block = 4.0 * static_cast<double>(l_) * s_ * b_;
        return check * 8 <= block;
    }

    void gemm(char ta, char tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
              float beta, float* C, int ldc) const {
        blas::require().sgemm(&ta, &tb, &m, &n, &k, &alpha, A, &lda, B, &ldb, &beta, C, &ldc);
    }

    // The basis products below split the s rows across the engine's threads, each calling
    // single-threaded BLAS (see run()).
    int row_workers() const { return std::max(1, std::min(threads_, s_ / 512)); }

    // h (d x n) = Q[:, 0:d]^T x for x: s x n.
    void inner(int d, int n, const float* x, float* h) {
        const int workers = row_workers();
        const size_t hs = static_cast<size_t>(d) * static_cast<size_t>(n);
        partial_.resize(hs * static_cast<size_t>(workers - 1));
        parallel_ranges(workers, static_cast<size_t>(s_), [&](int w, size_t r0, size_t r1) {
            float* out = w == 0 ? h : partial_.data() + hs * static_cast<size_t>(w - 1);
            gemm('T', 'N', d, n, static_cast<int>(r1 - r0), 1.f, q_.data() + r0, s_, x + r0, s_, 0.f, out, d);
        });
        for (int w = 1; w < workers; ++w)
            for (size_t i = 0; i < hs; ++i) h[i] += partial_[hs * static_cast<size_t>(w - 1) + i];
    }

    // y (s x n) = alpha basis[:, 0:d] h + beta y, for h: d x n.
    void combine(const float* basis, int d, const float* h, int n, float alpha, float beta, float* y) {
        parallel_ranges(row_workers(), static_cast<size_t>(s_), [&](int, size_t r0, size_t r1) {
            gemm('N', 'N', static_cast<int>(r1 - r0), n, d, alpha, basis + r0, s_, h, d, beta, y + r0, s_);
        });
    }

    // y = C x for an s x b block.
    void apply(const float* x, float* y) { product_.apply(x, y); }

    // T[0:(j+1)b, block j] = Q[:, 0:(j+1)b]^T C Q_j: the new columns of the projected matrix.
    void extend_projection(int j) {
        const size_t s = static_cast<size_t>(s_), b = static_cast<size_t>(b_);
        const int d = (j + 1) * b_;
        inner(d, b_, cq_.data() + s * b * static_cast<size_t>(j), h_.data());
        for (size_t c = 0; c < b; ++c)
            for (size_t r = 0; r < static_cast<size_t>(d); ++r)
                t_[r + (static_cast<size_t>(j) * b + c) * dmax_] = h_[r + c * static_cast<size_t>(d)];
    }

    void project_out(float* v, int d, bool projection_known) {
        if (!projection_known) inner(d, b_, v, h_.data());
        combine(q_.data(), d, h_.data(), b_, -1.f, 1.f, v);
    }

    // Makes block j orthonormal and orthogonal to blocks 0..j-1: classical Gram-Schmidt twice,
    // then Householder QR. When the block had (nearly) collapsed into the span already, QR's new
    // directions are noise, so they are orthogonalized and factored once more. from_product:
    // block j is C times block j-1, whose projection onto the basis extend_projection has just
    // left in h_, so the first pass need not compute it again.
    void orthonormalize(int j, bool from_product) {
        const auto& L = blas::require();
        float* v = q_.data() + static_cast<size_t>(s_) * static_cast<size_t>(b_) * static_cast<size_t>(j);
        const int d = j * b_;
        int lwork = static_cast<int>(work_.size()), info = 0;
        for (int attempt = 0; attempt < 2; ++attempt) {
            for (int pass = 0; pass < 2 && d > 0; ++pass) project_out(v, d, from_product && attempt == 0 && pass == 0);
            L.sgeqrf(&s_, &b_, v, &s_, tau_.data(), work_.data(), &lwork, &info);
            if (info != 0) throw std::runtime_error("LAPACK sgeqrf failed with info=" + std::to_string(info));
            float rmax = 0, rmin = std::numeric_limits<float>::infinity();
            for (int i = 0; i < b_; ++i) {
                const float r = std::fabs(v[static_cast<size_t>(i) + static_cast<size_t>(i) * static_cast<size_t>(s_)]);
                rmax = std::max(rmax, r);
                rmin = std::min(rmin, r);
            }
            L.sorgqr(&s_, &b_, &b_, v, &s_, tau_.data(), work_.data(), &lwork, &info);
            if (info != 0) throw std::runtime_error("LAPACK sorgqr failed with info=" + std::to_string(info));
            if (d == 0 || rmin > 1e-4f * rmax) return;
        }
    }

    SvdResult rayleigh_ritz(int blocks, bool certify) {
        const size_t s = static_cast<size_t>(s_);
        const int d = blocks * b_;
        const size_t dd = static_cast<size_t>(d);
        std::vector<double> t(dd * dd);
        for (size_t c = 0; c < dd; ++c)
            for (size_t r = 0; r <= c; ++r) t[r + c * dd] = t_[r + c * dmax_];  // dsyevr reads the upper part
        const int k = std::min(k_, d);
        // One pair beyond the top k (the block is wider than k) bounds lambda_{k+1} for the gap.
        const int kk = certify ? std::min(k + 1, d) : k;
        const size_t kz = static_cast<size_t>(kk);
        std::vector<double> y(dd * kz);
        std::vector<double> theta = sym_eig_range(t.data(), d, d - kk + 1, d, certify ? y.data() : nullptr);
        std::reverse(theta.begin(), theta.end());  // descending, to match the bound's indices
        SvdResult r;
        r.method = certify ? "krylov" : "fast";
        r.blocks = blocks;
        r.error_bound = certify ? 0.0 : std::numeric_limits<double>::quiet_NaN();
        if (certify) {
            std::vector<float> yf(y.begin(), y.end()), cx(s * kz), x(s * kz);
            combine(cq_.data(), d, yf.data(), kk, 1.f, 0.f, cx.data());
            combine(q_.data(), d, yf.data(), kk, 1.f, 0.f, x.data());
            std::vector<double> res(kz);
            for (size_t i = 0; i < kz; ++i) {
                const size_t col = kz - 1 - i;  // dsyevr's vectors are ascending
                const double th = theta[i];
                double rn = 0;
                for (size_t p = 0; p < s; ++p) {
                    const double e = cx[p + s * col] - th * x[p + s * col];
                    rn += e * e;
                }
                res[i] = std::sqrt(rn);
            }
            for (size_t i = 0; i < static_cast<size_t>(k); ++i) {
                double err = res[i];
                if (i + 1 < kz) {
                    const double gap = theta[i] - (theta[i + 1] + res[i + 1]);
                    if (gap > 0) err = std::min(err, res[i] * res[i] / gap);
                }
                const double bound = theta[i] > 0 ? err / (2.0 * theta[i]) : std::numeric_limits<double>::infinity();
                r.error_bound = std::max(r.error_bound, bound + kRoundingFloor);
            }
        }
        for (size_t i = 0; i < static_cast<size_t>(k); ++i) r.values.push_back(std::sqrt(std::max(0.0, theta[i])));
        return r;
    }
};

}  // namespace

SvdResult top_singular_values(const MatrixView& a, int k, const SvdOptions& opt, const std::atomic<bool>* cancel) {
    if (k < 0) throw std::invalid_argument("k must be non-negative");
    const size_t s = std::min(a.rows, a.cols);
    k = static_cast<int>(std::min<size_t>(static_cast<size_t>(k), s));
    if (k == 0) return SvdResult{{}, opt.method == SvdMethod::Exact ? "exact" : "fast", 0, 0};
    const int block = (k + std::max(0, opt.oversample) + kBlockMultiple - 1) / kBlockMultiple * kBlockMultiple;
    if (opt.method == SvdMethod::Exact) return exact(a, k, cancel);
    // Past half the short side a Krylov basis costs more than the exact method (and past all of
    // it, it cannot stay orthonormal).
    const int max_blocks = static_cast<int>(std::min<size_t>(s / 2 / static_cast<size_t>(block), 60));
    if (opt.method == SvdMethod::Fast) {
        const int blocks = std::max(1, opt.krylov_blocks);
        if (blocks > max_blocks) return exact(a, k, cancel);
        return Krylov(a, k, block, opt.threads, opt.seed).run(blocks, 0.0, cancel);
    }
    // Below this short side LAPACK on the Gram matrix takes milliseconds and the Krylov method's
    // fixed costs (a Rayleigh-Ritz check is an eigenproblem of its own) win nothing (measured on
    // the real checkpoints' matrices, bench/RESULTS.md). With room for fewer than 8 blocks a flat
    // spectrum is rarely certified, and the failed attempt would come on top of LAPACK's time
    // (top-64 of 1024 x 4096: 0.29 s against 0.11 s).
    constexpr size_t kKrylovMinSide = 1024;
    if (max_blocks >= 8 && s >= kKrylovMinSide && opt.tol > 2 * kRoundingFloor) {
        SvdResult r = Krylov(a, k, block, opt.threads, opt.seed).run(max_blocks, opt.tol, cancel);
        if (!r.values.empty()) return r;
        SvdResult e = exact(a, k, cancel);
        e.phases.products = r.phases.products;  // the failed attempt's time, kept in the record
        e.phases.orthogonalization = r.phases.orthogonalization;
        e.phases.projection = r.phases.projection;
        e.phases.checks = r.phases.checks;
        e.phases.fallback = true;
        return e;
    }
    return exact(a, k, cancel);
}

}  // namespace wpf
