// The kernels against values known in closed form: decoders on exact bit patterns, moments of
// small sets, singular values of matrices built with known spectra, Gram blocks by direct sums.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "block_gram.hpp"
#include "dtype.hpp"
#include "probe.hpp"
#include "sketch.hpp"
#include "spectral.hpp"
#include "stats.hpp"

using namespace wpf;

namespace {

MatrixView view(const std::vector<float>& a, size_t rows, size_t cols) {
    return MatrixView{reinterpret_cast<const uint8_t*>(a.data()), DType::F32, rows, cols, cols};
}

// U diag(s) V^T with random orthonormal U (rows x r) and V (cols x r) by Gram-Schmidt, in double.
std::vector<float> with_spectrum(size_t rows, size_t cols, const std::vector<double>& s, unsigned seed) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> normal;
    auto orthonormal = [&](size_t n) {
        std::vector<std::vector<double>> q;
        for (size_t j = 0; j < s.size(); ++j) {
            std::vector<double> v(n);
            for (double& x : v) x = normal(gen);
            for (const auto& u : q) {
                const double d = std::inner_product(v.begin(), v.end(), u.begin(), 0.0);
                for (size_t i = 0; i < n; ++i) v[i] -= d * u[i];
            }
            const double norm = std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
            for (double& x : v) x /= norm;
            q.push_back(v);
        }
        return q;
    };
    const auto u = orthonormal(rows), v = orthonormal(cols);
    std::vector<float> a(rows * cols);
    for (size_t i = 0; i < rows; ++i)
        for (size_t j = 0; j < cols; ++j) {
            double x = 0;
            for (size_t r = 0; r < s.size(); ++r) x += u[r][i] * s[r] * v[r][j];
            a[i * cols + j] = static_cast<float>(x);
        }
    return a;
}

}  // namespace

TEST_CASE("half and bfloat16 decode exactly") {
    DType f16, bf16;
    REQUIRE(parse_decoded_dtype("F16", f16));
    REQUIRE(parse_decoded_dtype("BF16", bf16));
    const uint16_t half[] = {0x3C00, 0xC000, 0x7BFF, 0x0001};  // 1, -2, 65504, smallest subnormal
    double out[4];
    decode(f16, reinterpret_cast<const uint8_t*>(half), 4, out);
    CHECK(out[0] == 1.0);
    CHECK(out[1] == -2.0);
    CHECK(out[2] == 65504.0);
    CHECK(out[3] == std::ldexp(1.0, -24));
    const uint16_t b[] = {0x3F80, 0x4049};  // 1, 3.140625
    decode(bf16, reinterpret_cast<const uint8_t*>(b), 2, out);
    CHECK(out[0] == 1.0);
    CHECK(out[1] == 3.140625);
}

TEST_CASE("Q8_0 decodes as scale times each signed byte") {
    DType q8;
    REQUIRE(parse_decoded_dtype("Q8_0", q8));
    std::vector<uint8_t> block(34);
    const uint16_t scale = 0x3800;  // 0.5 in half precision
    std::memcpy(block.data(), &scale, 2);
    for (int i = 0; i < 32; ++i) block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(i - 16));
    float out[32];
    decode(q8, block.data(), 32, out);
    for (int i = 0; i < 32; ++i) CHECK(out[i] == 0.5f * static_cast<float>(i - 16));
}

TEST_CASE("a quantized type without a decoder is not decoded") {
    DType t;
    CHECK_FALSE(parse_decoded_dtype("IQ2_XXS", t));
}

TEST_CASE("moments of a small set are its mean, variance and extremes, NaN counted apart") {
    const std::vector<float> a = {1, 2, 3, 4, NAN, 6, INFINITY, 8};
    const Moments m = moments(view(a, 2, 4), 2);
    CHECK(m.n == 6);
    CHECK(m.nan == 1);
    CHECK(m.inf == 1);
    CHECK(m.mean == doctest::Approx(4.0));
    CHECK(m.variance() == doctest::Approx((9 + 4 + 1 + 0 + 4 + 16) / 6.0));
    CHECK(m.min == 1.0);
    CHECK(m.max == 8.0);
}

TEST_CASE("merged moments equal the moments of the union") {
    const std::vector<float> a = {1, 5, 2, 8}, b = {3, 3, 9, 0, 4, 4};
    Moments m = moments(view(a, 1, 4), 1);
    m.merge(moments(view(b, 1, 6), 1));
    const std::vector<float> all = {1, 5, 2, 8, 3, 3, 9, 0, 4, 4};
    const Moments whole = moments(view(all, 1, 10), 1);
    CHECK(m.mean == doctest::Approx(whole.mean).epsilon(1e-14));
    CHECK(m.m2 == doctest::Approx(whole.m2).epsilon(1e-14));
    CHECK(m.m4 == doctest::Approx(whole.m4).epsilon(1e-14));
}

TEST_CASE("every method finds the singular values a matrix was built with") {
    const std::vector<double> s = {9, 7, 5, 3, 2, 1.5, 1, 0.5};
    const auto a = with_spectrum(300, 200, s, 7);
    for (const char* name : {"exact", "auto", "fast"}) {
        SvdOptions o;
        REQUIRE(parse_svd_method(name, o.method));
        const SvdResult r = top_singular_values(view(a, 300, 200), 4, o);
        REQUIRE(r.values.size() == 4);
        for (size_t i = 0; i < 4; ++i) CHECK(r.values[i] == doctest::Approx(s[i]).epsilon(1e-4));
    }
}

TEST_CASE("a matrix holding NaN has no singular values") {
    std::vector<float> a(64, 1.0f);
    a[5] = NAN;
    CHECK_THROWS_AS(top_singular_values(view(a, 8, 8), 2, SvdOptions{}), std::domain_error);
}

TEST_CASE("row-block Grams with weights equal the direct weighted sums") {
    std::mt19937 gen(3);
    std::normal_distribution<float> normal;
    const size_t rows = 8, cols = 5, block = 4;
    std::vector<float> a(rows * cols);
    for (float& x : a) x = normal(gen);
    const std::vector<double> w = {1, 2, 0.5, -1, 3};
    const auto g = block_gram(view(a, rows, cols), BlockGramSpec{block, false, w}, 2);
    REQUIRE(g.size() == 2 * block * block);
    for (size_t b = 0; b < 2; ++b)
        for (size_t i = 0; i < block; ++i)
            for (size_t j = 0; j < block; ++j) {
                double direct = 0;
                for (size_t c = 0; c < cols; ++c)
                    direct += double(a[(b * block + i) * cols + c]) * a[(b * block + j) * cols + c] * w[c] * w[c];
                CHECK(g[b * block * block + i * block + j] == doctest::Approx(direct).epsilon(1e-12));
            }
}

TEST_CASE("a Gram block that does not divide the rows is refused") {
    const std::vector<float> a(15, 1.0f);
    CHECK_THROWS_AS(block_gram(view(a, 5, 3), BlockGramSpec{2, false, {}}, 1), std::invalid_argument);
}

TEST_CASE("probe products on both sides equal the direct sums to single precision") {
    std::mt19937 gen(5);
    std::normal_distribution<float> normal;
    const size_t rows = 300, cols = 7, count = 3;
    std::vector<float> a(rows * cols);
    for (float& x : a) x = normal(gen);
    ProbeSpec right{count, false, std::vector<double>(count * cols)};
    ProbeSpec left{count, true, std::vector<double>(count * rows)};
    for (double& x : right.probes) x = normal(gen);
    for (double& x : left.probes) x = normal(gen);
    const auto ap = probe_product(view(a, rows, cols), right, 2);  // A P^T: rows x count
    const auto pa = probe_product(view(a, rows, cols), left, 2);   // P A: count x cols
    // The products run in single precision: each within 1e-5 of the sum of its terms' magnitudes.
    for (size_t i = 0; i < rows; ++i)
        for (size_t k = 0; k < count; ++k) {
            double direct = 0, terms = 0;
            for (size_t c = 0; c < cols; ++c) {
                direct += double(a[i * cols + c]) * right.probes[k * cols + c];
                terms += std::abs(double(a[i * cols + c]) * right.probes[k * cols + c]);
            }
            CHECK(std::abs(ap[i * count + k] - direct) <= 1e-5 * terms);
        }
    for (size_t k = 0; k < count; ++k)
        for (size_t c = 0; c < cols; ++c) {
            double direct = 0, terms = 0;
            for (size_t i = 0; i < rows; ++i) {
                direct += left.probes[k * rows + i] * double(a[i * cols + c]);
                terms += std::abs(left.probes[k * rows + i] * double(a[i * cols + c]));
            }
            CHECK(std::abs(pa[k * cols + c] - direct) <= 1e-5 * terms);
        }
    CHECK_THROWS_AS(probe_product(view(a, rows, cols), ProbeSpec{count, false, {1.0}}, 1), std::invalid_argument);
}

TEST_CASE("a count sketch is linear in the matrix and the same for any thread count") {
    std::mt19937 gen(6);
    std::normal_distribution<float> normal;
    const size_t rows = 600, cols = 9;
    std::vector<float> a(rows * cols), b(rows * cols), sum(rows * cols);
    for (size_t i = 0; i < a.size(); ++i) {
        a[i] = normal(gen);
        b[i] = normal(gen);
        sum[i] = a[i] + b[i];
    }
    const auto sa = count_sketch(view(a, rows, cols), 64, 1), sb = count_sketch(view(b, rows, cols), 64, 3);
    const auto ss = count_sketch(view(sum, rows, cols), 64, 2);
    for (size_t k = 0; k < 64; ++k) CHECK(ss[k] == doctest::Approx(sa[k] + sb[k]).epsilon(1e-5));
    const auto threaded = count_sketch(view(a, rows, cols), 64, 3);
    for (size_t k = 0; k < 64; ++k) CHECK(threaded[k] == doctest::Approx(sa[k]).epsilon(1e-12));
    CHECK_THROWS_AS(count_sketch(view(a, rows, cols), 48, 1), std::invalid_argument);
}
