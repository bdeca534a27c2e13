// A net of core/ops layers in one arena (core/net.hpp): its layout, its
// initialisation, its forward and backward.
#include "core/net.hpp"

#include "core/setup.hpp"
#include "runtime/kernels/cortex_m4.hpp"
#include "runtime/kernels/reference.hpp"
#include "runtime/rng.hpp"

namespace sgdx::core {
namespace {

size_t max_of(size_t a, size_t b) { return a > b ? a : b; }

const float* layer_input(const Layer* layers, const NetBuffers& b, uint32_t i) { return i ? layers[i - 1].out : b.x; }

OpScratch scratch_of(const NetBuffers& b) { return {b.patches, b.row}; }

}  // namespace

SGDX_SETUP_BEGIN
// ---- Layout: every buffer's place in the arena -----------------------------------

NetArena::NetArena(const NetOptions& o, NetBuffers& b, uint8_t* base, uint64_t start)
    : place{base, start}, b_(b), train_(o.train), int8_(o.int8), velocity_(o.velocity), floats_(o.floats),
      B_(o.max_batch), act_(o.pixels) {
    if (floats_) place(b.x, B_ * act_);
    prev_out_ = b.x;
}

void NetArena::layer(Layer& l) {
    const uint8_t needs = op(l).needs;
    grad_ = max_of(grad_, l.out_size());
    if (learned_) grad_ = max_of(grad_, l.in_size());
    learned_ |= l.learns();
    if (l.learns()) {
        const uint64_t n = uint64_t(l.cout) * l.patch();
        if (floats_) place(l.weight, n);
        place(l.bias, l.cout);
        if (!floats_) row_ = max_of(row_, l.patch());  // sgdx_load reads a row at a time
        if (velocity_) place(l.vweight, n), place(l.vbias, l.cout);
        if (train_ && (needs & kGradSums)) place(l.gweight, n), place(l.gbias, l.cout);
        if (int8_) place(l.qweight, n), place(l.qscale, l.cout);
        qin_ = max_of(qin_, l.in_size());
        if (needs & kRow) row_ = max_of(row_, l.patch());
        if (needs & kPatches) {  // one image's, float and int8 (core/conv's per-image strategy)
            const size_t patches = conv_images_scratch(conv_geometry(l));
            if (floats_) cols_ = max_of(cols_, patches);
            qcols_ = max_of(qcols_, patches);
        }
    }
    if (!floats_) l.out = nullptr;  // the int8 path keeps one image's activations (qact)
    else if (needs & kInPlace) l.out = prev_out_;
    else place(l.out, B_ * l.out_size());
    prev_out_ = l.out;
    act_ = max_of(act_, l.out_size());
}

void NetArena::finish() {
    NetBuffers& b = b_;
    if (train_) place(b.grad[0], B_ * grad_), place(b.grad[1], B_ * grad_);
    if (train_ || !floats_) place(b.row, row_);
    if (cols_) place(b.patches, cols_);
    place(b.targets, B_);
    if (int8_) place(b.qact[0], act_), place(b.qact[1], act_), place(b.qin, qin_), place(b.qcols, qcols_);
}

// ---- Initialisation ---------------------------------------------------------------

void initialise(const Layer* layers, uint32_t count, float* row, uint64_t seed) {
    sgdx::Rng rng(seed);
    for (uint32_t i = 0; i < count; ++i) {
        const Layer& l = layers[i];
        if (!l.learns()) continue;
        const size_t R = l.patch();
        // Row by row: an int8-only model (no float weight) quantises each as drawn.
        sgdx::init_layer(
            rng, l.cout, R, l.nobias ? nullptr : l.bias, [&](size_t c) { return l.weight ? l.weight + c * R : row; },
            [&](size_t c) {
                if (!l.weight) kernels::m4::quantize_row(row, R, kernels::m4::max_abs(row, R), l.qweight + c * R, &l.qscale[c]);
            });
    }
}

SGDX_SETUP_END
// ---- Float forward and backward, layer by layer --------------------------------

const float* forward(const Layer* layers, uint32_t count, const NetBuffers& b, const uint8_t* images, uint32_t n,
                     size_t pixels) {
    kernels::ref::scale_u8(images, kPixelScale, b.x, size_t(n) * pixels);
    const OpScratch s = scratch_of(b);
    for (uint32_t i = 0; i < count; ++i) op(layers[i]).forward(layers[i], layer_input(layers, b, i), n, s);
    return layers[count - 1].out;
}

void backward(const Layer* layers, uint32_t count, const NetBuffers& b, uint32_t n, const SgdStep& step) {
    uint32_t first_learner = 0;
    while (!layers[first_learner].learns()) ++first_learner;
    const OpScratch s = scratch_of(b);
    backward_walk(
        0, count, b.grad[0], b.grad, [&](uint32_t i) { return i > first_learner; },
        [&](uint32_t i, float* dy, float* dx) {
            const Layer& l = layers[i];
            return op(l).backward(l, layer_input(layers, b, i), dy, dx, n, s, step);
        });
}

uint32_t argmax(const float* z, uint32_t C) {
    uint32_t arg = 0;  // first maximum, as the softmax_xent kernel counts hits
    for (uint32_t c = 1; c < C; ++c)
        if (z[c] > z[arg]) arg = c;
    return arg;
}

}  // namespace sgdx::core
