#pragma once
// A planned net's weights (core/ops' layers) in a safetensors file, as the C
// API (device/sgdx_c.cpp) saves and loads them: the tensors a file lists for
// the layers (core/plan's PlanTensor), the tensor part of the header a save
// writes and the little-endian data after it; a load that checks a file's
// header against the layers and reads them, a BatchNorm folded into the layer
// before it as it loads (core/plan's fold_scale and fold_bias), an int8-only
// net's rows quantised as they arrive. Files are read and written through
// callbacks, a few bytes at a time: no heap, no exceptions, and the arena keeps
// no BatchNorm tensor.
#include <cstddef>
#include <cstdint>

#include "core/ops.hpp"
#include "core/safetensors.hpp"

namespace sgdx::core {

// 0 on success (the C API's sgdx_read_fn and sgdx_write_fn).
using ReadFn = int (*)(void* ctx, size_t offset, uint8_t* bytes, size_t n);
using WriteFn = int (*)(void* ctx, const uint8_t* bytes, size_t n);

// ---- The tensors of a net ---------------------------------------------------------

// layers[0, count)'s tensors into out (kPlanMaxTensors), sorted by name as
// safetensors files list them; returns how many.
inline uint32_t tensors(const Layer* layers, uint32_t count, PlanTensor* out) {
    return plan_tensors(layers, count, out);
}
inline const Layer& layer_of(const PlanTensor& t) { return static_cast<const Layer&>(*t.layer); }
// A tensor's floats (nullptr: an int8-only net's weight).
inline float* data(const PlanTensor& t) { return t.is_bias ? layer_of(t).bias : layer_of(t).weight; }

// ---- Saving ------------------------------------------------------------------------

// Each tensor's entry (name, F32, shape, data offsets) after the metadata.
void write_tensor_entries(HeaderWriter& w, const Layer* layers, uint32_t count);
// The bytes of every tensor's data.
size_t data_bytes(const Layer* layers, uint32_t count);
// Every tensor's data, in the header's order, little-endian; false if the
// write callback failed.
bool write_tensor_data(const Layer* layers, uint32_t count, WriteFn write, void* ctx);

// ---- Loading -----------------------------------------------------------------------

// A header read through once by core/safetensors: its bytes, how many tensor
// entries it has (walked again with entries(), not kept: 50 of them would take
// 4.4 KB of the firmware's stack) and the metadata core/architecture's
// detection reads.
struct Header {
    // BatchNorm layers bring up to 5 tensors each (a Linear or Conv2d before each).
    static constexpr size_t kMaxEntries = 4 * kPlanMaxLayers + 2, kMaxMeta = 12;
    const char* bytes = nullptr;
    size_t length = 0, count = 0;
    MetaEntry metadata[kMaxMeta];
    size_t meta_count = 0;

    Entries entries() const { return Entries(bytes, length); }
    Span meta(const char* key) const {
        for (size_t i = 0; i < meta_count; ++i)
            if (metadata[i].key.is(key)) return metadata[i].value;
        return {};
    }
};

// Reads and checks the header's JSON (p, n bytes) into h; false with the
// problem appended to `e` (which already names the call).
bool read_header(const char* p, size_t n, Header& h, Text& e);

// Whether any layer is a folded BatchNorm.
bool has_norm(const Layer* layers, uint32_t count);

// What a load fills.
struct NetWeights {
    const Layer* layers;
    uint32_t count;
    float* row;          // one weight row of scratch: an int8-only net reads its rows through it
    bool int8_only;      // no float weights: each row quantised (per row) as it loads
    uint32_t arch;       // the net's architecture (kCustom: a printout) and its name in messages
    const char* arch_label;
};

enum class LoadResult : uint8_t {
    kLoaded,    // every tensor read (the caller resets momentum and step counts)
    kCorrupt,   // a broken file, or values that are not finite: nothing changed
    kMismatch,  // another network's file, or other dtypes: nothing changed
    kIo,        // the read callback failed: nothing changed
    kPartly,    // the read callback failed (or the file changed) once the weights had begun to change
};

// Loads the file whose header (hlen bytes, from file offset 8) is `header`,
// size bytes in all, read through `read`. Anything but kLoaded leaves one
// message in e, after what it held (the call's name).
LoadResult load_weights(const NetWeights& net, const char* header, size_t hlen, size_t size, ReadFn read, void* ctx,
                        Text& e);

// ---- A file's printout against the net -----------------------------------------------

constexpr size_t kPrintoutMax = 1024;  // a printout, decoded (lenet's takes 720)
constexpr uint32_t kMaxHidden = 4;     // an mlp's hidden widths a net may have (the C API's SGDX_MAX_HIDDEN)

// A printout decoded and its layers (printout lines: Flatten and Unflatten
// count): 3.2 KB that reading and writing a named Sequential's file need, the
// caller's (the C API takes them from the model's scratch buffers, else its stack).
struct PrintoutRoom {
    char text[kPrintoutMax];
    LayerSpec specs[kPlanMaxLayers];
};

// Whether a file's header (hlen bytes) may hold the net, for images of rows x
// cols: its architecture is absent or no printout (a name is load_weights'
// check), or a printout that plans into exactly the net's layers, or the
// printout of the named model the net is (load_weights then tells a width
// apart by the tensors' shapes). Else false, the printout's model in `theirs`
// (kCustom for none of the table's). Parsed in `room`; max_inputs: the
// detection's (core/architecture's detect).
bool network_matches(const NetWeights& net, uint32_t rows, uint32_t cols, const char* header, size_t hlen,
                     PrintoutRoom& room, uint64_t max_inputs, uint32_t& theirs);

}  // namespace sgdx::core
