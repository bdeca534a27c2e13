#pragma once
// KernelSet::conv_input_grad_cl written once over the vector adaptor V of
// gemm_tiles.hpp (zero, splat, load, store, fma, add; W floats), for the sets that
// compute it with SIMD: wasm SIMD128 (wasm_simd.cpp). The design is
// xsimd_kernels.hpp's: input pixels of a row that no border clips share their taps,
// so up to 8 of them (stride apart) run together, one weight vector feeding one
// multiply-add per pixel, each pixel's sum in the reference's order
// (conv_reference.hpp); a clipped pixel runs alone over several weight vectors, its
// output channels in P partial sums added at the end. Channels past the last whole
// vector take the reference's scalar loop. Internal linkage, like gemm_tiles.hpp.
#include <cstddef>

#include "conv_reference.hpp"
#include "kernels.hpp"

namespace sgdx::kernels {
namespace {

template <class V>
struct ConvDxTiles {
    using type = typename V::type;
    static constexpr size_t W = V::W;

    // One input pixel's channels [ci, ci + NV·W): per tap and output channel one
    // broadcast of dy against NV weight vectors, in P partial sums (output channels
    // co mod P) so that P·NV multiply-add chains run at once, added in order at the end.
    template <size_t NV, size_t P>
    static void vectors(const float* dy, const float* wt, float* d, const ConvShape& s, const ConvPixel& p, size_t ci) {
        type acc[P][NV];
        for (size_t q = 0; q < P; ++q)
            for (size_t v = 0; v < NV; ++v) acc[q][v] = V::zero();
        const size_t cin = s.cin, cout = s.cout, tap_stride = s.k * s.k * cin;  // wt: (cout, k, k, cin)
        for (size_t oi = p.oi1; oi-- > p.oi0;)
            for (size_t oj = p.oj1; oj-- > p.oj0;) {
                const size_t ki = p.i + s.pad - oi * s.stride, kj = p.j + s.pad - oj * s.stride;
                const float* g = dy + ((p.b * s.oh + oi) * s.ow + oj) * cout;
                const float* wk = wt + (ki * s.k + kj) * cin + ci;
                size_t co = 0;
                for (; co + P <= cout; co += P)
                    for (size_t q = 0; q < P; ++q) {
                        const type gv = V::splat(g[co + q]);
                        for (size_t v = 0; v < NV; ++v)
                            acc[q][v] = V::fma(gv, V::load(wk + (co + q) * tap_stride + v * W), acc[q][v]);
                    }
                for (; co < cout; ++co) {
                    const type gv = V::splat(g[co]);
                    for (size_t v = 0; v < NV; ++v) acc[0][v] = V::fma(gv, V::load(wk + co * tap_stride + v * W), acc[0][v]);
                }
            }
        for (size_t v = 0; v < NV; ++v) {
            type sum = acc[0][v];
            for (size_t q = 1; q < P; ++q) sum = V::add(sum, acc[q][v]);
            V::store(d + ci + v * W, sum);
        }
    }

    // R input pixels of one row, stride apart and all inside (their windows clipped
    // by no border, so they share taps and each reads the output pixel after the
    // previous one's), channels [ci, ci + W).
    template <size_t R>
    static void run(const float* dy, const float* wt, float* d, const ConvShape& s, const ConvPixel& p, size_t ci) {
        type acc[R];
        for (size_t r = 0; r < R; ++r) acc[r] = V::zero();
        const size_t cout = s.cout, tap_stride = s.k * s.k * s.cin;
        for (size_t oi = p.oi1; oi-- > p.oi0;)
            for (size_t oj = p.oj1; oj-- > p.oj0;) {
                const size_t ki = p.i + s.pad - oi * s.stride, kj = p.j + s.pad - oj * s.stride;
                const float* g = dy + ((p.b * s.oh + oi) * s.ow + oj) * cout;
                const float* wk = wt + (ki * s.k + kj) * s.cin + ci;
                for (size_t co = 0; co < cout; ++co) {
                    const type wv = V::load(wk + co * tap_stride);
                    for (size_t r = 0; r < R; ++r) acc[r] = V::fma(V::splat(g[r * cout + co]), wv, acc[r]);
                }
            }
        for (size_t r = 0; r < R; ++r) V::store(d + r * s.stride * s.cin + ci, acc[r]);
    }

    static void runs(size_t R, const float* dy, const float* wt, float* d, const ConvShape& s, const ConvPixel& p,
                     size_t ci) {
        switch (R) {
            case 8: run<8>(dy, wt, d, s, p, ci); break;
            case 7: run<7>(dy, wt, d, s, p, ci); break;
            case 6: run<6>(dy, wt, d, s, p, ci); break;
            case 5: run<5>(dy, wt, d, s, p, ci); break;
            case 4: run<4>(dy, wt, d, s, p, ci); break;
            case 3: run<3>(dy, wt, d, s, p, ci); break;
            default: run<2>(dy, wt, d, s, p, ci); break;
        }
    }

    static void conv_input_grad_cl(const float* dy, const float* wt, float* dx, const ConvShape& s) {
        const size_t cv = s.cin / W * W;  // channels in whole vectors; the rest one at a time
        // column j's window is clipped by no border: its taps are those of j + stride, shifted
        auto inside = [&](size_t j) { return j + s.pad + 1 >= s.k && (j + s.pad) / s.stride + 1 <= s.ow; };
        for (size_t b = 0; b < s.n; ++b)
            for (size_t i = 0; i < s.h; ++i) {
                ConvPixel p{b, i, 0, 0, 0, 0, 0};
                conv_taps(i, s.pad, s.k, s.stride, s.oh, p.oi0, p.oi1);
                for (size_t first = 0; first < s.stride && first < s.w; ++first)
                    for (size_t j = first; j < s.w;) {
                        p.j = j;
                        conv_taps(j, s.pad, s.k, s.stride, s.ow, p.oj0, p.oj1);
                        float* d = dx + ((b * s.h + i) * s.w + j) * s.cin;
                        size_t R = 0;
                        while (R < 8 && j + R * s.stride < s.w && inside(j + R * s.stride)) ++R;
                        if (R > 1) {
                            for (size_t ci = 0; ci < cv; ci += W) runs(R, dy, wt, d, s, p, ci);
                            for (size_t r = 0; r < R; ++r) {
                                ConvPixel q = p;
                                q.j = j + r * s.stride;
                                q.oj0 += r, q.oj1 += r;
                                conv_dx_pixel_scalar(dy, wt, d + r * s.stride * s.cin, s, q, cv);
                            }
                        } else {
                            R = 1;
                            size_t ci = 0;
                            for (; ci + 4 * W <= s.cin; ci += 4 * W) vectors<4, 1>(dy, wt, d, s, p, ci);
                            for (; ci + 2 * W <= s.cin; ci += 2 * W) vectors<2, 2>(dy, wt, d, s, p, ci);
                            for (; ci + W <= s.cin; ci += W) vectors<1, 4>(dy, wt, d, s, p, ci);
                            conv_dx_pixel_scalar(dy, wt, d, s, p, ci);
                        }
                        j += R * s.stride;
                    }
            }
    }
};

}  // namespace
}  // namespace sgdx::kernels
