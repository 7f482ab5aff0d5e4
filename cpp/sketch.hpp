// A count sketch of a matrix: its elements hashed by position into a few signed buckets. Linear in
// the matrix, so two matrices in one coordinate system (a fine-tune, an average, a copied layer)
// keep the inner product of their sketches near that of their elements, while matrices that share
// no coordinates give sketches that do not correlate (lineage by shared coordinates, sketch.py).
#pragma once
#include <atomic>
#include <cstddef>
#include <vector>

#include "matrix.hpp"

namespace wpf {

// Buckets must be a power of two between 2 and 2^16; throws std::invalid_argument otherwise.
void check_sketch(size_t buckets);

// sketch[b] = sum over elements (i, j) hashed to b of sign(i, j) * a[i][j], in double; the hash of
// (i, j) depends on the position only, so equal shapes hash alike. Throws std::domain_error if
// the matrix holds NaN or Inf. Checks `cancel` between panels.
std::vector<double> count_sketch(const MatrixView& a, size_t buckets, int threads,
                                 const std::atomic<bool>* cancel = nullptr);

}  // namespace wpf
