// Top-k singular values of a matrix view.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "matrix.hpp"

namespace wpf {

enum class SvdMethod {
    Exact,  // Gram matrix of the short side in double; a Krylov run on it certified to 1e-9 relative,
            // or LAPACK dsyevr restricted to the top k
    Fast,   // block Krylov subspace in float, a fixed number of blocks, no accuracy check
    Auto,   // block Krylov grown until a residual bound certifies `tol`; exact when cheaper or uncertified
};

bool parse_svd_method(const std::string& name, SvdMethod& out);

struct SvdOptions {
    SvdMethod method = SvdMethod::Auto;
    int oversample = 10;    // Fast: block size is k + oversample, rounded up to a multiple of 16
    int krylov_blocks = 8;  // Fast: blocks after the start block (the "power iterations")
    double tol = 1e-3;      // Auto: certified relative error of every returned value
    int threads = 1;        // Krylov products and basis updates (OpenBLAS held to one thread meanwhile)
    uint64_t seed = 0x5EED;
};

// Where a call's time went, in seconds (bench/bench_breakdown.py reports them).
struct SvdPhases {
    double products = 0;           // Krylov: C times a block (the matrix is read and decoded here)
    double orthogonalization = 0;  // Krylov: Gram-Schmidt and QR of each new block
    double projection = 0;         // Krylov: the projected matrix's new columns
    double checks = 0;             // Krylov: Rayleigh-Ritz and the residual bounds
    double certificate = 0;        // exact: the inertia count (Cholesky) proving no value was missed
    double gram = 0;               // exact: the Gram matrix in double (read, decode, dsyrk)
    double eigen = 0;              // exact: dsyevr on it, when the Krylov run on it was not certified
    bool fallback = false;         // auto: Krylov did not certify tol, so exact ran after it
};

struct SvdResult {
    std::vector<double> values;  // descending, min(k, rows, cols) of them
    std::string method;          // "exact", "fast" or "krylov" (what Auto ended up using)
    double error_bound = 0;      // certified relative bound; 0 when dsyevr computed them; NaN for fast
    int blocks = 0;              // Krylov blocks used
    SvdPhases phases;
};

// Throws std::domain_error if the matrix holds NaN or Inf. Checks `cancel` between BLAS calls.
SvdResult top_singular_values(const MatrixView& a, int k, const SvdOptions& opt,
                              const std::atomic<bool>* cancel = nullptr);

}  // namespace wpf
