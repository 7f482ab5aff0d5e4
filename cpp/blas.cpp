#include "blas.hpp"

#include <stdexcept>

namespace wpf::blas {

Table& table() {
    static Table t;
    return t;
}

const Table& require() {
    const Table& t = table();
    if (!t.sgemm || !t.dgemm || !t.dsyrk || !t.dsyevr || !t.sgeqrf || !t.sorgqr || !t.dgeqrf || !t.dorgqr || !t.dpotrf)
        throw std::logic_error("BLAS/LAPACK entry points were not initialised");
    return t;
}

void set_threads(int n) {
    if (table().set_threads) table().set_threads(n);
}

RestoreThreads::RestoreThreads() : saved_(table().get_threads ? table().get_threads() : 0) {}

RestoreThreads::~RestoreThreads() {
    if (saved_ > 0) set_threads(saved_);
}

}  // namespace wpf::blas
