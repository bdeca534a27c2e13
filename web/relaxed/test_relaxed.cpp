// The relaxed-SIMD set is there exactly when the engine validates relaxed SIMD
// (a one-function probe with f32x4.relaxed_madd, the final opcode), and where it
// is missing the runtime keeps SIMD128. SGDX_EXPECT_RELAXED says what the test run
// expects of a Node that has the final opcodes (20 with or without
// --experimental-wasm-relaxed-simd); an older engine (Debian 12's Node 18) or one
// that ships relaxed SIMD unflagged is told apart by the probe and reported. In the threaded build: every pool thread gets its own instance of the
// module over the shared memory (its own scratch and stack), computing the same
// as SIMD128 while the others run.
#include <doctest/doctest.h>
#include <emscripten.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/kernels/kernels.hpp"
#include "runtime/rng.hpp"
#include "runtime/thread_pool.hpp"
#include "tests/helpers.hpp"
#include "web/relaxed/relaxed_kernels.hpp"

using namespace sgdx;

// Whether the engine validates a module using f32x4.relaxed_madd (0xfd 0x85 0x02):
// () -> v128 returning relaxed_madd of three v128.const.
EM_JS(int, engine_validates_relaxed_madd, (), {
    var c = function(v) { var a = [0xfd, 0x0c]; for (var i = 0; i < 16; ++i) a.push(v); return a; };
    var body = [0x00].concat(c(1), c(2), c(3), [0xfd, 0x85, 0x02, 0x0b]);
    var bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,
                 0x03, 0x02, 0x01, 0x00, 0x0a, body.length + 2, 0x01, body.length].concat(body);
    return WebAssembly.validate(new Uint8Array(bytes)) ? 1 : 0;
});

namespace {
std::string expected() {
    const char* e = std::getenv("SGDX_EXPECT_RELAXED");
    return e ? e : "";
}
}  // namespace

TEST_CASE("wasm_relaxed_simd is offered exactly where the engine validates relaxed SIMD") {
    const std::string want = expected();
    REQUIRE_MESSAGE((want == "1" || want == "0"), "set SGDX_EXPECT_RELAXED to 1 or 0");
    const bool engine = engine_validates_relaxed_madd() != 0;
    if (engine != (want == "1")) {
        const std::string note = std::string("this engine ") + (engine ? "validates" : "does not validate") +
                                 " relaxed SIMD, unlike the run's expectation: checked against the engine";
        MESSAGE(note);
    }
    const kernels::KernelSet* relaxed = kernels::wasm_relaxed_simd();
    if (engine) {
        REQUIRE_MESSAGE(relaxed != nullptr, "no relaxed set: if the build could not make the module, "
                                            "web/relaxed/relaxed_*.wasm.log in the build folder says why");
        CHECK(std::string(relaxed->name) == "wasm_relaxed_simd");
        // the kernels it does not replace are SIMD128's
        CHECK((relaxed->softmax_xent == kernels::by_name("wasm_simd128").softmax_xent));
        CHECK((relaxed->gemm != kernels::by_name("wasm_simd128").gemm));
    } else {
        CHECK(relaxed == nullptr);
        // the fallback: the runtime's own choice stays SIMD128
        CHECK(std::string(active_kernels().name) == "wasm_simd128");
    }
}

TEST_CASE("relaxed kernels on every pool thread at once equal SIMD128's") {
    const kernels::KernelSet* relaxed = kernels::wasm_relaxed_simd();
    if (!relaxed) return;  // the fallback run
    const kernels::KernelSet& plain = kernels::by_name("wasm_simd128");
#if defined(__EMSCRIPTEN_PTHREADS__)
    set_num_threads(3);  // the caller and the build's 2 pre-started workers
    thread_pool().set_pinned(true);  // part p on thread p % 3: each thread runs some
#endif
    const size_t parts = 12;
    // Per part its own shapes (so scratch of different sizes on each thread),
    // a gemm and the three convolutions, each against SIMD128.
    std::vector<double> worst(parts, 0.0);
    thread_pool().run(parts, [&](size_t p) {
        Rng rng(100 + p);
        const size_t M = 5 + p, N = 3 + 2 * p, K = 17 + 7 * p;
        auto a = test::random_floats(rng, M * K), b = test::random_floats(rng, K * N);
        std::vector<float> c1(M * N), c2(M * N);
        relaxed->gemm(false, false, M, N, K, a.data(), K, b.data(), N, c1.data(), N, false);
        plain.gemm(false, false, M, N, K, a.data(), K, b.data(), N, c2.data(), N, false);
        double err = 0;
        for (size_t i = 0; i < M * N; ++i) err = std::max(err, double(std::fabs(c1[i] - c2[i])));
        kernels::ConvShape s{};
        s.n = 3;
        s.h = s.w = 9 + p % 3;
        s.cin = 1 + p % 4;
        s.cout = 5 + p;
        s.k = 3;
        s.stride = 1 + p % 2;
        s.pad = 1;
        s.oh = (s.h + 2 * s.pad - s.k) / s.stride + 1;
        s.ow = (s.w + 2 * s.pad - s.k) / s.stride + 1;
        const size_t xs = s.n * s.h * s.w * s.cin, ys = s.n * s.oh * s.ow * s.cout, ws = s.cout * s.cin * s.k * s.k;
        auto x = test::random_floats(rng, xs), w = test::random_floats(rng, ws), bias = test::random_floats(rng, s.cout);
        auto dy = test::random_floats(rng, ys);
        std::vector<float> y1(ys), y2(ys), dw1(ws), dw2(ws), db1(s.cout), db2(s.cout), dx1(xs), dx2(xs);
        relaxed->conv_forward_cl(x.data(), w.data(), bias.data(), y1.data(), s);
        plain.conv_forward_cl(x.data(), w.data(), bias.data(), y2.data(), s);
        relaxed->conv_weight_grad_cl(x.data(), dy.data(), dw1.data(), db1.data(), s);
        plain.conv_weight_grad_cl(x.data(), dy.data(), dw2.data(), db2.data(), s);
        relaxed->conv_input_grad_cl(dy.data(), w.data(), dx1.data(), s);  // w as (cout, k, k, cin): any weights do
        plain.conv_input_grad_cl(dy.data(), w.data(), dx2.data(), s);
        for (size_t i = 0; i < ys; ++i) err = std::max(err, double(std::fabs(y1[i] - y2[i])));
        for (size_t i = 0; i < ws; ++i) err = std::max(err, double(std::fabs(dw1[i] - dw2[i])));
        for (size_t i = 0; i < s.cout; ++i) err = std::max(err, double(std::fabs(db1[i] - db2[i])));
        for (size_t i = 0; i < xs; ++i) err = std::max(err, double(std::fabs(dx1[i] - dx2[i])));
        worst[p] = err;
    });
#if defined(__EMSCRIPTEN_PTHREADS__)
    thread_pool().set_pinned(false);
    set_num_threads(1);
    CHECK(kernels::wasm_relaxed_instances() == 3);  // one per thread
#else
    CHECK(kernels::wasm_relaxed_instances() == 1);
#endif
    for (size_t p = 0; p < parts; ++p) {
        CAPTURE(p);
        CHECK(worst[p] < 1e-4);  // sums of <= 300 products of values in [-1, 1], rounded differently
    }
}
