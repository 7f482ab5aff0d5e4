// y = R^T (R x) for a tall row-major float matrix R and a skinny block x: the product every
// Krylov step makes. BLAS runs it as two GEMMs with few right-hand sides, packing R for each
// (about a third of a core's peak at 26 columns). Here each thread streams its rows of R once per
// step, straight from the matrix, and both products reuse the rows while they sit in cache.
#pragma once
#include <cstddef>
#include <vector>

namespace wpf {

class GramProduct {
public:
    // r: rows x cols, row stride ld (floats); the block has `width` columns.
    GramProduct(const float* r, size_t rows, size_t cols, size_t ld, int width, int threads);

    // y = R^T R x for x, y: cols x width, column-major (leading dimension cols).
    void apply(const float* x, float* y);

private:
    const float* r_;
    size_t rows_, cols_, ld_;
    int width_, padded_, workers_;
    std::vector<float> x_;      // x row-major, rows padded to `padded_` floats
    std::vector<float> parts_;  // each worker's share of y, the same layout
};

}  // namespace wpf
