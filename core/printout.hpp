#pragma once
// A network as PyTorch prints an nn.Sequential (print(model), repr(model)): the
// text a model file's "architecture" metadata or the command line may hold,
// parsed into a flat list of layers and written back byte for byte as torch
// writes it. Shared by the runtime and the C API, so allocation-free and
// exception-free like the rest of core/ (no printf, strtod or libm either: the
// device build avoids newlib's formatting; numbers are read and written here).
//
//   Sequential(
//     (0): Conv2d(1, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
//     (1): ReLU()
//     (head): Sequential(
//       (0): Flatten(start_dim=1, end_dim=-1)
//       (1): Linear(in_features=784, out_features=10, bias=True)
//     )
//   )
//
// Nested Sequentials are flattened in order; a layer's name is its state_dict
// prefix ("0", "head.1"). The parser also takes a constructor call's spelling
// (Linear(784, 10), MaxPool2d(2), padding_mode='zeros'), written back as torch
// would print that call. It refuses, with the reason, what sgdx cannot run:
// dilation or groups other than 1, padding other than numbers (same, valid),
// padding modes other than zeros, ceil_mode=True, pool padding over half the
// kernel, adaptive output sizes other than 1, Flatten other than (1, -1),
// Unflatten of a dim other than 1, and a layer it does not know.
//
// Not in the printout, so not in a LayerSpec: MaxPool2d's return_indices and
// AvgPool2d's ceil_mode, count_include_pad and divisor_override (torch prints
// none of them). Written out in the text they must have their defaults.
#include <cstddef>
#include <cstdint>

#include "core/text.hpp"

namespace sgdx::core {

enum class LayerKind : uint8_t {
    kLinear, kConv2d, kReLU, kMaxPool2d, kAvgPool2d, kAdaptiveAvgPool2d,
    kFlatten, kUnflatten, kBatchNorm1d, kBatchNorm2d, kDropout, kCount
};
// "Linear", ...: the class name torch prints.
const char* layer_kind_name(LayerKind kind);

// How a size was given, which torch keeps for the pools, AdaptiveAvgPool2d and
// Unflatten (Conv2d prints its sizes as tuples whatever it was given).
enum class Form : uint8_t { kInt, kTuple, kList, kSize };  // 2, (2, 2), [2, 2], torch.Size([2, 2])

// A Python float field: torch keeps an int it was given (Dropout(0) prints p=0).
struct Real {
    double value;
    bool integer;
};

constexpr uint64_t kMaxFeatures = uint64_t(1) << 24;  // features, channels, Unflatten sizes
constexpr uint32_t kMaxWindow = 1u << 16;             // kernel, stride, padding
constexpr uint32_t kMaxNesting = 8;                   // Sequentials inside one another
constexpr size_t kLayerNameCap = 32;                  // "head.1" and its NUL

// One child of the Sequential, as printed. A POD: zero it, then fill in what
// its kind uses.
struct LayerSpec {
    LayerKind kind;
    char name[kLayerNameCap];  // dotted, NUL-terminated: "3", "conv1", "0.2"
    uint32_t line;             // 1-based, in the printout it came from (0 if made otherwise)
    uint64_t in, out;          // Linear in/out_features; Conv2d in/out channels; BatchNorm num_features
    uint32_t kernel[2], stride[2], padding[2];  // (h, w): Conv2d, MaxPool2d, AvgPool2d
    Form kernel_form, stride_form, padding_form, dilation_form;  // the pools' spelling (dilation is 1)
    bool bias;                 // Linear, Conv2d
    bool inplace;              // ReLU, Dropout
    Real eps, momentum;        // BatchNorm
    bool cumulative;           // BatchNorm momentum=None: a cumulative moving average
    bool affine, track_running_stats;  // BatchNorm
    Real p;                    // Dropout
    Form output_form;          // AdaptiveAvgPool2d output_size (always 1)
    uint64_t unflatten[3];     // Unflatten(dim=1, unflattened_size=...)
    uint32_t unflatten_rank;   // 1 to 3
    Form unflatten_form;
};

// Whether text begins (after whitespace) with "Sequential(": a printout, not
// the name of one of sgdx's models.
bool is_printout(Span text);

// Parses into layers[0, cap). On failure `count` is 0 and `why` gets one line,
// "line N: <excerpt>: <problem>", the excerpt at most 64 characters of the
// offending layer or text.
bool parse_printout(Span text, LayerSpec* layers, uint32_t cap, uint32_t& count, Text& why);

// Whether the network takes images as (1, H, W) (it starts with a Conv2d, a pool
// or a BatchNorm2d) rather than flat rows of pixels.
bool takes_images(const LayerSpec* layers, uint32_t count);
// The first Linear whose input is still an image ((C, H, W) after a Conv2d,
// pool, BatchNorm2d or Unflatten, with no Flatten between): PyTorch would apply it
// to the last axis alone and fail, so sgdx refuses it rather than flatten
// silently. Returns count if there is none.
uint32_t unflattened_linear(const LayerSpec* layers, uint32_t count);

// Torch's repr of the Sequential (print() adds a newline); false if it does not
// fit, or the layers cannot be one Sequential's (a name twice, a name that is
// not letters, digits and _ between dots, a float that read_real cannot read back).
bool write_printout(const LayerSpec* layers, uint32_t count, Text& out);

// Decimal numbers without strtod: "0.1", "1e-05", "-3" to the nearest double,
// magnitudes 1e-60 to 1e61 (or 0) and at most 19 significant digits; false
// otherwise (a whole-text match is required).
bool read_real(Span text, double& value);
// As Python's repr writes a float: the fewest digits read_real reads back as
// `value` ("1e-05", "0.1", "1000000000000000.0", "1e+16"); false if there are none.
bool write_real(double value, Text& out);

}  // namespace sgdx::core
