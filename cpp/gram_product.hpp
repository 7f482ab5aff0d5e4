// y = C x for C = A^T A (A tall) or A A^T (A wide) and a skinny block x: the product every
// Krylov step makes. BLAS would run it as two GEMMs with few right-hand sides on a float copy
// of A, packing A for each (about a third of a core's peak at 26 columns). Here A is read where
// it lies, in its own dtype, a panel of rows at a time: each panel is decoded into a small
// buffer and used for both products while it sits in cache. No copy of A is made.
#pragma once
#include <cstddef>
#include <vector>

#include "matrix.hpp"

namespace wpf {

// The kernel pads the block to whole vectors of this many columns, so a block of a multiple of
// it costs no more than the narrower block it replaces.
constexpr int kBlockMultiple = 16;

class GramProduct {
public:
    // `a` must stay valid while this object is used; the block has `width` columns.
    GramProduct(const MatrixView& a, int width, int threads);

    size_t short_side() const { return s_; }
    size_t long_side() const { return l_; }
    // Floating-point operations per column of x in apply().
    double column_flops() const { return 4.0 * static_cast<double>(s_) * static_cast<double>(l_); }

    // y = C x for x, y: short_side x width, column-major. Throws std::domain_error if A holds
    // NaN or Inf (checked on the first call, which reads every element).
    void apply(const float* x, float* y);

private:
    MatrixView a_;
    bool wide_;
    size_t s_, l_, pw_;  // pw_: width padded to whole vectors
    int width_, workers_;
    bool direct_;  // aligned F32 rows at a fixed stride: used in place, not decoded
    bool checked_ = false;
    std::vector<float> x_;     // x row-major, rows of pw_ floats
    std::vector<float> work_;  // tall: each worker's share of y; wide: A^T x (long side x pw_)
    std::vector<float> y_;     // wide: y row-major

    const float* rows_at(size_t i, size_t rows, size_t j0, size_t n, float* tile, size_t& lda) const;
    bool apply_tall();
    bool apply_wide();
};

}  // namespace wpf
