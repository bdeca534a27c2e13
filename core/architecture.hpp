#pragma once
// The models sgdx knows, what a model file's metadata says about them, and how
// a file without that metadata (PyTorch's own) is recognised by its tensor
// names: one table and one detection for the runtime (models/zoo.cpp, and so
// the CLI and the web page) and the C API (device/sgdx_c.cpp, and so the
// firmware). Allocation-free and exception-free like core/safetensors.
//
//   architecture    torch class       tensors PyTorch's state_dict names
//   logistic        MnistLogistic     lin.weight [classes, pixels], lin.bias
//   cnn             Mnist_CNN         conv1.*, conv2.*, conv3.weight [classes, 16, 3, 3]
//   cnn_sequential  Sequential        1.*, 3.*, 5.weight [classes, 16, 3, 3]
//   mlp             Sequential        0.weight [h1, pixels], 2.weight [h2, h1], ... [classes, hn]
//   lenet           Sequential        1.weight, 4.weight (4-d), 8.*, 10.weight [classes, 128]
//   bncnn           Sequential        1.weight (4-d), 2.running_mean, ..., 17.weight [classes, 128]
#include <cstddef>
#include <cstdint>

#include "core/printout.hpp"
#include "core/safetensors.hpp"
#include "core/text.hpp"

namespace sgdx::core {

// Adding a model sgdx knows by name is one entry in kArchitectures
// (core/architecture.cpp): its name, the PyTorch class, its layers, the image
// side it needs, its training defaults and the tensors that tell a PyTorch file
// of it apart. Everything else (models/zoo and so the CLI and the page, the C
// API's planner, the detection) reads the table. The enum names the entries that
// code singles out: the tutorial's classes (their own runtime modules), the mlp
// (its hidden widths) and the tutorial's Sequential.
enum Arch : uint32_t { kLogistic, kCnn, kCnnSequential, kMlp };

struct Spec;
class LayerBuilder;  // core/architecture.cpp's: appends a model's LayerSpecs

// How a model trains unless told otherwise (models/zoo's TrainingDefaults).
struct Training {
    const char* optimizer;  // "sgd", "adam", "adamw" (runtime/optim)
    float lr, momentum;     // momentum: SGD's (0 for the others)
    double lr_gamma;        // StepLR's factor after every epoch (1: constant)
    const char* schedule;   // "step", "onecycle", "cosine" (runtime/schedule)
    uint32_t epochs;
};

// A tensor a PyTorch state_dict holds: its name and rank.
struct TensorName {
    const char* name;
    uint32_t rank;
};

struct Architecture {
    const char* name;         // what --model, sgdx_config and the file's metadata say
    const char* torch_class;  // the "model" metadata: the PyTorch class it loads into;
                              // "Sequential": files name it by its printout
    Training training;
    // A file without sgdx's metadata (torch + safetensors) is this model when it
    // holds the tensors of `has` (a second may be {}); `classes`' shape[0] is the
    // class count (10 if the file lacks it). Later entries are tried first, so
    // that a newer model is not taken for an older one with fewer tensors.
    TensorName has[2];
    TensorName classes;
    uint32_t min_side;  // the smallest image side its layers take (0: any)
    // Its layers for a Spec's image size, classes and hidden widths (model_layers).
    void (*layers)(const Spec&, LayerBuilder&);
};
extern const Architecture kArchitectures[];
extern const uint32_t kArchCount;
// Spec::arch of a network that only its printout describes (a PyTorch user's
// own nn.Sequential): no name, no defaults of its own.
constexpr uint32_t kCustom = 0xffffffffu;
// How such a network trains unless told otherwise.
extern const Training kCustomTraining;

// The architecture of that name, or -1.
int arch_id(Span name);
// "logistic, cnn, cnn_sequential, mlp, lenet"
Text& list_architectures(Text& t);

// A model as a file describes it. The hidden widths (mlp) live in the caller's
// array of hidden_cap entries.
struct Spec {
    uint32_t arch = kLogistic;
    uint64_t rows = 28, cols = 28, classes = 10;
    uint64_t* hidden = nullptr;
    uint32_t hidden_cap = 0, n_hidden = 0;
    // A printout's layers (kCustom; detect fills them for every printout), in the
    // caller's array of layers_cap entries.
    LayerSpec* layers = nullptr;
    uint32_t layers_cap = 0, n_layers = 0;
};

// The layers of a named model (s.arch < kArchCount) for s's image size, classes
// and hidden widths, with PyTorch's names and spelling: what a Sequential of it
// prints, and what the runtime builds and the C API plans. The tutorial's
// classes (logistic, cnn) are listed as their forward runs them. For kCustom,
// s.layers. False if they do not fit in cap.
bool model_layers(const Spec& s, LayerSpec* out, uint32_t cap, uint32_t& count);
// Whether a model file names this architecture by its printout (an nn.Sequential)
// rather than by name (the tutorial's Mnist_Logistic and Mnist_CNN classes).
bool is_sequential(uint32_t arch);

// An image of n pixels, as a file's first layer gives it: square if it can be,
// else one row.
void image_size(uint64_t n, uint64_t& rows, uint64_t& cols);

// A parsed header as its reader keeps it: the tensor entries, and at least the
// metadata keys detect_reads() names.
struct HeaderView {
    const TensorEntry* tensors = nullptr;
    size_t count = 0;
    const MetaEntry* meta = nullptr;
    size_t meta_count = 0;
};
bool detect_reads(Span key);

enum class DetectProblem { kNone, kUnknownModel, kCorrupt, kBadDimension };
// What a file holds: its metadata's "architecture" (with "image_rows",
// "image_cols", "classes" and an mlp's "hidden") if it has one, else what its
// tensor names say. An architecture may be a printout (printout.hpp): one
// of the named models' is recognised as that model, any other is kCustom with
// its layers in s.layers; the image size and classes then come from the
// metadata if it has them, else from the layers (an Unflatten's or a first
// Linear's size, else 28x28; the last learning layer's outputs). `max_inputs` bounds the pixels a tensor-named file's first
// layer may take. On a problem, `why` gets a sentence (no prefix).
DetectProblem detect(const HeaderView& h, uint64_t max_inputs, Spec& spec, Text& why);

// The metadata sgdx writes into a model file (PyTorch's loaders ignore it), in
// key order: architecture, classes, [format: pt,] [hidden,] image_cols,
// image_rows, model. The values are written into text[0, cap); false if they
// do not fit or the architecture is unknown. With `printout`, a Sequential's
// architecture is its printout (and the hidden widths are in it); without, its
// name (the C API's fixed header buffer; kCustom then fails).
struct Metadata {
    uint32_t count = 0;
    const char* key[8] = {};
    const char* value[8] = {};
};
bool model_metadata(const Spec& spec, bool with_format, bool printout, char* text, size_t cap, Metadata& out);

}  // namespace sgdx::core
