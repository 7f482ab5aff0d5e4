#include "spectral.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
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

void check_info(const char* routine, int info) {
    if (info != 0)
        throw std::runtime_error(std::string("LAPACK ") + routine + " failed with info=" + std::to_string(info));
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
    check_info("dsyevr", info);
    w.resize(static_cast<size_t>(found));
    return w;
}

// The single- and double-precision routines under one name each, for the Krylov template.
void gemm(char ta, char tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc) {
    blas::require().sgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}
void gemm(char ta, char tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb,
          double beta, double* c, int ldc) {
    blas::require().dgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}
// lwork = -1 is LAPACK's workspace query: the size comes back in work[0].
void geqrf(int m, int n, float* a, float* tau, float* work, int lwork) {
    int info = 0;
    blas::require().sgeqrf(&m, &n, a, &m, tau, work, &lwork, &info);
    check_info("sgeqrf", info);
}
void geqrf(int m, int n, double* a, double* tau, double* work, int lwork) {
    int info = 0;
    blas::require().dgeqrf(&m, &n, a, &m, tau, work, &lwork, &info);
    check_info("dgeqrf", info);
}
void orgqr(int m, int n, float* a, const float* tau, float* work, int lwork) {
    int info = 0;
    blas::require().sorgqr(&m, &n, &n, a, &m, tau, work, &lwork, &info);
    check_info("sorgqr", info);
}
void orgqr(int m, int n, double* a, const double* tau, double* work, int lwork) {
    int info = 0;
    blas::require().dorgqr(&m, &n, &n, a, &m, tau, work, &lwork, &info);
    check_info("dorgqr", info);
}

// Uninitialized storage, for buffers whose every element is written before it is read: a
// Krylov basis is sized for max_blocks but most runs stop after a few blocks, and zero-filling
// all of it (faulting every page in) cost ~60 ms per 4096-wide matrix.
template <typename T>
class Scratch {
public:
    void allocate(size_t n) { p_.reset(new T[n]); }
    T* data() { return p_.get(); }
    const T* data() const { return p_.get(); }

private:
    std::unique_ptr<T[]> p_;
};

// G = A A^T or A^T A, whichever is smaller (s x s, upper triangle), accumulated in double from
// panels decoded straight from the source.
Scratch<double> gram_matrix(const MatrixView& a, const std::atomic<bool>* cancel) {
    const auto& L = blas::require();
    const bool wide = a.rows <= a.cols;  // Gram of the rows when they are the short side
    const size_t s = wide ? a.rows : a.cols;
    const size_t l = wide ? a.cols : a.rows;
    const int si = to_int(s);
    Scratch<double> g;  // the first panel's dsyrk (beta = 0) writes the upper triangle
    g.allocate(s * s);
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
    return g;
}

// Copies G's upper triangle into its lower one, by tiles that keep both sides in cache.
void fill_lower(double* g, size_t s) {
    constexpr size_t kTile = 64;
    for (size_t j0 = 0; j0 < s; j0 += kTile)
        for (size_t i0 = j0; i0 < s; i0 += kTile)
            for (size_t j = j0; j < std::min(j0 + kTile, s); ++j)
                for (size_t i = std::max(i0, j + 1); i < std::min(i0 + kTile, s); ++i) g[i + j * s] = g[j + i * s];
}

// y = G x for a dense symmetric matrix with both triangles stored (exact's Krylov run on the
// Gram matrix). Rows are split across the engine's threads, each calling single-threaded BLAS.
class DenseProduct {
public:
    DenseProduct(const double* g, size_t s, int width, int threads)
        : g_(g), s_(s), width_(width), workers_(std::max(1, std::min<int>(threads, static_cast<int>(s / 256)))) {}

    size_t short_side() const { return s_; }
    double column_flops() const { return 2.0 * static_cast<double>(s_) * static_cast<double>(s_); }

    void apply(const double* x, double* y) const {
        const int s = to_int(s_);
        parallel_ranges(workers_, s_, [&](int, size_t r0, size_t r1) {
            gemm('N', 'N', static_cast<int>(r1 - r0), width_, s, 1.0, g_ + r0, s, x, s, 0.0, y + r0, s);
        });
    }

private:
    const double* g_;
    size_t s_;
    int width_, workers_;
};

// The top Ritz pairs of a Krylov basis, descending: values, residual norms ||C x - theta x||,
// and (when certifying) the unit Ritz vectors, column i (short side long) for theta[i].
template <typename T>
struct RitzPairs {
    std::vector<double> theta, residual;
    std::vector<T> vectors;
};

// The bounds below hold in exact arithmetic; the float32 products put rounding errors of a few
// 1e-7 on the Ritz values themselves (measured up to 3e-7 on 8192-wide matrices), which the
// residuals do not see. Every certified bound carries this floor, so tolerances under it are
// never certified by auto's float32 run and go to the exact method.
constexpr double kRoundingFloor = 1e-6;

// Ritz values sit below the eigenvalues (Cauchy interlacing, theta_i <= lambda_i), and
// lambda_i - theta_i <= min(r_i, r_i^2 / (theta_i - alpha)) for any alpha >= lambda_{i+1} below
// theta_i: the first is Bauer-Fike, the second follows from x^T (C - alpha)(C - lambda_i) x >= 0
// when no eigenvalue lies strictly between alpha and lambda_i. The quadratic form certifies
// well-separated values several blocks earlier. Returns the largest bound on a singular value's
// relative error, sqrt(lambda) being within (lambda - theta) / (2 theta) of sqrt(theta).
double relative_bound(double theta, double err) {
    return theta > 0 ? err / (2.0 * theta) : std::numeric_limits<double>::infinity();
}

// auto's certificate: alpha = theta_{i+1} + r_{i+1} assumes that the Ritz value i+1
// approximates lambda_{i+1} (the random start block makes missing an eigenvalue improbable;
// Bauer-Fike alone rests on the same assumption), plus the float32 rounding floor.
double assumed_order_bound(const RitzPairs<float>& p, int k) {
    const auto& theta = p.theta;
    const auto& res = p.residual;
    double bound = 0;
    for (size_t i = 0; i < static_cast<size_t>(k); ++i) {
        double err = res[i];
        if (i + 1 < theta.size()) {
            const double gap = theta[i] - (theta[i + 1] + res[i + 1]);
            if (gap > 0) err = std::min(err, res[i] * res[i] / gap);
        }
        bound = std::max(bound, relative_bound(theta[i], err) + kRoundingFloor);
    }
    return bound;
}

// exact's certificate, for a Krylov run on the Gram matrix G itself (double, both triangles
// stored), where auto's assumption is proven instead. Kahan's theorem puts k eigenvalues of G
// within ||R||_F of the top k Ritz values, in order (R = G X - X Theta). If no eigenvalue other
// than those lies above sigma < theta_k - ||R||_F, they are the top k and lambda_{k+1} <= sigma,
// so alpha_i = theta_{i+1} + ||R||_F and alpha_k = sigma are proven. That count: if
// H = sigma I - G + c X X^T is positive definite, sigma I - G is positive definite on the
// (n - k)-dimensional null space of X^T, so G has at most k eigenvalues above sigma. A Cholesky
// factorization decides it, its rounding bounded (Higham, Accuracy and Stability, Thm 10.3) by
// a shift mu taken off H's diagonal first. H is built in G's lower triangle, so the upper one,
// which the LAPACK fallback reads, stays intact. Returns NaN when the count fails: growing the
// basis would not help, the fallback should run.
class InertiaCertificate {
public:
    InertiaCertificate(double* g, int s, int k, double tol, int threads)
        : g_(g), s_(s), k_(k), tol_(tol), threads_(threads) {}

    double operator()(const RitzPairs<double>& p) {
        if (p.theta.size() <= static_cast<size_t>(k_)) return std::numeric_limits<double>::infinity();
        const auto& theta = p.theta;
        const auto& res = p.residual;
        double rf2 = 0;
        for (int i = 0; i < k_; ++i) rf2 += res[static_cast<size_t>(i)] * res[static_cast<size_t>(i)];
        // The products' rounding on the Ritz values and residuals: s units of roundoff of the
        // largest eigenvalue, the order of LAPACK's own error on G. A realistic bound, not a
        // worst-case one (that grows with s^1.5 and would certify nothing).
        const double floor = 4.0 * s_ * kUnitRoundoff * std::max(0.0, theta[0]);
        const double rf = std::sqrt(rf2) + floor;
        const size_t kk = static_cast<size_t>(k_);
        // Values at the rounding level (rank-deficient G) have no relative certificate to reach.
        if (theta[kk - 1] <= 2 * floor) return std::numeric_limits<double>::quiet_NaN();
        const double low = theta[kk - 1] - rf;            // below the k matched eigenvalues
        const double high = theta[kk] + res[kk] + floor;  // lambda_{k+1}, if nothing is missed
        if (!(low > high)) return std::numeric_limits<double>::infinity();
        const double sigma = high + 0.5 * (low - high);
        double bound = 0;
        for (size_t i = 0; i < kk; ++i) {
            const double alpha = i + 1 < kk ? theta[i + 1] + rf : sigma;
            double err = rf;
            if (theta[i] > alpha) err = std::min(err, res[i] * res[i] / (theta[i] - alpha) + floor);
            bound = std::max(bound, relative_bound(theta[i], err));
        }
        if (bound > tol_) return bound;
        counted_ = true;
        const double c = theta[0] + rf - sigma + (low - high);
        bool proven = false;
        timed(seconds_, [&] { proven = at_most_k_above(p.vectors, sigma, c, 0.25 * (low - high)); });
        return proven ? bound : std::numeric_limits<double>::quiet_NaN();
    }

    double seconds() const { return seconds_; }

    // Puts G's diagonal back after a count (the Cholesky factor overwrote it).
    void restore() {
        if (!counted_) return;
        for (size_t i = 0; i < diag_.size(); ++i) g_[i * static_cast<size_t>(s_) + i] = diag_[i];
    }

private:
    static constexpr double kUnitRoundoff = std::numeric_limits<double>::epsilon() / 2;
    double* g_;
    int s_, k_;
    double tol_;
    int threads_;
    bool counted_ = false;
    double seconds_ = 0;
    std::vector<double> diag_;

    static double gamma(double n) { return n * kUnitRoundoff / (1.0 - n * kUnitRoundoff); }

    bool at_most_k_above(const std::vector<double>& x, double sigma, double c, double mu) {
        const auto& L = blas::require();
        const size_t s = static_cast<size_t>(s_);
        double* g = g_;
        diag_.resize(s);
        double trace = 0, xnorm2 = 0;
        for (size_t i = 0; i < s; ++i) trace += diag_[i] = g[i * s + i];
        for (size_t i = 0; i < s * static_cast<size_t>(k_); ++i) xnorm2 += x[i] * x[i];
        const char lower = 'L', no_trans = 'N';
        const double minus_one = -1.0;  // the lower triangle becomes c X X^T - G
        L.dsyrk(&lower, &no_trans, &s_, &k_, &c, x.data(), &s_, &minus_one, g, &s_);
        for (size_t i = 0; i < s; ++i) g[i * s + i] += sigma - mu;
        int info = 0;
        blas::set_threads(threads_);
        L.dpotrf(&lower, &s_, g, &s_, &info);
        blas::set_threads(1);
        if (info < 0) check_info("dpotrf", info);
        if (info > 0) return false;  // not positive definite: an eigenvalue was missed, or rounding
        double factor2 = 0;
        for (size_t j = 0; j < s; ++j)
            for (size_t i = j; i < s; ++i) factor2 += g[i + j * s] * g[i + j * s];
        // ||L L^T - (H~ - mu I)||_2 <= gamma_{s+1} ||L||_F^2, and H~ is H up to the rounding of
        // forming it (entrywise at most gamma_{k+3} times c|X||X^T| + |G| + sigma I).
        const double forming = gamma(k_ + 3.0) * (c * xnorm2 + trace + static_cast<double>(s) * std::fabs(sigma));
        return gamma(static_cast<double>(s) + 1.0) * factor2 + forming < mu;
    }
};

// Block Krylov subspace of the symmetric operator C of `Product` (float: A^T A or A A^T read from
// the source; double: exact's Gram matrix), with full reorthogonalization and Rayleigh-Ritz. With
// tol > 0 it grows until `certify` bounds every one of the top k singular values within tol
// relative; it returns an empty result if max_blocks is reached first, or if `certify` returns
// NaN (the basis cannot be certified).
template <typename T, typename Product>
class Krylov {
public:
    Krylov(Product& product, int k, int block, int threads, uint64_t seed)
        : k_(k), b_(block), threads_(std::max(1, threads)), product_(product) {
        s_ = to_int(product_.short_side());
        std::mt19937_64 rng(seed);
        std::normal_distribution<T> normal;
        start_.resize(static_cast<size_t>(s_) * static_cast<size_t>(b_));
        for (auto& x : start_) x = normal(rng);
    }

    template <typename Certify>
    SvdResult run(int max_blocks, double tol, const std::atomic<bool>* cancel, Certify&& certify) {
        // The products run on the engine's own threads; OpenBLAS workers left spinning after
        // its small calls (basis orthogonalization) would take their cores.
        const blas::RestoreThreads restore_blas_threads;
        blas::set_threads(1);
        allocate(max_blocks);
        const size_t s = static_cast<size_t>(s_), b = static_cast<size_t>(b_);
        std::copy(start_.begin(), start_.end(), q_.data());
        timed(phases_.orthogonalization, [&] { orthonormalize(0, false); });
        CheckSchedule schedule;
        for (int j = 0; j <= max_blocks; ++j) {
            check_cancel(cancel);
            T* qj = q_.data() + s * b * static_cast<size_t>(j);
            T* cqj = cq_.data() + s * b * static_cast<size_t>(j);
            timed(phases_.products, [&] { product_.apply(qj, cqj); });
            timed(phases_.projection, [&] { extend_projection(j); });
            const bool last = j == max_blocks;
            if (tol > 0 && (j + 1 >= schedule.next || last)) {
                RitzPairs<T> p;
                double bound = 0;
                timed(phases_.checks, [&] {
                    p = rayleigh_ritz(j + 1, true);
                    bound = certify(p);
                });
                if (std::isnan(bound)) break;
                if (bound <= tol) return result(p, j + 1, "krylov", bound);
                schedule.after(j + 1, bound, tol, cheap_check(j + 2));
            }
            if (last) break;
            std::copy_n(cqj, s * b, qj + s * b);
            timed(phases_.orthogonalization, [&] { orthonormalize(j + 1, true); });
        }
        if (tol > 0) return result(RitzPairs<T>{}, 0, "", 0);  // not certified within the budget
        RitzPairs<T> p;
        timed(phases_.checks, [&] { p = rayleigh_ritz(max_blocks + 1, false); });
        return result(p, max_blocks + 1, "fast", std::numeric_limits<double>::quiet_NaN());
    }

private:
    SvdPhases phases_;

    SvdResult result(const RitzPairs<T>& p, int blocks, const char* method, double bound) const {
        SvdResult r;
        const size_t k = std::min(p.theta.size(), static_cast<size_t>(k_));
        for (size_t i = 0; i < k; ++i) r.values.push_back(std::sqrt(std::max(0.0, p.theta[i])));
        r.method = method;
        r.blocks = blocks;
        r.error_bound = bound;
        r.phases = phases_;
        return r;
    }

    int k_, b_, threads_, s_ = 0;
    Product& product_;
    std::vector<T> start_, h_, tau_, work_, partial_;
    Scratch<T> q_, cq_;  // the basis and C times it, s x dmax_
    size_t dmax_ = 0;    // largest basis size of this run
    Scratch<double> t_;  // T = Q^T C Q, column-major with leading dimension dmax_, upper part kept
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
        q_.allocate(s * dmax_);
        cq_.allocate(s * dmax_);
        t_.allocate(dmax_ * dmax_);
        h_.resize(dmax_ * b);
        tau_.resize(b);
        T wq = 0;
        geqrf(s_, b_, q_.data(), tau_.data(), &wq, -1);
        work_.resize(static_cast<size_t>(std::max(1, static_cast<int>(wq))) * 2);
    }

    // Flop model, fitted to timings: a check (dsyevr of the d x d projection, residual
    // products) costs at most an eighth of a block (the product with C).
    bool cheap_check(int blocks) const {
        const double d = static_cast<double>(blocks) * b_;
        const double check = 50.0 * d * d * d + 4.0 * s_ * d * (k_ + 1);
        return check * 8 <= product_.column_flops() * b_;
    }

    // The basis products below split the s rows across the engine's threads, each calling
    // single-threaded BLAS (see run()).
    int row_workers() const { return std::max(1, std::min(threads_, s_ / 512)); }

    // h (d x n) = Q[:, 0:d]^T x for x: s x n.
    void inner(int d, int n, const T* x, T* h) {
        const int workers = row_workers();
        const size_t hs = static_cast<size_t>(d) * static_cast<size_t>(n);
        partial_.resize(hs * static_cast<size_t>(workers - 1));
        parallel_ranges(workers, static_cast<size_t>(s_), [&](int w, size_t r0, size_t r1) {
            T* out = w == 0 ? h : partial_.data() + hs * static_cast<size_t>(w - 1);
            gemm('T', 'N', d, n, static_cast<int>(r1 - r0), T(1), q_.data() + r0, s_, x + r0, s_, T(0), out, d);
        });
        for (int w = 1; w < workers; ++w)
            for (size_t i = 0; i < hs; ++i) h[i] += partial_[hs * static_cast<size_t>(w - 1) + i];
    }

    // y (s x n) = alpha basis[:, 0:d] h + beta y, for h: d x n.
    void combine(const T* basis, int d, const T* h, int n, T alpha, T beta, T* y) {
        parallel_ranges(row_workers(), static_cast<size_t>(s_), [&](int, size_t r0, size_t r1) {
            gemm('N', 'N', static_cast<int>(r1 - r0), n, d, alpha, basis + r0, s_, h, d, beta, y + r0, s_);
        });
    }

    // T[0:(j+1)b, block j] = Q[:, 0:(j+1)b]^T C Q_j: the new columns of the projected matrix.
    void extend_projection(int j) {
        const size_t s = static_cast<size_t>(s_), b = static_cast<size_t>(b_);
        const int d = (j + 1) * b_;
        inner(d, b_, cq_.data() + s * b * static_cast<size_t>(j), h_.data());
        for (size_t c = 0; c < b; ++c)
            for (size_t r = 0; r < static_cast<size_t>(d); ++r)
                t_.data()[r + (static_cast<size_t>(j) * b + c) * dmax_] = h_[r + c * static_cast<size_t>(d)];
    }

    void project_out(T* v, int d, bool projection_known) {
        if (!projection_known) inner(d, b_, v, h_.data());
        combine(q_.data(), d, h_.data(), b_, T(-1), T(1), v);
    }

    // Makes block j orthonormal and orthogonal to blocks 0..j-1: classical Gram-Schmidt twice,
    // then Householder QR. When the block had (nearly) collapsed into the span already, QR's new
    // directions are noise, so they are orthogonalized and factored once more. from_product:
    // block j is C times block j-1, whose projection onto the basis extend_projection has just
    // left in h_, so the first pass need not compute it again.
    void orthonormalize(int j, bool from_product) {
        T* v = q_.data() + static_cast<size_t>(s_) * static_cast<size_t>(b_) * static_cast<size_t>(j);
        const int d = j * b_;
        const int lwork = static_cast<int>(work_.size());
        for (int attempt = 0; attempt < 2; ++attempt) {
            for (int pass = 0; pass < 2 && d > 0; ++pass) project_out(v, d, from_product && attempt == 0 && pass == 0);
            geqrf(s_, b_, v, tau_.data(), work_.data(), lwork);
            T rmax = 0, rmin = std::numeric_limits<T>::infinity();
            for (int i = 0; i < b_; ++i) {
                const T r = std::fabs(v[static_cast<size_t>(i) + static_cast<size_t>(i) * static_cast<size_t>(s_)]);
                rmax = std::max(rmax, r);
                rmin = std::min(rmin, r);
            }
            orgqr(s_, b_, v, tau_.data(), work_.data(), lwork);
            if (d == 0 || rmin > T(1e-4) * rmax) return;
        }
    }

    RitzPairs<T> rayleigh_ritz(int blocks, bool certify) {
        const size_t s = static_cast<size_t>(s_);
        const int d = blocks * b_;
        const size_t dd = static_cast<size_t>(d);
        std::vector<double> t(dd * dd);
        for (size_t c = 0; c < dd; ++c)
            for (size_t r = 0; r <= c; ++r) t[r + c * dd] = t_.data()[r + c * dmax_];  // dsyevr reads the upper part
        const int k = std::min(k_, d);
        // One pair beyond the top k (the block is wider than k) bounds lambda_{k+1} for the gap.
        const int kk = certify ? std::min(k + 1, d) : k;
        const size_t kz = static_cast<size_t>(kk);
        std::vector<double> y(dd * kz);
        RitzPairs<T> p;
        p.theta = sym_eig_range(t.data(), d, d - kk + 1, d, certify ? y.data() : nullptr);
        std::reverse(p.theta.begin(), p.theta.end());
        if (!certify) return p;
        // Descending order for the vectors too (dsyevr's are ascending).
        std::vector<T> yt(dd * kz);
        for (size_t i = 0; i < kz; ++i) std::copy_n(y.begin() + (kz - 1 - i) * dd, dd, yt.begin() + i * dd);
        std::vector<T> cx(s * kz);
        p.vectors.resize(s * kz);
        combine(cq_.data(), d, yt.data(), kk, 1, 0, cx.data());
        combine(q_.data(), d, yt.data(), kk, 1, 0, p.vectors.data());
        p.residual.resize(kz);
        for (size_t i = 0; i < kz; ++i) {
            double rn = 0;
            for (size_t r = 0; r < s; ++r) {
                const double e = static_cast<double>(cx[r + s * i]) - p.theta[i] * p.vectors[r + s * i];
                rn += e * e;
            }
            p.residual[i] = std::sqrt(rn);
        }
        return p;
    }
};

// Below this short side LAPACK on the Gram matrix takes milliseconds and a Krylov method's fixed
// costs (a Rayleigh-Ritz check is an eigenproblem of its own) win nothing (measured on the real
// checkpoints' matrices, bench/RESULTS.md).
constexpr size_t kKrylovMinSide = 1024;

// What exact certifies when it takes the Krylov route: every value within this relative error
// (measured errors are ~1e-13). The certificate's rounding floor, s units of roundoff of the
// largest eigenvalue, reaches 1e-10 on the 16th value of s_i = 1/i at 2048, so a tighter
// tolerance would send steep spectra to LAPACK after a wasted run.
constexpr double kExactTol = 1e-9;

// Krylov block widths are whole multiples of the product kernel's vectors.
int block_for(int columns) { return (columns + kBlockMultiple - 1) / kBlockMultiple * kBlockMultiple; }

// From this short side on, exact's Krylov run and certificate cost less than LAPACK's eigensolver
// (top-16 of a flat square matrix, 2 threads: 0.34 s against 0.41 s at 2048, 0.7 s against 1.16
// s at 3072; at 1024 the run is not certified within a third of G and LAPACK runs after it).
constexpr size_t kExactKrylovMinSide = 2048;

// Exact: the top k eigenvalues of the Gram matrix G in double, from a Krylov run on G whose
// certificate proves kExactTol, or else (small or clustered spectra, a missed eigenvalue) from
// LAPACK's dsyevr on G, which reduces all of G to tridiagonal form and costs several times more.
SvdResult exact(const MatrixView& a, int k, const SvdOptions& opt, const std::atomic<bool>* cancel) {
    SvdResult r;
    Scratch<double> g;
    timed(r.phases.gram, [&] { g = gram_matrix(a, cancel); });
    const size_t s = std::min(a.rows, a.cols);
    const int si = to_int(s);
    // The narrowest block that holds k values: products with G cost little, and a narrow block
    // reaches the tolerance with a smaller basis (top-16 of a flat 4096^2 G: 41 blocks of 16
    // against 29 of 32, 2.4 s against 2.6 s in all). A basis past a third of G costs more in
    // orthogonalization and checks than LAPACK.
    const int block = block_for(k);
    const int max_blocks = static_cast<int>(std::min<size_t>(s / 3 / static_cast<size_t>(block), 120));
    if (s >= kExactKrylovMinSide && max_blocks >= 4) {
        fill_lower(g.data(), s);
        DenseProduct product(g.data(), s, block, opt.threads);
        InertiaCertificate certificate(g.data(), si, k, kExactTol, opt.threads);
        SvdResult kr = Krylov<double, DenseProduct>(product, k, block, opt.threads, opt.seed)
                           .run(max_blocks, kExactTol, cancel, certificate);
        kr.phases.gram = r.phases.gram;
        kr.phases.certificate = certificate.seconds();
        kr.phases.checks -= kr.phases.certificate;
        if (!kr.values.empty()) {
            kr.method = "exact";
            return kr;
        }
        certificate.restore();
        r.phases = kr.phases;  // the uncertified run's time, kept in the record
    }
    std::vector<double> w;
    timed(r.phases.eigen, [&] { w = sym_eig_range(g.data(), si, si - k + 1, si, nullptr); });
    r.method = "exact";
    for (auto it = w.rbegin(); it != w.rend(); ++it) r.values.push_back(std::sqrt(std::max(0.0, *it)));
    return r;
}

}  // namespace

SvdResult top_singular_values(const MatrixView& a, int k, const SvdOptions& opt, const std::atomic<bool>* cancel) {
    if (k < 0) throw std::invalid_argument("k must be non-negative");
    const size_t s = std::min(a.rows, a.cols);
    k = static_cast<int>(std::min<size_t>(static_cast<size_t>(k), s));
    if (k == 0) return SvdResult{{}, opt.method == SvdMethod::Exact ? "exact" : "fast", 0, 0, SvdPhases{}};
    if (opt.method == SvdMethod::Exact) return exact(a, k, opt, cancel);
    // fast's block: it builds a fixed number of blocks, so oversampling buys accuracy.
    const int block = block_for(k + std::max(0, opt.oversample));
    // Past half the short side a Krylov basis costs more than the exact method (and past all of
    // it, it cannot stay orthonormal).
    const int max_blocks = static_cast<int>(std::min<size_t>(s / 2 / static_cast<size_t>(block), 60));
    const auto certify = [k](const RitzPairs<float>& p) { return assumed_order_bound(p, k); };
    if (opt.method == SvdMethod::Fast) {
        const int blocks = std::max(1, opt.krylov_blocks);
        if (blocks > max_blocks) return exact(a, k, opt, cancel);
        GramProduct product(a, block, opt.threads);
        return Krylov<float, GramProduct>(product, k, block, opt.threads, opt.seed).run(blocks, 0.0, cancel, certify);
    }
    // With room for fewer than 8 blocks a flat spectrum is rarely certified, and the failed
    // attempt would come on top of the exact method's time (top-64 of 1024 x 4096: 0.29 s
    // against 0.11 s).
    if (max_blocks >= 8 && s >= kKrylovMinSide && opt.tol > 2 * kRoundingFloor) {
        // auto grows its basis until it is certified, and the narrowest block that holds k
        // gets there for the least work (top-16, 2 threads, blocks of 16 against 32: flat
        // 4096^2 0.32 s against 0.46 s, heavy 4096x11008 0.28 s against 0.36 s, a Llama-3-8B
        // shaped gate 0.30 s against 0.45 s), within the same largest basis.
        const int narrow = block_for(k);
        GramProduct product(a, narrow, opt.threads);
        SvdResult r = Krylov<float, GramProduct>(product, k, narrow, opt.threads, opt.seed)
                          .run(max_blocks * block / narrow, opt.tol, cancel, certify);
        if (!r.values.empty()) return r;
        SvdResult e = exact(a, k, opt, cancel);
        e.phases.products += r.phases.products;  // the failed attempt's time, kept in the record
        e.phases.orthogonalization += r.phases.orthogonalization;
        e.phases.projection += r.phases.projection;
        e.phases.checks += r.phases.checks;
        e.phases.fallback = true;
        return e;
    }
    return exact(a, k, opt, cancel);
}

}  // namespace wpf
