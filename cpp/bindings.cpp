// Python bindings: the only file that knows about Python. Every engine call runs without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>

#include "blas.hpp"
#include "block_gram.hpp"
#include "errors.hpp"
#include "gguf.hpp"
#include "gram_product.hpp"
#include "memory_tensor.hpp"
#include "probe.hpp"
#include "safetensors.hpp"
#include "scheduler.hpp"
#include "sketch.hpp"
#include "spectral.hpp"
#include "stats.hpp"

namespace py = pybind11;
using namespace wpf;

namespace {

template <typename F>
F* capsule_pointer(const py::dict& capsules, const char* name) {
    if (!capsules.contains(name)) throw std::runtime_error(std::string("missing BLAS/LAPACK entry ") + name);
    py::object cap = capsules[name];
    void* p = PyCapsule_GetPointer(cap.ptr(), PyCapsule_GetName(cap.ptr()));
    if (!p) throw py::error_already_set();
    return reinterpret_cast<F*>(p);
}

void init_blas(const py::dict& capsules, uintptr_t set_threads, uintptr_t get_threads) {
    auto& t = blas::table();
    t.sgemm = capsule_pointer<blas::sgemm_t>(capsules, "sgemm");
    t.dsyrk = capsule_pointer<blas::dsyrk_t>(capsules, "dsyrk");
    t.dsyevr = capsule_pointer<blas::dsyevr_t>(capsules, "dsyevr");
    t.sgeqrf = capsule_pointer<blas::sgeqrf_t>(capsules, "sgeqrf");
    t.sorgqr = capsule_pointer<blas::sorgqr_t>(capsules, "sorgqr");
    t.dgemm = capsule_pointer<blas::dgemm_t>(capsules, "dgemm");
    t.dgeqrf = capsule_pointer<blas::dgeqrf_t>(capsules, "dgeqrf");
    t.dorgqr = capsule_pointer<blas::dorgqr_t>(capsules, "dorgqr");
    t.dpotrf = capsule_pointer<blas::dpotrf_t>(capsules, "dpotrf");
    t.set_threads = reinterpret_cast<blas::set_threads_t*>(set_threads);
    t.get_threads = reinterpret_cast<blas::get_threads_t*>(get_threads);
}

DType dtype_arg(const std::string& name) {
    DType t;
    if (!parse_decoded_dtype(name, t))
        throw std::invalid_argument("unsupported dtype '" + name + "' (decoded: " + decoded_dtypes() + ")");
    return t;
}

// The numpy float type that holds `t` itself: F16/F32/F64 ("" for every other type). Any type may
// also come as its raw encoded bits in an unsigned integer array (bf16, fp8, ggml blocks).
std::string numpy_float(DType t) {
    const std::string name = dtype_name(t);
    if (name == "F16") return "float16";
    if (name == "F32") return "float32";
    if (name == "F64") return "float64";
    return "";
}

// The array as a rows x cols matrix of `dtype`: C-contiguous, and either raw bits (unsigned) or
// the matching float type, or an error. Nothing is copied or reinterpreted silently: a strided view or a float64 array
// named F32 would otherwise be read as the wrong bytes.
MatrixView array_view(const py::array& a, const std::string& dtype, size_t rows, size_t cols) {
    const DType t = dtype_arg(dtype);
    if (!(a.flags() & py::array::c_style))
        throw std::invalid_argument("array is not C-contiguous (pass np.ascontiguousarray(a))");
    const std::string want = numpy_float(t), have = py::str(a.dtype());
    if (a.dtype().kind() != 'u' && have != want)
        throw std::invalid_argument(
            "an array of " + have + " cannot hold " + dtype +
            (want.empty() ? " (pass its raw bits as an unsigned integer array)" : " (expected " + want + ")"));
    if (cols % block_elements(t) != 0)
        throw std::invalid_argument("rows of " + dtype + " hold whole blocks of " + std::to_string(block_elements(t)));
    if (static_cast<size_t>(a.nbytes()) != encoded_bytes(t, rows * cols))
        throw std::invalid_argument("array of " + std::to_string(a.nbytes()) + " bytes does not hold " +
                                    std::to_string(rows) + " x " + std::to_string(cols) + " " + dtype);
    return MatrixView{static_cast<const uint8_t*>(a.data()), t, rows, cols, cols};
}

SvdOptions svd_options(const std::string& method, int oversample, int krylov_blocks, double tol, int threads) {
    SvdOptions o;
    if (!parse_svd_method(method, o.method))
        throw std::invalid_argument("unknown method '" + method + "' (expected 'auto', 'exact' or 'fast')");
    o.oversample = oversample;
    o.krylov_blocks = krylov_blocks;
    o.tol = tol;
    o.threads = threads > 0 ? threads : 1;
    return o;
}

// Tags of the Python exception types that no one C++ type stands for.
struct BaseErrorTag {};
struct EngineErrorTag {};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

py::array_t<double> to_array(const std::vector<double>& v) {
    return py::array_t<double>(static_cast<py::ssize_t>(v.size()), v.data());
}

py::str utf8(const std::string& s) {
    PyObject* text = PyUnicode_DecodeUTF8(s.data(), static_cast<py::ssize_t>(s.size()), "replace");
    if (text == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(text);
}

py::object gguf_value(const GgufValue& v) {
    switch (v.kind) {
        case GgufValue::Kind::UInt: return py::int_(v.u);
        case GgufValue::Kind::Int: return py::int_(v.i);
        case GgufValue::Kind::Float: return py::float_(v.f);
        case GgufValue::Kind::Bool: return py::bool_(v.b);
        case GgufValue::Kind::String: return utf8(v.s);
        case GgufValue::Kind::Array: break;
    }
    if (v.numbers.size() == v.array_count && v.array_count > 0) return py::cast(v.numbers);
    if (v.strings.size() == v.array_count && v.array_count > 0) {
        py::list tokens(v.strings.size());
        for (size_t i = 0; i < v.strings.size(); ++i) tokens[i] = utf8(v.strings[i]);
        return tokens;
    }
    return py::none();  // strings or long arrays are checked, not kept
}

py::dict gguf_metadata(const GgufFile& f) {
    py::dict d;
    for (const auto& [k, v] : f.metadata()) d[py::str(k)] = gguf_value(v);
    return d;
}

py::array_t<double> read_tensor(const TensorFile& f, const std::string& name) {
    const TensorInfo& t = f.tensor(name);
    if (!is_decoded(t.dtype))
        throw std::invalid_argument(f.path() + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                                    ", which this engine does not decode");
    std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
    py::array_t<double> out(shape);
    double* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        decode(t.dtype, f.tensor_data(t), t.numel, dst);
    }
    return out;
}

// Rows of a 2-D tensor (an embedding's anchor tokens), decoded to float64: only their bytes are read.
py::array_t<double> read_rows(const TensorFile& f, const std::string& name, const std::vector<int64_t>& rows) {
    const TensorInfo& t = f.tensor(name);
    if (!is_decoded(t.dtype))
        throw std::invalid_argument(f.path() + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                                    ", which this engine does not decode");
    if (t.shape.size() != 2) throw std::invalid_argument(f.path() + ": tensor '" + name + "' is not 2-D");
    const auto n = static_cast<size_t>(t.shape[0]), cols = static_cast<size_t>(t.shape[1]);
    for (int64_t r : rows)
        if (r < 0 || static_cast<size_t>(r) >= n)
            throw std::invalid_argument(f.path() + ": row " + std::to_string(r) + " of tensor '" + name +
                                        "' outside its " + std::to_string(n) + " rows");
    py::array_t<double> out({static_cast<py::ssize_t>(rows.size()), static_cast<py::ssize_t>(cols)});
    double* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        for (size_t i = 0; i < rows.size(); ++i)
            decode_range(t.dtype, f.tensor_data(t) + encoded_bytes(t.dtype, static_cast<size_t>(rows[i]) * cols), 0,
                         cols, dst + i * cols);
    }
    return out;
}

std::vector<JobResult> run_analyse(const std::vector<std::shared_ptr<TensorFile>>& files, const std::vector<Job>& js,
                                   int threads, const std::string& method, int oversample, int krylov_blocks,
                                   double tol, const py::object& progress) {
    std::vector<const TensorFile*> fs;
    for (const auto& f : files) fs.push_back(f.get());
    RunOptions opt;
    opt.threads = threads;
    opt.svd = svd_options(method, oversample, krylov_blocks, tol, threads);

    std::optional<py::error_already_set> py_error;
    ProgressFn on_progress = [&](const Progress& p) -> bool {
        py::gil_scoped_acquire gil;
        try {
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            if (!progress.is_none()) progress(p.jobs_done, p.jobs_total, p.bytes_done, p.bytes_total);
        } catch (py::error_already_set& e) {
            py_error.emplace(std::move(e));
            return false;
        }
        return true;
    };
    std::vector<JobResult> results;
    try {
        py::gil_scoped_release nogil;
        results = analyse(fs, js, opt, on_progress);
    } catch (const Cancelled&) {
        if (py_error) throw std::move(*py_error);
        throw py::error_already_set();
    }
    return results;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "weightprint-fast native engine";
    // The package's error hierarchy starts here, so that the engine's errors are its members
    // (errors.py adds the Python-side ones under the same base). The translator is local: other
    // pybind11 modules (usearch) keep their own exceptions.
    static py::exception<BaseErrorTag> base_error(m, "WeightprintError", PyExc_ValueError);
    static py::exception<FormatError> format_error(m, "WeightprintFormatError", base_error.ptr());
    static py::exception<FileAccessError> input_error(m, "InputError", base_error.ptr());
    static py::exception<EngineErrorTag> engine_error(m, "EngineError", base_error.ptr());
    py::register_local_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const py::error_already_set&) {
            throw;  // a Python exception already: the default translators pass it on
        } catch (const py::builtin_exception&) {
            throw;
        } catch (const FormatError& e) {
            PyErr_SetString(format_error.ptr(), e.what());
        } catch (const FileAccessError& e) {
            PyErr_SetString(input_error.ptr(), e.what());
        } catch (const Cancelled&) {
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        } catch (const std::domain_error& e) {
            PyErr_SetString(input_error.ptr(), e.what());
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(input_error.ptr(), e.what());
        } catch (const std::bad_alloc&) {
            PyErr_SetString(engine_error.ptr(), "out of memory in the engine (a matrix larger than the memory left?)");
        } catch (const std::exception& e) {
            PyErr_SetString(engine_error.ptr(), e.what());
        }
    });

    py::class_<Moments>(m, "Moments",
                        "Moments of a matrix's finite elements, accumulated in double; NaN and Inf counted apart.")
        .def(py::init([](uint64_t count, double mean, double m2, double m3, double m4, double min, double max,
                         uint64_t nan, uint64_t inf) {
                 Moments o;
                 o.n = count;
                 o.mean = mean;
                 o.m2 = m2;
                 o.m3 = m3;
                 o.m4 = m4;
                 o.min = min;
                 o.max = max;
                 o.nan = nan;
                 o.inf = inf;
                 return o;
             }),
             py::kw_only(), py::arg("count") = 0, py::arg("mean") = 0.0, py::arg("m2") = 0.0, py::arg("m3") = 0.0,
             py::arg("m4") = 0.0, py::arg("min") = std::numeric_limits<double>::infinity(),
             py::arg("max") = -std::numeric_limits<double>::infinity(), py::arg("nan") = 0, py::arg("inf") = 0,
             "From sums of (x - mean)^p; NaN m3/m4/min/max mean unknown (a LoRA delta's).")
        .def_readonly("count", &Moments::n, "finite elements")
        .def_property_readonly("mean", [](const Moments& o) { return o.n ? o.mean : kNaN; })
        .def_property_readonly(
            "std", [](const Moments& o) { return std::sqrt(o.variance()); }, "population")
        .def_property_readonly("variance", &Moments::variance, "population")
        .def_readonly("m2", &Moments::m2, "sum of (x - mean)^2")
        .def_readonly("m3", &Moments::m3, "sum of (x - mean)^3")
        .def_readonly("m4", &Moments::m4, "sum of (x - mean)^4")
        .def_property_readonly("min", [](const Moments& o) { return o.n ? o.min : kNaN; })
        .def_property_readonly("max", [](const Moments& o) { return o.n ? o.max : kNaN; })
        .def_property_readonly("skewness", &Moments::skewness)
        .def_property_readonly("kurtosis", &Moments::excess_kurtosis, "excess")
        .def_readonly("nan", &Moments::nan, "NaN elements (not in the moments)")
        .def_readonly("inf", &Moments::inf, "infinite elements (not in the moments)")
        .def("merge", &Moments::merge, py::arg("other"), "Adds another set of elements (Chan/Pebay, exact), in place.")
        .def("__repr__", [](const Moments& o) {
            return "Moments(count=" + std::to_string(o.n) + ", mean=" + std::to_string(o.n ? o.mean : kNaN) +
                   ", std=" + std::to_string(std::sqrt(o.variance())) + ")";
        });

    py::class_<SvdPhases>(m, "SvdPhases", "Where a singular-value call's time went, in seconds.")
        .def_readonly("products", &SvdPhases::products, "Krylov: C times a block (reads and decodes the matrix)")
        .def_readonly("orthogonalization", &SvdPhases::orthogonalization, "Krylov: Gram-Schmidt and QR")
        .def_readonly("projection", &SvdPhases::projection, "Krylov: the projected matrix's new columns")
        .def_readonly("checks", &SvdPhases::checks, "Krylov: Rayleigh-Ritz and the residual bounds")
        .def_readonly("certificate", &SvdPhases::certificate, "exact: the inertia count (Cholesky of a shifted G)")
        .def_readonly("gram", &SvdPhases::gram, "exact: the Gram matrix in double")
        .def_readonly("eigen", &SvdPhases::eigen, "exact: dsyevr, when the Krylov run on G was not certified")
        .def_readonly("fallback", &SvdPhases::fallback, "auto: Krylov was not certified, exact ran after it");

    py::class_<SvdResult>(m, "SvdResult", "Top singular values of a matrix and how they were obtained.")
        .def_property_readonly(
            "values", [](const SvdResult& r) { return to_array(r.values); }, "descending")
        .def_readonly("method", &SvdResult::method, "'exact', 'fast' or 'krylov' (what auto ended up using)")
        .def_readonly("error_bound", &SvdResult::error_bound,
                      "certified relative error of every value (krylov); 0 for exact; NaN for fast")
        .def_readonly("blocks", &SvdResult::blocks, "Krylov blocks used")
        .def_readonly("phases", &SvdResult::phases);

    py::class_<JobResult>(m, "JobResult", "What the engine measured of one job's window.")
        .def_property_readonly("moments",
                               [](const JobResult& r) -> py::object {
                                   if (!r.has_stats) return py::none();
                                   return py::cast(r.moments);
                               })
        .def_property_readonly("svd",
                               [](const JobResult& r) -> py::object {
                                   if (!r.has_svd) return py::none();
                                   return py::cast(r.svd);
                               })
        .def_property_readonly(
            "gram",
            [](const JobResult& r) -> py::object {
                if (r.gram.empty()) return py::none();
                const auto b = static_cast<py::ssize_t>(r.gram_block);
                return py::array_t<double>({static_cast<py::ssize_t>(r.gram.size()) / (b * b), b, b}, r.gram.data());
            },
            "diagonal Gram blocks, (blocks, block, block); None when not wanted or not finite")
        .def_property_readonly(
            "probe",
            [](const JobResult& r) -> py::object {
                if (r.probe.empty()) return py::none();
                return py::array_t<double>(
                    {static_cast<py::ssize_t>(r.probe_rows), static_cast<py::ssize_t>(r.probe_cols)}, r.probe.data());
            },
            "probe products, (rows, probes) or (probes, cols); None when not wanted or not finite")
        .def_property_readonly(
            "sketch",
            [](const JobResult& r) -> py::object {
                if (r.sketch.empty()) return py::none();
                return to_array(r.sketch);
            },
            "the count sketch, (buckets,); None when not wanted or not finite")
        .def_property_readonly(
            "error",
            [](const JobResult& r) -> py::object {
                if (r.error.empty()) return py::none();
                return py::str(r.error);
            },
            "why singular values or Gram blocks are missing")
        .def_readonly("seconds", &JobResult::seconds, "the whole job")
        .def_readonly("stats_seconds", &JobResult::stats_seconds, "the moments pass")
        .def_readonly("gram_seconds", &JobResult::gram_seconds, "the Gram blocks and probe products");

    m.def("init_blas", &init_blas, py::arg("capsules"), py::arg("set_threads") = 0, py::arg("get_threads") = 0);

    py::class_<TensorInfo>(m, "TensorInfo", "One tensor as its file's table describes it.")
        .def_readonly("name", &TensorInfo::name)
        .def_property_readonly("dtype", [](const TensorInfo& t) { return dtype_name(t.dtype); })
        .def_property_readonly(
            "shape", [](const TensorInfo& t) { return py::tuple(py::cast(t.shape)); },
            "Row-major, slowest dimension first (GGUF's order reversed).")
        .def_property_readonly(
            "data_offsets", [](const TensorInfo& t) { return py::make_tuple(t.begin, t.end); },
            "Bytes [begin, end) relative to the file's data section.")
        .def_property_readonly(
            "analysed", [](const TensorInfo& t) { return is_decoded(t.dtype); },
            "Whether the engine decodes this dtype (float and supported quantized types).")
        .def_property_readonly(
            "quantized", [](const TensorInfo& t) { return block_elements(t.dtype) > 1; },
            "Whether this dtype encodes blocks of values with shared scales (GGUF).");

    py::class_<TensorFile, std::shared_ptr<TensorFile>>(m, "TensorFile", "A validated, memory-mapped checkpoint file.")
        .def_property_readonly("path", &TensorFile::path)
        .def_property_readonly("format", &TensorFile::format)
        .def_property_readonly("tensors", &TensorFile::tensors, py::return_value_policy::reference_internal)
        .def_property_readonly(
            "metadata",
            [](const TensorFile& f) -> py::object {
                if (const auto* g = dynamic_cast<const GgufFile*>(&f)) return gguf_metadata(*g);
                if (const auto* st = dynamic_cast<const SafetensorsFile*>(&f)) return py::cast(st->metadata());
                return py::dict();
            },
            "GGUF: scalars and strings as Python values, numeric arrays of up to 65536 elements as lists, other "
            "arrays as None (but the vocabulary tokenizer.ggml.tokens, a list of str); safetensors: the header's "
            "__metadata__ strings.")
        .def("read", &read_tensor, py::arg("name"), "A tensor decoded to a float64 array (meant for small tensors).")
        .def("read_rows", &read_rows, py::arg("name"), py::arg("rows"),
             "Rows of a 2-D tensor decoded to a float64 array (rows, cols); only their bytes are read.");

    py::class_<SafetensorsFile, TensorFile, std::shared_ptr<SafetensorsFile>>(m, "SafetensorsFile")
        .def(py::init([](const std::string& path) {
                 py::gil_scoped_release nogil;
                 return std::make_shared<SafetensorsFile>(path);
             }),
             py::arg("path"));

    py::class_<MemoryTensorFile, TensorFile, std::shared_ptr<MemoryTensorFile>>(
        m, "MemoryTensorFile", "One tensor read in place from a buffer (an in-memory model's weight).")
        .def(py::init([](const std::string& label, const std::string& name, const std::string& dtype,
                         const std::vector<uint64_t>& shape, const py::array& data) {
                 // Read in place, so it must be C-contiguous; keep_alive below keeps it alive.
                 if (!(data.flags() & py::array::c_style))
                     throw std::invalid_argument(label + ": tensor '" + name + "' is not a C-contiguous array");
                 const auto* ptr = static_cast<const uint8_t*>(data.data());
                 const auto size = static_cast<uint64_t>(data.nbytes());
                 py::gil_scoped_release nogil;
                 return std::make_shared<MemoryTensorFile>(label, name, dtype, shape, ptr, size);
             }),
             py::arg("label"), py::arg("name"), py::arg("dtype"), py::arg("shape"), py::arg("data"),
             py::keep_alive<1, 6>());

    py::class_<GgufFile, TensorFile, std::shared_ptr<GgufFile>>(m, "GgufFile")
        .def(py::init([](const std::string& path) {
                 py::gil_scoped_release nogil;
                 return std::make_shared<GgufFile>(path);
             }),
             py::arg("path"))
        .def_property_readonly("version", &GgufFile::version)
        .def_property_readonly("alignment", &GgufFile::alignment);

    m.def(
        "dtype_block",
        [](const std::string& name) {
            const DType t = dtype_arg(name);
            return py::make_tuple(block_elements(t), block_bytes(t));
        },
        py::arg("name"), "(elements, bytes) per block of a type the engine decodes; ValueError for others.");

    m.def(
        "decode",
        [](const py::array& buf, const std::string& dtype, size_t n) {
            const MatrixView v = array_view(buf, dtype, 1, n);
            py::array_t<float> out(static_cast<py::ssize_t>(n));
            float* dst = out.mutable_data();
            {
                py::gil_scoped_release nogil;
                decode(v.dtype, v.data, n, dst);
            }
            return out;
        },
        py::arg("buffer"), py::arg("dtype"), py::arg("n"),
        "n elements of an encoded buffer decoded to float32: the engine's decoders, for their tests.");

    m.def(
        "matrix_stats",
        [](const py::array& buf, const std::string& dtype, size_t rows, size_t cols, int threads) {
            const MatrixView v = array_view(buf, dtype, rows, cols);
            Moments mo;
            {
                py::gil_scoped_release nogil;
                mo = moments(v, threads > 0 ? threads : 1);
            }
            return mo;
        },
        py::arg("buffer"), py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("threads") = 1);

    m.def(
        "top_singular_values",
        [](const py::array& buf, const std::string& dtype, size_t rows, size_t cols, int k, const std::string& method,
           int oversample, int krylov_blocks, double tol, int threads) {
            const MatrixView v = array_view(buf, dtype, rows, cols);
            const SvdOptions o = svd_options(method, oversample, krylov_blocks, tol, threads);
            SvdResult r;
            {
                py::gil_scoped_release nogil;
                r = top_singular_values(v, k, o);
            }
            return r;
        },
        py::arg("buffer"), py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("k"), py::arg("method"),
        py::arg("oversample"), py::arg("krylov_blocks"), py::arg("tol"), py::arg("threads") = 1);

    m.def(
        "gram_product",
        [](const py::array& buf, const std::string& dtype, size_t rows, size_t cols,
           const py::array_t<float, py::array::f_style | py::array::forcecast>& x, int threads) {
            const MatrixView v = array_view(buf, dtype, rows, cols);
            const size_t s = std::min(rows, cols);
            if (x.ndim() != 2 || static_cast<size_t>(x.shape(0)) != s)
                throw std::invalid_argument("x must have the matrix's short side as its rows");
            py::array_t<float, py::array::f_style> y({x.shape(0), x.shape(1)});
            {
                py::gil_scoped_release nogil;
                GramProduct(v, static_cast<int>(x.shape(1)), threads).apply(x.data(), y.mutable_data());
            }
            return y;
        },
        py::arg("buffer"), py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("x"), py::arg("threads") = 1,
        "C x for C = A^T A (A tall) or A A^T (A wide): the Krylov product kernel (exposed for its tests).");

    m.def(
        "block_gram",
        [](const py::array& buf, const std::string& dtype, size_t rows, size_t cols, const BlockGramSpec& spec,
           int threads) {
            const MatrixView v = array_view(buf, dtype, rows, cols);
            std::vector<double> g;
            {
                py::gil_scoped_release nogil;
                g = block_gram(v, spec, threads > 0 ? threads : 1);
            }
            const auto b = static_cast<py::ssize_t>(spec.block);
            return py::array_t<double>({static_cast<py::ssize_t>(g.size()) / (b * b), b, b}, g.data());
        },
        py::arg("buffer"), py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("spec"), py::arg("threads") = 1,
        "Diagonal Gram blocks (blocks, block, block) of a matrix: the engine kernel, for its tests.");
    py::class_<BlockGramSpec>(m, "BlockGramSpec", "Diagonal Gram blocks wanted of a job's matrix.")
        .def(py::init([](size_t block, bool columns, std::vector<double> weights) {
                 return BlockGramSpec{block, columns, std::move(weights)};
             }),
             py::arg("block") = 0, py::arg("columns") = false, py::arg("weights") = std::vector<double>{})
        .def_readonly("block", &BlockGramSpec::block)
        .def_readonly("columns", &BlockGramSpec::columns)
        .def_readonly("weights", &BlockGramSpec::weights);
    m.def(
        "probe_product",
        [](const py::array& buf, const std::string& dtype, size_t rows, size_t cols, const ProbeSpec& spec,
           int threads) {
            const MatrixView v = array_view(buf, dtype, rows, cols);
            std::vector<double> out;
            {
                py::gil_scoped_release nogil;
                out = probe_product(v, spec, threads > 0 ? threads : 1);
            }
            const auto c = static_cast<py::ssize_t>(spec.count);
            const auto other = static_cast<py::ssize_t>(spec.columns ? cols : rows);
            if (spec.columns) return py::array_t<double>({c, other}, out.data());
            return py::array_t<double>({other, c}, out.data());
        },
        py::arg("buffer"), py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("spec"), py::arg("threads") = 1,
        "A P^T (rows, probes) or P A (probes, cols) of a matrix: the engine kernel, for its tests.");
    m.def(
        "count_sketch",
        [](const py::array& buf, const std::string& dtype, size_t rows, size_t cols, size_t buckets, int threads) {
            const MatrixView v = array_view(buf, dtype, rows, cols);
            std::vector<double> out;
            {
                py::gil_scoped_release nogil;
                out = count_sketch(v, buckets, threads > 0 ? threads : 1);
            }
            return to_array(out);
        },
        py::arg("buffer"), py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("buckets"),
        py::arg("threads") = 1, "The count sketch (buckets,) of a matrix: the engine kernel, for its tests.");
    py::class_<ProbeSpec>(m, "ProbeSpec", "Probe vectors to multiply a job's matrix by (none by default).")
        .def(py::init<>())
        .def(py::init([](const py::array_t<double, py::array::c_style>& probes, bool columns) {
                 if (probes.ndim() != 2 || probes.shape(0) == 0)
                     throw std::invalid_argument("probes must be a non-empty 2-D array (probes, length)");
                 ProbeSpec s;
                 s.count = static_cast<size_t>(probes.shape(0));
                 s.columns = columns;
                 s.probes.assign(probes.data(), probes.data() + probes.size());
                 return s;
             }),
             py::arg("probes"), py::arg("columns") = false)
        .def_readonly("count", &ProbeSpec::count)
        .def_readonly("columns", &ProbeSpec::columns);
    py::class_<Job>(m, "Job", "One window of one tensor to analyse (elements, not bytes).")
        .def(py::init([](size_t file, std::string tensor, uint64_t offset, size_t rows, size_t cols, size_t row_stride,
                         bool stats, int k, size_t group_rows, size_t group_stride, BlockGramSpec gram, ProbeSpec probe,
                         size_t sketch) {
                 Job j;
                 j.file = file;
                 j.tensor = std::move(tensor);
                 j.offset = offset;
                 j.rows = rows;
                 j.cols = cols;
                 j.row_stride = row_stride;
                 j.stats = stats;
                 j.k = k;
                 j.group_rows = group_rows;
                 j.group_stride = group_stride;
                 j.gram = std::move(gram);
                 j.probe = std::move(probe);
                 j.sketch = sketch;
                 return j;
             }),
             py::kw_only(), py::arg("file"), py::arg("tensor"), py::arg("offset"), py::arg("rows"), py::arg("cols"),
             py::arg("row_stride"), py::arg("stats") = true, py::arg("k") = 0, py::arg("group_rows") = 0,
             py::arg("group_stride") = 0, py::arg("gram") = BlockGramSpec{}, py::arg("probe") = ProbeSpec{},
             py::arg("sketch") = 0)
        .def_readonly("file", &Job::file)
        .def_readonly("tensor", &Job::tensor)
        .def_readonly("rows", &Job::rows)
        .def_readonly("cols", &Job::cols)
        .def_readonly("k", &Job::k)
        .def_readonly("gram", &Job::gram)
        .def_readonly("probe", &Job::probe)
        .def_readonly("sketch", &Job::sketch);
    m.def("analyse", &run_analyse, py::arg("files"), py::arg("jobs"), py::arg("threads"), py::arg("method"),
          py::arg("oversample"), py::arg("krylov_blocks"), py::arg("tol"), py::arg("progress"));
}
