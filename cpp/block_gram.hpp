// Diagonal blocks of a matrix's Gram matrix: the per-head (or per-neuron) Grams that the lineage
// invariants are made of.
#pragma once
#include <atomic>
#include <cstddef>
#include <vector>

#include "matrix.hpp"

namespace wpf {

struct BlockGramSpec {
    size_t block = 0;      // rows (or columns) per block; 0: none wanted
    bool columns = false;  // blocks of columns (A^T A) instead of rows (A A^T)
    // Weights along the summed axis (columns for row blocks, rows for column blocks), applied
    // to A before the product: G_b = A_b diag(w)^2 A_b^T. Empty: all ones. This is how norm
    // weights are folded into the matrices that read the norm's output.
    std::vector<double> weights;
};

// Throws std::invalid_argument unless `block` divides the blocked dimension and the weights, if
// any, match the summed one.
void check_block_gram(const MatrixView& a, const BlockGramSpec& spec);

// The blocks G_0, G_1, ... in double, each block x block and row-major, concatenated: for row
// blocks G_b = W_b W_b^T with W_b = (A diag(w))[b*block : (b+1)*block, :]; for column blocks
// G_b = W_b^T W_b with W_b = (diag(w) A)[:, b*block : (b+1)*block]. The blocked dimension must
// be a multiple of `block`. Throws std::domain_error if the matrix holds NaN or Inf, and
// std::invalid_argument on a bad spec. Checks `cancel` between panels.
std::vector<double> block_gram(const MatrixView& a, const BlockGramSpec& spec, int threads,
                               const std::atomic<bool>* cancel = nullptr);

}  // namespace wpf
