// A matrix applied to a few probe vectors: the products the token-probe forms are made of
// (probes.py). The probes are the unit embeddings of anchor tokens, so the products are what each
// projection does to those tokens, in a form no rotation or width change of the residual moves.
#pragma once
#include <atomic>
#include <cstddef>
#include <vector>

#include "matrix.hpp"

namespace wpf {

struct ProbeSpec {
    size_t count = 0;      // probe vectors; 0: none wanted
    bool columns = false;  // probes along the rows (P A) instead of the columns (A P^T)
    // count x cols (A P^T) or count x rows (P A), row-major.
    std::vector<double> probes;
};

// Throws std::invalid_argument unless the probes match the dimension they multiply.
void check_probe(const MatrixView& a, const ProbeSpec& spec);

// A P^T (rows x count) or P A (count x cols), row-major: each panel's product in single precision,
// the panels summed in double. Throws std::domain_error if
// the matrix holds NaN or Inf, std::invalid_argument on a bad spec. Checks `cancel` between panels.
std::vector<double> probe_product(const MatrixView& a, const ProbeSpec& spec, int threads,
                                  const std::atomic<bool>* cancel = nullptr);

}  // namespace wpf
