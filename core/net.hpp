#pragma once
// A network of planned layers (core/ops) in one arena, as the C API
// (device/sgdx_c.cpp) runs it: the buffers its layers share, every buffer's
// place (counted first, then placed: the same walk with or without a base),
// PyTorch's initialisation, the float forward and the backward over two
// ping-pong gradient buffers (backward_walk: the runtime's Sequential walks its
// modules with it too). No heap, no exceptions; the caller owns the arena
// and the layers (a model struct at the arena's start, in the C API).
#include <cstddef>
#include <cstdint>

#include "core/ops.hpp"
#include "core/setup.hpp"

namespace sgdx::core {

constexpr size_t kArenaAlign = 8;      // every buffer's start
constexpr float kPixelScale = 1.f / 255.f;  // uint8 pixels to [0, 1], as the runtime's data

// The buffers a net's layers share, beside their own (NetArena places them).
struct NetBuffers {
    float* x;               // (max_batch, pixels) scaled pixels
    float* grad[2];         // (max_batch, largest activation) gradients, in turn
    float* row;             // (longest Linear row) one row's weight gradient
    float* patches;         // (largest patch * positions) one image's patches
    int32_t* targets;       // (max_batch) the kernels' label type
    float* qact[2];         // (largest activation) one image's activations, int8 path
    uint8_t* qin;           // (largest weight-layer input) quantised input
    uint8_t* qcols;         // (largest positions * patch) quantised patches, by position
};

// What a net keeps room for.
struct NetOptions {
    uint32_t max_batch;
    uint64_t pixels;  // rows x cols
    bool train;       // gradients (and Conv2d's summed ones)
    bool velocity;    // momentum buffers (training with momentum > 0)
    bool int8;        // int8 weights and the int8 path's buffers
    bool floats;      // float weights and activations (false: int8 weights alone)
};

SGDX_SETUP_BEGIN
// Places buffers one after another from base + at (base == nullptr: only counts).
struct Allocator {
    uint8_t* base;
    uint64_t at;
    static uint64_t round_up(uint64_t n) { return (n + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }
    template <class T>
    void operator()(T*& p, uint64_t count) {
        p = base ? reinterpret_cast<T*>(base + at) : nullptr;
        at += round_up(count * sizeof(T));
    }
};
SGDX_SETUP_END

// The arena's layout, a layer at a time: assigns a net's buffers from base +
// start (or only counts, base == nullptr). Sizing needs no room for the layers:
// a planner can feed it each layer as planned, into one scratch Layer.
class NetArena {
public:
    NetArena(const NetOptions& o, NetBuffers& b, uint8_t* base, uint64_t start);
    // The layer's own buffers (as its op asks: core/ops' OpNeeds) and its output.
    void layer(Layer& l);
    // The shared buffers, after the layers; then place() takes what the caller adds.
    void finish();
    Allocator place;

private:
    NetBuffers& b_;
    const bool train_, int8_, velocity_, floats_;
    const uint64_t B_;
    // act: the largest activation; grad: the largest gradient backward passes,
    // each layer's output's and, after the first learning layer, its input's.
    uint64_t act_, grad_ = 1, row_ = 1, cols_ = 0, qin_ = 0, qcols_ = 0;
    bool learned_ = false;
    float* prev_out_;
};

// The runtime's initialisation (sgdx::init_layer,
// runtime/rng.hpp): layer by layer, weight then bias, from one PCG32 stream. A
// layer without float weights (int8 only) draws each row into `row` and
// quantises it as drawn.
void initialise(const Layer* layers, uint32_t count, float* row, uint64_t seed);

// images: (n, pixels) uint8, scaled into b.x -> the last layer's out: (n, classes)
const float* forward(const Layer* layers, uint32_t count, const NetBuffers& b, const uint8_t* images, uint32_t n,
                     size_t pixels);

// A chain of layers' backward, last layer first — the network's orchestration,
// written once: core/net's backward (the C API's ops) and the runtime's
// Sequential (its modules) both walk their layers with it.
//   step(i, dy, dx): layer i's backward from dy (its output's gradient); its
//   input's gradient into dx, or none where dx is null (needs_dx(i) false: no
//   layer before i learns and the caller wants none). Returns whether dx now
//   holds it (false: none, or the layer computed it in place in dy).
// The input gradients go to grad[0] and grad[1] in turn, never to the buffer
// holding the dy being read. Returns the gradient of layer `first`'s input (dy
// itself if every layer worked in place), or null once a layer had none to give:
// the layers before it neither learn nor owe the caller anything, so they are
// not called.
template <class Grad, class NeedsDx, class Step>
Grad* backward_walk(uint32_t first, uint32_t count, Grad* dy, float* const grad[2], NeedsDx&& needs_dx, Step&& step) {
    Grad* g = dy;
    uint32_t turn = g == grad[0] ? 1 : 0;
    for (uint32_t i = count; i-- > first;) {
        float* dx = needs_dx(i) ? grad[turn] : nullptr;
        if (step(i, g, dx)) {
            g = dx;
            turn ^= 1;
        } else if (!dx) {
            return nullptr;
        }
    }
    return g;
}

// dlogits in b.grad[0] -> every layer's weights updated by `step`, last layer
// first; each layer's input gradient is computed before its weights change, and
// none before the first learning layer.
void backward(const Layer* layers, uint32_t count, const NetBuffers& b, uint32_t n, const SgdStep& step);

// The first maximum of z (C values), as the softmax_xent kernel counts hits.
uint32_t argmax(const float* z, uint32_t C);

}  // namespace sgdx::core
