#include "blas.hpp"

#include <stdexcept>

namespace wpf::blas {

Table& table() {
    static Table t;
    return t;
}

const Table& require() {
    const Table& t = table();
    if (!t.sgemm || !t.ssyrk || !t.dsyrk || !t.dsyevr || !t.sgeqrf || !t.sorgqr)
        throw std::logic_error("BLAS/LAPACK entry points were not initialised");
    return t;
}

}  // namespace wpf::blas
