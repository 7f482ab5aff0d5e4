// Native tests of the engine, without Python: doctest's runner, with the BLAS/LAPACK table filled
// from the system's reference LAPACK and BLAS (the Python package fills it from SciPy's instead).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "blas.hpp"

extern "C" {
wpf::blas::sgemm_t sgemm_;
wpf::blas::dgemm_t dgemm_;
wpf::blas::dsyrk_t dsyrk_;
wpf::blas::dsyevr_t dsyevr_;
wpf::blas::sgeqrf_t sgeqrf_;
wpf::blas::sorgqr_t sorgqr_;
wpf::blas::dgeqrf_t dgeqrf_;
wpf::blas::dorgqr_t dorgqr_;
wpf::blas::dpotrf_t dpotrf_;
}

int main(int argc, char** argv) {
    auto& t = wpf::blas::table();
    t.sgemm = &sgemm_;
    t.dgemm = &dgemm_;
    t.dsyrk = &dsyrk_;
    t.dsyevr = &dsyevr_;
    t.sgeqrf = &sgeqrf_;
    t.sorgqr = &sorgqr_;
    t.dgeqrf = &dgeqrf_;
    t.dorgqr = &dorgqr_;
    t.dpotrf = &dpotrf_;
    doctest::Context context(argc, argv);
    return context.run();
}
