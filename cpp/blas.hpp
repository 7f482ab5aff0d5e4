// BLAS/LAPACK entry points, as a table of function pointers filled in at import time.
//
// The engine links no BLAS of its own: it calls the OpenBLAS that SciPy ships, through the
// function pointers SciPy publishes for exactly this purpose (scipy.linalg.cython_blas and
// cython_lapack). Fortran calling convention, 32-bit integers (LP64).
#pragma once

namespace wpf::blas {

using sgemm_t = void(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                     const int*, const float*, const int*, const float*, float*, const int*);
using dgemm_t = void(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                     const int*, const double*, const int*, const double*, double*, const int*);
using dsyrk_t = void(const char*, const char*, const int*, const int*, const double*, const double*, const int*,
                     const double*, double*, const int*);
using dsyevr_t = void(const char*, const char*, const char*, const int*, double*, const int*, const double*,
                      const double*, const int*, const int*, const double*, int*, double*, double*, const int*, int*,
                      double*, const int*, int*, const int*, int*);
using sgeqrf_t = void(const int*, const int*, float*, const int*, float*, float*, const int*, int*);
using sorgqr_t = void(const int*, const int*, const int*, float*, const int*, const float*, float*, const int*, int*);
using dgeqrf_t = void(const int*, const int*, double*, const int*, double*, double*, const int*, int*);
using dorgqr_t = void(const int*, const int*, const int*, double*, const int*, const double*, double*, const int*,
                      int*);
using dpotrf_t = void(const char*, const int*, double*, const int*, int*);
using set_threads_t = void(int);
using get_threads_t = int();

struct Table {
    sgemm_t* sgemm = nullptr;
    dgemm_t* dgemm = nullptr;
    dsyrk_t* dsyrk = nullptr;
    dsyevr_t* dsyevr = nullptr;
    sgeqrf_t* sgeqrf = nullptr;
    sorgqr_t* sorgqr = nullptr;
    dgeqrf_t* dgeqrf = nullptr;
    dorgqr_t* dorgqr = nullptr;
    dpotrf_t* dpotrf = nullptr;
    // Optional: OpenBLAS's thread-count controls, so the scheduler can avoid oversubscription.
    set_threads_t* set_threads = nullptr;
    get_threads_t* get_threads = nullptr;
};

// The process-wide table; set once by the bindings before any kernel runs.
Table& table();
// Throws std::logic_error if a required entry is missing.
const Table& require();

// OpenBLAS's thread count, where its controls were found (a no-op otherwise).
void set_threads(int n);

// Restores the thread count OpenBLAS had at construction when destroyed, exceptions included.
class RestoreThreads {
public:
    RestoreThreads();
    ~RestoreThreads();
    RestoreThreads(const RestoreThreads&) = delete;
    RestoreThreads& operator=(const RestoreThreads&) = delete;

private:
    int saved_ = 0;
};

}  // namespace wpf::blas
