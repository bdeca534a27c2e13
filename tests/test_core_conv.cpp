// core/conv: the convolution that the runtime's layer and the C API's op share.
// The device's patch builders against each window's taps (and col2im as
// im2col's adjoint); then both strategies against the definition in double —
// the device's per image, the host's by position in every layout and with its
// fused ReLUs, for every kernel set this binary holds — on ragged geometries.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/conv.hpp"
#include "core/plan.hpp"
#include "runtime/kernels/cortex_m4.hpp"
#include "runtime/kernels/kernels.hpp"
#include "runtime/rng.hpp"

namespace {

using sgdx::core::ConvForm;
using sgdx::core::ConvGeometry;

uint32_t pick(sgdx::Rng& rng, uint32_t lo, uint32_t hi) { return lo + rng.next_u32() % (hi - lo + 1); }

std::vector<float> random_floats(sgdx::Rng& rng, size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = rng.uniform(-1.f, 1.f);
    return v;
}

// Padding up to k - 1; kh != kw unless square (the runtime's Conv2d is square).
ConvGeometry random_geometry(sgdx::Rng& rng, bool square) {
    ConvGeometry g{};
    g.cin = pick(rng, 1, 5), g.cout = pick(rng, 1, 19);
    g.kh = pick(rng, 1, 5), g.kw = square ? g.kh : pick(rng, 1, 5);
    g.stride = pick(rng, 1, 3), g.pad = pick(rng, 0, std::min(g.kh, g.kw) - 1);
    g.h = pick(rng, g.kh, 11), g.w = pick(rng, g.kw, 13);
    REQUIRE(sgdx::core::window_output_size(g.h, g.w, g.kh, g.kw, g.stride, g.pad, g.oh, g.ow));
    return g;
}

// The window's input value for patch row r = (c, ky, kx) at output position (oy, ox), 0 outside.
template <typename T>
T tap(const ConvGeometry& g, const T* x, size_t r, size_t oy, size_t ox) {
    const size_t c = r / (g.kh * g.kw), ky = r / g.kw % g.kh, kx = r % g.kw;
    const long iy = long(oy * g.stride + ky) - long(g.pad), ix = long(ox * g.stride + kx) - long(g.pad);
    if (iy < 0 || ix < 0 || iy >= long(g.h) || ix >= long(g.w)) return T(0);
    return x[(c * g.h + size_t(iy)) * g.w + size_t(ix)];
}

// n samples (r, c) -> (c, r): channels-first <-> channels-last
std::vector<float> transpose_samples(const std::vector<float>& x, size_t n, size_t r, size_t c) {
    std::vector<float> y(x.size());
    for (size_t b = 0; b < n; ++b)
        for (size_t i = 0; i < r; ++i)
            for (size_t j = 0; j < c; ++j) y[(b * c + j) * r + i] = x[(b * r + i) * c + j];
    return y;
}
std::vector<float> to_channels_last(const std::vector<float>& x, size_t n, size_t c, size_t p) {
    return transpose_samples(x, n, c, p);
}
std::vector<float> to_channels_first(const std::vector<float>& x, size_t n, size_t c, size_t p) {
    return transpose_samples(x, n, p, c);
}

// The definition in double, each value with the sum of its terms' magnitudes
// (a float sum's error is a few ulps of that).
struct Definition {
    std::vector<double> y, dw, db, dx;              // (n, cout, oh, ow), (cout, patch), (cout), (n, cin, h, w)
    std::vector<double> y_abs, dw_abs, db_abs, dx_abs;
};

Definition definition(const ConvGeometry& g, size_t n, const std::vector<float>& x, const std::vector<float>& w,
                      const std::vector<float>& bias, const std::vector<float>& dy) {
    Definition d;
    d.y.assign(n * g.out_size(), 0), d.y_abs = d.y;
    d.dw.assign(g.cout * g.patch(), 0), d.dw_abs = d.dw;
    d.db.assign(g.cout, 0), d.db_abs = d.db;
    d.dx.assign(n * g.in_size(), 0), d.dx_abs = d.dx;
    for (size_t b = 0; b < n; ++b)
        for (size_t o = 0; o < g.cout; ++o)
            for (size_t oi = 0; oi < g.oh; ++oi)
                for (size_t oj = 0; oj < g.ow; ++oj) {
                    const size_t yi = ((b * g.cout + o) * g.oh + oi) * g.ow + oj;
                    const double gy = dy[yi];
                    d.y[yi] = bias[o], d.y_abs[yi] = std::fabs(bias[o]);
                    d.db[o] += gy, d.db_abs[o] += std::fabs(gy);
                    for (size_t c = 0; c < g.cin; ++c)
                        for (size_t ki = 0; ki < g.kh; ++ki)
                            for (size_t kj = 0; kj < g.kw; ++kj) {
                                const long iy = long(oi * g.stride + ki) - long(g.pad);
                                const long ix = long(oj * g.stride + kj) - long(g.pad);
                                if (iy < 0 || ix < 0 || iy >= long(g.h) || ix >= long(g.w)) continue;
                                const size_t xi = ((b * g.cin + c) * g.h + size_t(iy)) * g.w + size_t(ix);
                                const size_t wi = ((o * g.cin + c) * g.kh + ki) * g.kw + kj;
                                d.y[yi] += double(w[wi]) * x[xi], d.y_abs[yi] += std::fabs(double(w[wi]) * x[xi]);
                                d.dw[wi] += gy * x[xi], d.dw_abs[wi] += std::fabs(gy * x[xi]);
                                d.dx[xi] += gy * w[wi], d.dx_abs[xi] += std::fabs(gy * w[wi]);
                            }
                }
    return d;
}

// got within 1e-5 of each value's magnitude sum (values and sums as `want` and `abs`)
void check_close(const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& abs) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(std::fabs(double(got[i]) - want[i]) <= 1e-5 * abs[i] + 1e-30);
    }
}

}  // namespace

TEST_CASE("core/conv: im2col takes each window's taps, col2im is its adjoint, im2row_u8 its byte transpose") {
    sgdx::Rng rng(12);
    for (int trial = 0; trial < 100; ++trial) {
        const ConvGeometry g = random_geometry(rng, trial % 2 == 0);
        CAPTURE(g.cin); CAPTURE(g.h); CAPTURE(g.w); CAPTURE(g.kh); CAPTURE(g.kw); CAPTURE(g.stride); CAPTURE(g.pad);
        const size_t R = g.patch(), P = g.positions(), X = g.in_size();
        const auto x = random_floats(rng, X);
        std::vector<float> cols(R * P);
        sgdx::core::im2col(g, x.data(), cols.data());
        for (size_t r = 0; r < R; ++r)
            for (size_t p = 0; p < P; ++p) CHECK(cols[r * P + p] == tap(g, x.data(), r, p / g.ow, p % g.ow));
        // <im2col(x), c> == <x, col2im(c)>
        const auto c = random_floats(rng, R * P);
        std::vector<float> back(X, 7.f);  // col2im overwrites
        sgdx::core::col2im(g, c.data(), back.data());
        double lhs = 0, rhs = 0, scale = 0;
        for (size_t i = 0; i < R * P; ++i) lhs += double(cols[i]) * c[i], scale += std::fabs(double(cols[i]) * c[i]);
        for (size_t i = 0; i < X; ++i) rhs += double(x[i]) * back[i];
        CHECK(std::fabs(lhs - rhs) <= 1e-6 * (scale * 8 + 1e-30));
        // bytes by position: rows[p][r] == the tap
        std::vector<uint8_t> xb(X), rows(P * R, 99);
        for (uint8_t& v : xb) v = uint8_t(rng.next_u32());
        sgdx::core::im2row_u8(g, xb.data(), rows.data());
        for (size_t p = 0; p < P; ++p)
            for (size_t r = 0; r < R; ++r) CHECK(rows[p * R + r] == tap(g, xb.data(), r, p / g.ow, p % g.ow));
    }
}

TEST_CASE("core/conv: per image and by position (every layout, fused ReLUs, every kernel set) equal the definition") {
    const auto& m4 = sgdx::kernels::m4::kernel_set();
    sgdx::Rng rng(31);
    for (int trial = 0; trial < 40; ++trial) {
        const ConvGeometry g = random_geometry(rng, true);
        const size_t n = pick(rng, 1, 6), P = g.positions(), D = g.patch(), C = g.cout;
        CAPTURE(trial); CAPTURE(g.cin); CAPTURE(g.cout); CAPTURE(g.h); CAPTURE(g.w); CAPTURE(g.kh);
        CAPTURE(g.stride); CAPTURE(g.pad); CAPTURE(n);
        const auto x = random_floats(rng, n * g.in_size());
        auto relu_x = x;  // a fused ReLU's output: the input of a conv with relu_in, zeros included
        for (float& v : relu_x) v = std::max(v, 0.f);
        const auto w = random_floats(rng, C * D), b = random_floats(rng, C), dy = random_floats(rng, n * g.out_size());
        const Definition plain = definition(g, n, x, w, b, dy), after_relu = definition(g, n, relu_x, w, b, dy);

        // The device's strategy: outputs and gradients overwritten.
        std::vector<float> cols(D * P), y(n * g.out_size(), 5.f), gw(C * D, 5.f), gb(C, 5.f), dx(n * g.in_size(), 5.f);
        sgdx::core::conv_forward_images(m4, g, w.data(), b.data(), x.data(), y.data(), n, cols.data());
        sgdx::core::conv_backward_images(m4, g, w.data(), x.data(), dy.data(), dx.data(), n, gw.data(), gb.data(),
                                         cols.data());
        check_close(y, plain.y, plain.y_abs);
        check_close(gw, plain.dw, plain.dw_abs);
        check_close(gb, plain.db, plain.db_abs);
        check_close(dx, plain.dx, plain.dx_abs);

        // The host's, in each of its forms.
        for (const auto* k : sgdx::kernels::available())
            for (int form_bits = 0; form_bits < 16; ++form_bits) {
                ConvForm f;
                f.in_cl = form_bits & 1, f.out_cl = form_bits & 2, f.relu_out = form_bits & 4, f.relu_in = form_bits & 8;
                CAPTURE(k->name); CAPTURE(f.in_cl); CAPTURE(f.out_cl); CAPTURE(f.relu_out); CAPTURE(f.relu_in);
                const Definition& want = f.relu_in ? after_relu : plain;
                const std::vector<float>& xf = f.relu_in ? relu_x : x;
                const bool direct = sgdx::core::conv_direct(*k, g, f);
                const size_t chunk = pick(rng, 1, uint32_t(n));
                const auto xin = f.in_cl ? to_channels_last(xf, n, g.cin, size_t(g.h) * g.w) : xf;
                const auto dyin = f.out_cl ? to_channels_last(dy, n, C, P) : dy;
                const size_t rows = (direct ? n : chunk) * P;
                std::vector<float> s_cols(rows * D), s_by_pixel(rows * C), s_padded(sgdx::core::padded_size(g)),
                    s_dcols(rows * D), s_dwt(D * C), s_sums(C), wcl(C * D), saved(n * P * D);
                const sgdx::core::ConvScratch s{s_cols.data(), s_by_pixel.data(), s_padded.data(),
                                                s_dcols.data(), s_dwt.data(), s_sums.data()};
                const float* wt = sgdx::core::weight_in_patch_order(g, f, w.data(), wcl.data());
                const bool keep = rng.next_u32() % 2;     // the patches saved for backward, or built again
                const bool want_dx = rng.next_u32() % 4;  // or no input gradient asked for

                std::vector<float> yo(n * g.out_size(), 5.f);
                if (direct) sgdx::core::conv_forward_direct(*k, g, f, xin.data(), n, w.data(), b.data(), yo.data());
                else
                    sgdx::core::conv_forward_rows(*k, g, f, xin.data(), n, chunk, wt, b.data(), yo.data(),
                                                  keep ? saved.data() : nullptr, s);
                auto want_y = want.y;
                if (f.relu_out)
                    for (double& v : want_y) v = std::max(v, 0.0);
                check_close(f.out_cl ? to_channels_first(yo, n, C, P) : yo, want_y, want.y_abs);

                // Gradients added into what is there.
                std::vector<float> dw(C * D, 0.5f), db(C, 0.25f), dxo(n * g.in_size(), 9.f);
                float* dxp = want_dx ? dxo.data() : nullptr;
                if (direct)
                    sgdx::core::conv_backward_direct(*k, g, f, xin.data(), dyin.data(), dxp, n, wt, dw.data(),
                                                     db.data(), s);
                else
                    sgdx::core::conv_backward_rows(*k, g, f, xin.data(), dyin.data(), dxp, n, chunk, wt,
                                                   keep ? saved.data() : nullptr, dw.data(), db.data(), s);
                auto want_dw = want.dw, want_db = want.db, want_dx_values = want.dx;
                auto dw_abs = want.dw_abs, db_abs = want.db_abs;  // the sums then rounded at 0.5 and 0.25
                for (size_t i = 0; i < want_dw.size(); ++i) want_dw[i] += 0.5, dw_abs[i] += 0.5;
                for (size_t i = 0; i < want_db.size(); ++i) want_db[i] += 0.25, db_abs[i] += 0.25;
                check_close(dw, want_dw, dw_abs);
                check_close(db, want_db, db_abs);
                if (!want_dx) {
                    CHECK(std::all_of(dxo.begin(), dxo.end(), [](float v) { return v == 9.f; }));  // untouched
                    continue;
                }
                if (f.relu_in)
                    for (size_t i = 0; i < xf.size(); ++i)
                        if (xf[i] <= 0.f) want_dx_values[i] = 0;
                check_close(f.in_cl ? to_channels_first(dxo, n, g.cin, size_t(g.h) * g.w) : dxo, want_dx_values,
                            want.dx_abs);
            }
    }
}
