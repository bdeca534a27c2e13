// The C API: its surface, argument and config checks and messages, over core/.
// Built with -fno-exceptions -fno-rtti for the host and for Cortex-M4: no heap,
// no exceptions, no static constructors, no printf (messages are assembled by
// hand, since newlib's number formatting can allocate).
//
// A model is a short list of layers (Linear, Conv2d, ReLU, max/average pooling)
// planned from an sgdx_config (core/plan, core/architecture) and run by core:
// core/ops (the layers), core/net (the arena's layout, initialisation, forward
// and backward), core/int8, core/weights (model files). Every buffer lives in
// the caller's arena, the model struct first, at an offset fixed by layout().
// Activations are NCHW like PyTorch's, so View and Flatten are no-ops and need
// no layer.
#include "sgdx.h"

#include <cmath>
#include <cstring>
#include <new>

#include "core/architecture.hpp"
#include "core/int8.hpp"
#include "core/net.hpp"
#include "core/plan.hpp"
#include "core/safetensors.hpp"
#include "core/setup.hpp"
#include "core/text.hpp"
#include "core/weights.hpp"
#include "runtime/kernels/cortex_m4.hpp"
#include "runtime/kernels/softmax_reference.hpp"

// Setup code (planning, checks, configs, model files) is compiled for size on
// the device (core/setup.hpp), the rest of this file -O2 for the training and
// inference paths.

namespace {

using namespace sgdx::core;  // LayerShape, kLinear, ... (core/plan), Arch, Span, Text, ...

constexpr uint32_t kMaxLayers = kPlanMaxLayers;

}  // namespace

namespace {
// What a model is, before any buffer: what planning and sizing read. A model
// can be planned and sized from it alone, its layers one at a time (plan_layers).
struct ModelHead {
    uint32_t magic;
    uint32_t arch;  // index into kArchitectures
    uint32_t hidden[SGDX_MAX_HIDDEN], rows, cols, classes, max_batch, flags;
    float momentum;
    uint32_t n_layers;
};
}  // namespace

struct sgdx_model : ModelHead {
    Layer layers[kMaxLayers];
    NetBuffers buf;         // the rest of the net's buffers, after its layers'
    char* header;           // safetensors header scratch for sgdx_load_stream
    uint64_t steps;         // SGD steps since creation or load (PyTorch's first momentum step)
    bool quantized;         // qweight matches weight
    mutable char message[200];
};

namespace {

constexpr uint32_t kMagic = 0x53474458;  // "SGDX"
// int8 x uint8 products summed in int32: 127 * 255 * 65536 < 2^31.
constexpr uint32_t kMaxInputs = 65536;
constexpr uint32_t kMaxClasses = 256;  // labels are uint8
constexpr uint32_t kMaxBatch = 65536;
constexpr uint32_t kMaxWidth = 65536;
constexpr size_t kAlign = kArenaAlign;
constexpr size_t kHeaderMax = 2048;  // sgdx_load_stream's header scratch

// The architectures (and their order in messages) are core/architecture's.

char g_message[200];  // errors without a usable model

Text error(const sgdx_model* m) {
    return m ? Text(m->message, sizeof m->message) : Text(g_message, sizeof g_message);
}

namespace m4 = sgdx::kernels::m4;    // the Cortex-M4 set: the layers' loops
using m4::exp_portable, m4::max_abs, m4::quantize_row, m4::softmax_xent;

size_t max_of(size_t a, size_t b) { return a > b ? a : b; }

bool same(const char* a, const char* b) { return std::strcmp(a, b) == 0; }

int arch_id(const char* name) { return sgdx::core::arch_id(span(name)); }

SGDX_SETUP_BEGIN
// ---- Layout: every buffer's place in the arena -----------------------------------

// The arena's layout (core/net's, after the model struct at its start) for a
// model's header: into b (a model's, or any to only count) from base (nullptr:
// only count).
NetArena arena(const ModelHead& h, NetBuffers& b, uint8_t* base) {
    NetOptions o;
    o.max_batch = h.max_batch, o.pixels = uint64_t(h.rows) * h.cols;
    o.train = !(h.flags & SGDX_INFERENCE_ONLY), o.int8 = !(h.flags & SGDX_NO_INT8);
    o.velocity = o.train && h.momentum > 0.f, o.floats = !(h.flags & SGDX_INT8_ONLY);
    return NetArena(o, b, base, Allocator::round_up(sizeof(sgdx_model)));
}

// The rest after the layers: the net's buffers, then the header buffer and a
// custom network's printout (printout_bytes; printout(m)). Returns the bytes
// from base's aligned start.
uint64_t finish(NetArena& a, char*& header, size_t printout_bytes) {
    a.finish();
    a.place(header, kHeaderMax);
    char* text;
    if (printout_bytes) a.place(text, printout_bytes);
    return a.place.at;
}

// ---- Planning: the layers of an architecture and their shapes -----------------
//
// Every network is a list of core LayerSpecs: a named model's from
// core/architecture's model_layers (the one architecture table), a custom one's
// from its printout. The planner turns them into Layers with their shapes.

constexpr uint32_t kMaxSpecs = kMaxLayers;  // printout lines (Flatten and Unflatten count)
static_assert(SGDX_MAX_HIDDEN == sgdx::core::kMaxHidden, "core/weights recognises the mlps a config holds");
// kPrintoutMax: a printout, decoded (a stack buffer, or core/weights' PrintoutRoom)

// config->architecture as text: a name, a printout, or a printout as a model
// file's header holds it (sgdx_config_from_weights points there): a JSON string
// from its opening quote, escapes and all.
struct ArchText {
    Span text;  // raw: still escaped if json
    bool json;
};
ArchText arch_text(const char* a) {
    if (a[0] != '"') return {span(a), false};
    size_t n = 1;
    while (a[n] && a[n] != '"') n += a[n] == '\\' && a[n + 1] ? 2 : 1;
    return {{a + 1, n - 1}, true};
}
bool is_custom(const char* a) { return a[0] == '"' || is_printout(span(a)); }

// The printout's text, decoded into out (NUL-terminated; at most a.text.n + 1
// bytes: decoding never lengthens); returns its length.
size_t printout_into(const ArchText& a, char* out) {
    const size_t n = a.json ? sgdx::core::decode_string(a.text, out) : (std::memcpy(out, a.text.p, a.text.n), a.text.n);
    out[n] = '\0';
    return n;
}

const char* arch_label(uint32_t arch) { return arch < kArchCount ? kArchitectures[arch].name : "Sequential"; }

// "line 4: (3): BatchNorm2d: " for messages about a printout's layer; a named
// model's layers are all runnable.
Text& at_layer(Text& e, const LayerSpec& s) {
    if (s.line) e.s("line ").u(s.line).s(": ");
    return e.s("(").s(s.name).s("): ").s(layer_kind_name(s.kind)).s(": ");
}

// Plans specs[0, n) into layers for m's image size; messages name `fn` and the
// model. Without `layers`, each layer is planned into one scratch Layer and
// counted into *bytes instead: the arena a model needs (with printout_bytes),
// without room for its layers.
sgdx_status plan_layers(ModelHead& m, Layer* layers, const LayerSpec* specs, uint32_t n, const char* fn,
                        size_t printout_bytes, uint64_t* bytes) {
    Planner p(m.rows, m.cols, sgdx::core::takes_images(specs, n));
    Layer one;
    std::memset(&one, 0, sizeof one);
    NetBuffers counted;
    char* counted_header;
    NetArena sizes = arena(m, counted, nullptr);
    uint32_t learners = 0;
    const LayerShape* oversize = nullptr;  // the first layer that sums too many inputs (its name and size in `big`)
    LayerShape big;
    const char* arch = arch_label(m.arch);
    const bool train = !(m.flags & SGDX_INFERENCE_ONLY);
    if (const uint32_t i = sgdx::core::unflattened_linear(specs, n); i < n) {
        Text e = error(nullptr);
        return at_layer(e.s(fn).s(": "), specs[i])
            .s("its input is still an image: add Flatten() before it")
            .status(SGDX_ERR_BAD_DIMENSION);
    }
    for (uint32_t i = 0; i < n; ++i) {
        if (const char* why = plan_unsupported(specs[i])) {
            Text e = error(nullptr);
            return at_layer(e.s(fn).s(": "), specs[i]).s(why).status(SGDX_ERR_UNKNOWN_MODEL);
        }
        if (const char* why = train ? plan_untrainable(specs[i]) : nullptr) {
            Text e = error(nullptr);
            return at_layer(e.s(fn).s(": "), specs[i]).s(why).status(SGDX_ERR_NOT_TRAINABLE);
        }
        const uint32_t before = p.count();
        if (!p.take(specs[i])) {
            Text e = error(nullptr);
            e.s(fn).s(": ").s(arch).s(" for ").u(m.rows).s("x").u(m.cols).s(" images: ");
            // A named model's layers fit 28x28 images and any larger (up to the C API's
            // 65,536 pixels): only a smaller image fails here.
            if (m.arch != kCustom) e.s("the image is too small: ");
            at_layer(e, specs[i]);
            p.take(specs[i], e);  // the same refusal again, in words after the prefix
            return e.status(SGDX_ERR_BAD_DIMENSION);
        }
        if (p.count() == before) continue;
        Layer& l = layers ? layers[p.count() - 1] : one;
        static_cast<LayerShape&>(l) = p.last();
        learners += l.learns();
        if (!oversize && l.learns() && l.patch() > kMaxInputs) oversize = &(big = l);
        if (bytes) sizes.layer(l);
    }
    m.n_layers = p.count();
    if (const LayerShape* l = oversize)
        return error(nullptr).s(fn).s(": ").s(arch).s(" for ").u(m.rows).s("x").u(m.cols).s(" images: layer ")
            .name(l->wname, std::strlen(l->wname) - 7).s(" sums over ").u(l->patch()).s(" inputs, more than ")
            .u(kMaxInputs).s(" (its int8 sums would overflow)").status(SGDX_ERR_BAD_DIMENSION);
    if (!learners)
        return error(nullptr).s(fn).s(": the network has no Linear or Conv2d layer: nothing to learn").status(SGDX_ERR_BAD_DIMENSION);
    const Layer& last = layers ? layers[p.count() - 1] : one;
    if (last.out_size() != m.classes)
        return error(nullptr).s(fn).s(": ").s(arch).s(" for ").u(m.rows).s("x").u(m.cols).s(" images ends in ")
            .u(last.cout).s("x").u(last.oh).s("x").u(last.ow).s(" values, not one score per class (").u(m.classes)
            .s(m.arch == kCustom ? ")" : "): it is built for 28x28 images").status(SGDX_ERR_BAD_DIMENSION);
    if (bytes) *bytes = finish(sizes, counted_header, printout_bytes);
    return SGDX_OK;
}

// A custom network's printout parsed into specs (its text decoded on this
// frame's stack); *bytes: its decoded length + 1, which the model keeps.
__attribute__((noinline)) sgdx_status parse_custom(const char* arch, LayerSpec* specs, uint32_t& n, size_t* bytes,
                                                   const char* fn) {
    char text[kPrintoutMax];
    const ArchText a = arch_text(arch);
    Text e = error(nullptr);
    if (a.text.n >= sizeof text)
        return e.s(fn).s(": the printout is ").u(a.text.n).s(" bytes: the C API reads at most ").u(kPrintoutMax - 1)
            .s(" (and runs at most ").u(kMaxLayers).s(" layers)").status(SGDX_ERR_UNKNOWN_MODEL);
    const size_t len = printout_into(a, text);
    if (!parse_printout({text, len}, specs, kMaxSpecs, n, e.s(fn).s(": "))) return SGDX_ERR_UNKNOWN_MODEL;
    if (bytes) *bytes = len + 1;
    return SGDX_OK;
}

// The network's layers: a named model's from core/architecture's table, a
// custom one's from its printout (into layers, or only sized: plan_layers).
sgdx_status plan(ModelHead& m, Layer* layers, const char* arch, const char* fn, size_t* printout_bytes,
                 uint64_t* bytes) {
    LayerSpec specs[kMaxSpecs];
    uint32_t n = 0;
    if (m.arch == kCustom) {
        if (sgdx_status st = parse_custom(arch, specs, n, printout_bytes, fn)) return st;
    } else {
        uint64_t hidden[SGDX_MAX_HIDDEN];
        Spec s;
        s.arch = m.arch, s.rows = m.rows, s.cols = m.cols, s.classes = m.classes;
        s.hidden = hidden, s.hidden_cap = SGDX_MAX_HIDDEN;
        for (uint32_t i = 0; i < SGDX_MAX_HIDDEN && m.hidden[i]; ++i) hidden[s.n_hidden++] = m.hidden[i];
        if (!model_layers(s, specs, kMaxSpecs, n))
            return error(nullptr).s(fn).s(": ").s(arch_label(m.arch)).s(" has more layers than the ").u(kMaxLayers)
                .s(" the C API runs").status(SGDX_ERR_UNKNOWN_MODEL);
        if (printout_bytes) *printout_bytes = 0;
    }
    return plan_layers(m, layers, specs, n, fn, printout_bytes ? *printout_bytes : 0, bytes);
}

sgdx_status check_config(const sgdx_config* c, const char* fn) {
    if (!c) return error(nullptr).s(fn).s(": config is NULL").status(SGDX_ERR_NULL_ARGUMENT);
    if (!c->architecture) return error(nullptr).s(fn).s(": config->architecture is NULL").status(SGDX_ERR_NULL_ARGUMENT);
    if (arch_id(c->architecture) < 0 && !is_custom(c->architecture)) {
        Text e = error(nullptr);
        e.s(fn).s(": unknown architecture '").name(c->architecture, std::strlen(c->architecture)).s("' (choose one of: ");
        return list_architectures(e).s(") or give an nn.Sequential's printout").status(SGDX_ERR_UNKNOWN_MODEL);
    }
    const uint64_t pixels = uint64_t(c->image_rows) * c->image_cols;
    if (c->image_rows == 0 || c->image_cols == 0 || pixels > kMaxInputs)
        return error(nullptr).s(fn).s(": image of ").u(c->image_rows).s("x").u(c->image_cols)
            .s(" pixels: each side must be >= 1 and the image at most ").u(kMaxInputs).s(" pixels").status(SGDX_ERR_BAD_DIMENSION);
    if (c->classes < 2 || c->classes > kMaxClasses)
        return error(nullptr).s(fn).s(": classes = ").u(c->classes).s(": must be in [2, ").u(kMaxClasses).s("] (labels are uint8)").status(SGDX_ERR_BAD_DIMENSION);
    if (c->max_batch == 0 || c->max_batch > kMaxBatch)
        return error(nullptr).s(fn).s(": max_batch = ").u(c->max_batch).s(": must be in [1, ").u(kMaxBatch).s("]").status(SGDX_ERR_BAD_DIMENSION);
    if (!(std::isfinite(c->momentum) && c->momentum >= 0.f && c->momentum < 1.f))
        return error(nullptr).s(fn).s(": momentum must be a number in [0, 1)").status(SGDX_ERR_BAD_OPTION);
    if (c->flags & ~(SGDX_INFERENCE_ONLY | SGDX_NO_INT8 | SGDX_INT8_ONLY))
        return error(nullptr).s(fn).s(": flags ").u(c->flags).s(" hold bits other than SGDX_INFERENCE_ONLY, SGDX_NO_INT8 and SGDX_INT8_ONLY").status(SGDX_ERR_BAD_OPTION);
    if ((c->flags & SGDX_INT8_ONLY) && (c->flags & SGDX_NO_INT8))
        return error(nullptr).s(fn).s(": flags SGDX_INT8_ONLY and SGDX_NO_INT8 contradict each other").status(SGDX_ERR_BAD_OPTION);
    if (same(c->architecture, "mlp")) {
        if (c->hidden[0] == 0)
            return error(nullptr).s(fn).s(": mlp needs at least one hidden width (config->hidden[0] is 0)").status(SGDX_ERR_BAD_DIMENSION);
        bool ended = false;
        for (uint32_t i = 0; i < SGDX_MAX_HIDDEN; ++i) {
            if (c->hidden[i] == 0) { ended = true; continue; }
            if (ended)
                return error(nullptr).s(fn).s(": config->hidden[").u(i).s("] follows a 0 (the list ends at its first 0)").status(SGDX_ERR_BAD_DIMENSION);
            if (c->hidden[i] > kMaxWidth)
                return error(nullptr).s(fn).s(": hidden width ").u(c->hidden[i]).s(" is larger than ").u(kMaxWidth).status(SGDX_ERR_BAD_DIMENSION);
        }
    }
    return SGDX_OK;
}

// A model's header from a (checked) config, its layers planned into `layers`
// or only sized into *bytes (plan_layers); a custom network's *printout_bytes:
// what its printout takes in the arena.
sgdx_status describe(const sgdx_config* c, ModelHead& m, Layer* layers, const char* fn, size_t* printout_bytes,
                     uint64_t* bytes) {
    if (sgdx_status st = check_config(c, fn)) return st;
    std::memset(&m, 0, sizeof m);
    const int id = arch_id(c->architecture);
    m.arch = id < 0 ? kCustom : uint32_t(id);
    for (uint32_t i = 0; i < SGDX_MAX_HIDDEN; ++i) m.hidden[i] = m.arch == kMlp ? c->hidden[i] : 0;
    m.rows = c->image_rows, m.cols = c->image_cols, m.classes = c->classes;
    m.max_batch = c->max_batch, m.flags = c->flags;
    if (m.flags & SGDX_INT8_ONLY) m.flags |= SGDX_INFERENCE_ONLY;
    m.momentum = (m.flags & SGDX_INFERENCE_ONLY) ? 0.f : c->momentum;
    return plan(m, layers, c->architecture, fn, printout_bytes, bytes);
}

// Assigns m's buffers from base; returns the bytes from base's aligned start.
uint64_t layout(sgdx_model& m, uint8_t* base, size_t printout_bytes) {
    NetArena a = arena(m, m.buf, base);
    for (uint32_t i = 0; i < m.n_layers; ++i) a.layer(m.layers[i]);
    return finish(a, m.header, printout_bytes);
}

// A custom network's printout, as its config gave it (decoded), NUL-terminated.
const char* printout(const sgdx_model* m) { return m->header + kHeaderMax; }

SGDX_SETUP_END
// ---- Float forward and backward (core/net) ----------------------------------------

// images: (n, pixels) uint8 -> the last layer's out: (n, classes)
const float* forward(sgdx_model* m, const uint8_t* images, uint32_t n) {
    return sgdx::core::forward(m->layers, m->n_layers, m->buf, images, n, size_t(m->rows) * m->cols);
}

SGDX_SETUP_BEGIN
// ---- safetensors --------------------------------------------------------------------

// The model's tensors, their header entries and data, and loading them are
// core/weights' (PlanTensor: a learning layer's weight or bias, sorted by name
// as safetensors files list them).
using TensorRef = PlanTensor;
constexpr uint32_t kMaxTensors = kPlanMaxTensors;
uint32_t tensors(const sgdx_model* m, TensorRef* out) { return sgdx::core::tensors(m->layers, m->n_layers, out); }
bool has_norm(const sgdx_model* m) { return sgdx::core::has_norm(m->layers, m->n_layers); }

// A printout decoded and its layers (core/weights' PrintoutRoom): 3.2 KB that
// saving and loading a named Sequential's file need, taken from the model's
// scratch buffers when one is large enough (scratch()), else from the stack.

// Arena bytes that no call keeps from one call to the next (the scaled pixels,
// or the int8 path's activations) for a PrintoutRoom, or nullptr if neither
// is large enough.
PrintoutRoom* scratch(const sgdx_model* m) {
    constexpr size_t kNeed = sizeof(PrintoutRoom);
    if (!(m->flags & SGDX_INT8_ONLY) && size_t(m->max_batch) * m->rows * m->cols * sizeof(float) >= kNeed)
        return new (m->buf.x) PrintoutRoom;
    size_t act = size_t(m->rows) * m->cols;  // qact[0]: the largest activation (core/net)
    for (uint32_t i = 0; i < m->n_layers; ++i) act = max_of(act, m->layers[i].out_size());
    if (!(m->flags & SGDX_NO_INT8) && act * sizeof(float) >= kNeed) return new (m->buf.qact[0]) PrintoutRoom;
    return nullptr;
}

// The header `sgdx train` writes (encode_model with models/zoo's metadata),
// unpadded, into buf; 0 if it does not fit.
// `specs` and `text` (of text_cap bytes): room for the metadata's values, and
// for a named Sequential (whose architecture is its printout) its layers.
__attribute__((noinline)) size_t header_with(const sgdx_model* m, char* buf, size_t cap, LayerSpec* specs,
                                             char* text, size_t text_cap) {
    uint64_t hidden[SGDX_MAX_HIDDEN];
    Spec spec;
    // A named Sequential's architecture is its printout, as `sgdx train` writes
    // it (lenet's header: 1.4 KB of the 2 KB buffer). A custom network's keys
    // are a named Sequential's, its architecture its own printout.
    spec.arch = m->arch == kCustom ? uint32_t(kCnnSequential) : m->arch;
    spec.rows = m->rows, spec.cols = m->cols, spec.classes = m->classes;
    spec.hidden = hidden, spec.hidden_cap = SGDX_MAX_HIDDEN;
    spec.layers = specs, spec.layers_cap = specs ? kMaxSpecs : 0;
    for (uint32_t i = 0; i < SGDX_MAX_HIDDEN && m->hidden[i]; ++i) hidden[spec.n_hidden++] = m->hidden[i];
    Metadata meta;
    if (!model_metadata(spec, true, m->arch != kCustom, text, text_cap, meta)) return 0;
    if (m->arch == kCustom) meta.value[0] = printout(m);
    HeaderWriter w(buf, cap);
    for (uint32_t i = 0; i < meta.count; ++i) w.meta(span(meta.key[i]), span(meta.value[i]));
    write_tensor_entries(w, m->layers, m->n_layers);
    const size_t length = w.finish();
    return w.fits() ? length : 0;
}

__attribute__((noinline)) size_t sequential_header(const sgdx_model* m, char* buf, size_t cap) {
    PrintoutRoom room;
    return header_with(m, buf, cap, room.specs, room.text, sizeof room.text);
}

// The header `sgdx train` writes, as header_with: only a named Sequential's
// needs room for its layers and printout (the model's scratch, else 3.2 KB of stack).
size_t write_header(const sgdx_model* m, char* buf, size_t cap) {
    if (m->arch != kCustom && is_sequential(m->arch)) {
        if (PrintoutRoom* room = scratch(m)) return header_with(m, buf, cap, room->specs, room->text, sizeof room->text);
        return sequential_header(m, buf, cap);
    }
    char text[128];  // names and numbers: "mlp", "10", "pt", "128,64", "28", "28", "Sequential"
    return header_with(m, buf, cap, nullptr, text, sizeof text);
}

size_t padded(size_t header) { return sgdx::core::HeaderWriter::padded(header); }

// The header's length from the file's first 8 bytes, checked against its size.
sgdx_status header_length(const sgdx_model* m, const char* fn, const uint8_t* first8, size_t size, size_t& hlen) {
    Text e = error(m);
    uint64_t n = 0;
    if (!sgdx::core::header_length(first8, size, n, e.s(fn).s(": "))) return SGDX_ERR_CORRUPT_WEIGHTS;
    hlen = size_t(n);
    return SGDX_OK;
}

void after_new_weights(sgdx_model* m) {
    m->quantized = (m->flags & SGDX_INT8_ONLY) != 0;  // an int8-only model quantises as it loads
    m->steps = 0;
    for (uint32_t i = 0; i < m->n_layers; ++i) {
        const Layer& l = m->layers[i];
        if (l.vweight) std::memset(l.vweight, 0, 4 * l.cout * l.patch()), std::memset(l.vbias, 0, 4 * l.cout);
    }
}

// The metadata a printout's detection reads: architecture (raw), image_rows,
// image_cols, classes.
struct PrintoutMeta {
    MetaEntry meta[4];
    size_t count = 0;
};

// A detected named model into a config; sizes past what a config holds become
// 0, which check_config refuses.
sgdx_status config_of_spec(const Spec& spec, sgdx_config* c) {
    g_message[0] = '\0';
    auto size = [](uint64_t v, uint64_t max) { return uint32_t(v <= max ? v : 0); };
    if (spec.arch == kCustom) {
        std::memset(c, 0, sizeof *c);
        c->max_batch = 32;
    } else {
        sgdx_config_init(c, kArchitectures[spec.arch].name);
    }
    c->image_rows = size(spec.rows, 1u << 24), c->image_cols = size(spec.cols, 1u << 24);
    c->classes = size(spec.classes, 1u << 24);
    for (uint32_t i = 0; i < SGDX_MAX_HIDDEN; ++i) c->hidden[i] = i < spec.n_hidden ? size(spec.hidden[i], kMaxWidth) : 0;
    return SGDX_OK;
}

DetectProblem detect_into(const HeaderView& view, Spec& spec, Text& e, sgdx_status& st) {
    const DetectProblem p = detect(view, kMaxInputs, spec, e.s("sgdx_config_from_weights: "));
    st = p == DetectProblem::kNone ? SGDX_OK
         : p == DetectProblem::kCorrupt ? SGDX_ERR_CORRUPT_WEIGHTS
         : p == DetectProblem::kBadDimension ? SGDX_ERR_BAD_DIMENSION
                                              : SGDX_ERR_UNKNOWN_MODEL;
    return p;
}

// A file without an architecture in its metadata (PyTorch's own) is told by its
// tensors: core/architecture's detection takes them as an array, on this frame
// (4.4 KB) only for such a file.
__attribute__((noinline)) DetectProblem detect_by_tensors(const Header& r, Spec& spec, Text& e, sgdx_status& st) {
    sgdx::core::TensorEntry list[Header::kMaxEntries];
    sgdx::core::Entries entries = r.entries();
    size_t n = 0;
    for (const sgdx::core::TensorEntry* t = entries.next(); t; t = entries.next()) list[n++] = *t;
    HeaderView view;
    view.tensors = list, view.count = n, view.meta = r.metadata, view.meta_count = r.meta_count;
    return detect_into(view, spec, e, st);
}

// core/architecture's detection from a file's header, into a config. A file
// whose architecture is a printout only has its metadata noted in `pm`, for
// config_from_printout (on a frame without the header's arrays).
__attribute__((noinline)) sgdx_status config_from_header(const uint8_t* file, size_t hlen, sgdx_config* c,
                                                         PrintoutMeta& pm) {
    Header r;
    Text e = error(nullptr);
    if (!read_header(reinterpret_cast<const char*>(file + 8), hlen, r, e.s("sgdx_config_from_weights: ")))
        return SGDX_ERR_CORRUPT_WEIGHTS;
    if (is_printout(r.meta("architecture"))) {
        static const char* const kKeys[] = {"architecture", "image_rows", "image_cols", "classes"};
        for (const char* key : kKeys)
            if (const Span v = r.meta(key); v.p) pm.meta[pm.count++] = MetaEntry{span(key), v};
        return SGDX_OK;
    }
    uint64_t hidden[SGDX_MAX_HIDDEN];
    Spec spec;
    spec.hidden = hidden, spec.hidden_cap = SGDX_MAX_HIDDEN;
    sgdx_status st;
    if (!r.meta("architecture").p) {
        if (detect_by_tensors(r, spec, e, st) != DetectProblem::kNone) return st;
    } else {  // named by its metadata: the detection reads no tensor
        HeaderView view;
        view.meta = r.metadata, view.meta_count = r.meta_count;
        if (detect_into(view, spec, e, st) != DetectProblem::kNone) return st;
    }
    return config_of_spec(spec, c);
}

// A printout in a file's metadata: a named model's is that model; any other
// network is checked layer by layer and the config points to it in the file
// (the JSON string from its opening quote).
__attribute__((noinline)) sgdx_status config_from_printout(PrintoutMeta& pm, sgdx_config* c) {
    char text[kPrintoutMax];
    LayerSpec specs[kMaxSpecs];
    uint64_t hidden[SGDX_MAX_HIDDEN];
    const Span raw = pm.meta[0].value;
    Text e = error(nullptr);
    if (raw.n >= sizeof text)
        return e.s("sgdx_config_from_weights: the file's network is larger than the C API runs: its printout is ")
            .u(raw.n).s(" bytes, the C API reads at most ").u(kPrintoutMax - 1).s(" and runs at most ").u(kMaxLayers)
            .s(" layers").status(SGDX_ERR_UNKNOWN_MODEL);
    pm.meta[0].value = {text, sgdx::core::decode_string(raw, text)};
    Spec spec;
    spec.hidden = hidden, spec.hidden_cap = SGDX_MAX_HIDDEN;
    spec.layers = specs, spec.layers_cap = kMaxSpecs;
    HeaderView view;
    view.meta = pm.meta, view.meta_count = pm.count;
    sgdx_status st;
    if (detect_into(view, spec, e, st) != DetectProblem::kNone) return st;
    bool runs_only = false;  // BatchNorm, Dropout, bias=False: the config is SGDX_INFERENCE_ONLY
    if (spec.arch == kCustom)
        for (uint32_t i = 0; i < spec.n_layers; ++i) {
            if (const char* why = plan_unsupported(specs[i]))
                return at_layer(e, specs[i]).s(why).status(SGDX_ERR_UNKNOWN_MODEL);
            runs_only |= plan_untrainable(specs[i]) != nullptr;
        }
    config_of_spec(spec, c);
    if (spec.arch == kCustom) c->architecture = raw.p - 1;
    if (runs_only) c->flags |= SGDX_INFERENCE_ONLY;
    return SGDX_OK;
}

// ---- Argument checks ----------------------------------------------------------------

// Checks the handle; a bad one is reported in the global message.
sgdx_status check_model(const sgdx_model* m, const char* fn) {
    if (!m) return error(nullptr).s(fn).s(": model is NULL").status(SGDX_ERR_NULL_ARGUMENT);
    if (m->magic != kMagic)
        return error(nullptr).s(fn).s(": model is not a live sgdx model (not created by sgdx_create, or its arena was overwritten)").status(SGDX_ERR_BAD_MODEL);
    return SGDX_OK;
}

sgdx_status null_arg(const sgdx_model* m, const char* fn, const char* arg) {
    return error(m).s(fn).s(": ").s(arg).s(" is NULL").status(SGDX_ERR_NULL_ARGUMENT);
}

// The float calls on an SGDX_INT8_ONLY model, which has no float weights.
sgdx_status int8_only(const sgdx_model* m, const char* fn) {
    return error(m).s(fn).s(": the model was created SGDX_INT8_ONLY (no float weights): use the _int8 calls").status(SGDX_ERR_NOT_QUANTIZED);
}

// Saving a model whose BatchNorms were folded into the layers before them.
sgdx_status folded(const sgdx_model* m, const char* fn) {
    return error(m).s(fn).s(": the model's BatchNorm layers are folded into the Linear or Conv2d before them as the "
                            "weights load: the C API does not save such a model (the file it loaded holds them)")
        .status(SGDX_ERR_BAD_OPTION);
}

sgdx_status not_quantized(const sgdx_model* m, const char* fn) {
    return error(m).s(fn).s(": no int8 weights: call sgdx_quantize after the last training step or load").status(SGDX_ERR_NOT_QUANTIZED);
}

sgdx_status check_labels(sgdx_model* m, const char* fn, const uint8_t* labels, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i)
        if (labels[i] >= m->classes)
            return error(m).s(fn).s(": label ").u(labels[i]).s(" at index ").u(i).s(" is not < classes (").u(m->classes).s(")").status(SGDX_ERR_BAD_LABEL);
    return SGDX_OK;
}

size_t pixels(const sgdx_model* m) { return size_t(m->rows) * m->cols; }

// The old API's pixel count, which check_config sees only as rows x cols.
sgdx_status check_inputs(uint32_t inputs) {
    if (inputs == 0 || inputs > kMaxInputs)
        return error(nullptr).s("inputs = ").u(inputs).s(": must be in [1, ").u(kMaxInputs).s("]").status(SGDX_ERR_BAD_DIMENSION);
    return SGDX_OK;
}

// The logistic model's config from the old API's dimensions.
sgdx_config logistic_config(uint32_t inputs, uint32_t classes, uint32_t max_batch) {
    sgdx_config c;
    sgdx_config_init(&c, "logistic");
    uint64_t rows = 0, cols = 0;
    image_size(inputs, rows, cols);  // inputs <= kMaxInputs
    c.image_rows = uint32_t(rows), c.image_cols = uint32_t(cols);
    c.classes = classes, c.max_batch = max_batch;
    return c;
}

// The bytes a config's model needs in an arena of any alignment, its header in
// h: planned a layer at a time, so no room for its layers is needed here.
sgdx_status arena_size(const sgdx_config* config, ModelHead& h, const char* fn, size_t& bytes, size_t& printout_bytes) {
    uint64_t counted = 0;
    if (sgdx_status st = describe(config, h, nullptr, fn, &printout_bytes, &counted)) return st;
    const uint64_t total = counted + kAlign - 1;  // slack to align any arena pointer
    if (total > uint64_t(SIZE_MAX))
        return error(nullptr).s(fn).s(": this model needs more memory than this target can address").status(SGDX_ERR_BAD_DIMENSION);
    bytes = size_t(total);
    return SGDX_OK;
}

}  // namespace

extern "C" {

sgdx_status sgdx_config_init(sgdx_config* c, const char* architecture) {
    if (!c) return error(nullptr).s("sgdx_config_init: config is NULL").status(SGDX_ERR_NULL_ARGUMENT);
    if (!architecture) return error(nullptr).s("sgdx_config_init: architecture is NULL").status(SGDX_ERR_NULL_ARGUMENT);
    const int id = arch_id(architecture);
    if (id < 0) {
        Text e = error(nullptr);
        e.s("sgdx_config_init: unknown architecture '").name(architecture, std::strlen(architecture)).s("' (choose one of: ");
        return list_architectures(e).s(")").status(SGDX_ERR_UNKNOWN_MODEL);
    }
    std::memset(c, 0, sizeof *c);
    c->architecture = kArchitectures[id].name;
    if (id == kMlp) c->hidden[0] = 128;
    c->image_rows = c->image_cols = 28;
    c->classes = 10;
    c->max_batch = 32;
    return SGDX_OK;
}

sgdx_status sgdx_config_from_weights(const uint8_t* file, size_t size, sgdx_config* config) {
    const char* fn = "sgdx_config_from_weights";
    if (!file) return null_arg(nullptr, fn, "file");
    if (!config) return null_arg(nullptr, fn, "config");
    size_t hlen = 0;
    if (sgdx_status st = header_length(nullptr, fn, file, size, hlen)) return st;
    PrintoutMeta pm;
    if (sgdx_status st = config_from_header(file, hlen, config, pm)) return st;
    return pm.count ? config_from_printout(pm, config) : SGDX_OK;
}

sgdx_status sgdx_model_arena_size(const sgdx_config* config, size_t* bytes) {
    if (!bytes) return null_arg(nullptr, "sgdx_model_arena_size", "bytes");
    ModelHead h;
    size_t text = 0;
    return arena_size(config, h, "sgdx_model_arena_size", *bytes, text);
}

sgdx_status sgdx_create_model(void* arena, size_t arena_bytes, const sgdx_config* config, uint64_t seed,
                              sgdx_model** model) {
    const char* fn = "sgdx_create_model";
    if (!model) return null_arg(nullptr, fn, "model (the output pointer)");
    *model = nullptr;
    if (!arena) return null_arg(nullptr, fn, "arena");
    ModelHead h;
    size_t text = 0, need = 0;
    if (sgdx_status st = arena_size(config, h, fn, need, text)) return st;  // errors name this call
    if (arena_bytes < need)
        return error(nullptr).s(fn).s(": arena of ").u(arena_bytes).s(" bytes is too small: this ").s(arch_label(h.arch))
            .s(" model (max_batch ").u(config->max_batch).s(") needs ").u(need).s(" (sgdx_model_arena_size)").status(SGDX_ERR_ARENA_TOO_SMALL);
    uint8_t* base = static_cast<uint8_t*>(arena);
    base += (kAlign - reinterpret_cast<uintptr_t>(base) % kAlign) % kAlign;
    std::memset(base, 0, need - (kAlign - 1));
    sgdx_model* m = reinterpret_cast<sgdx_model*>(base);
    describe(config, *m, m->layers, fn, &text, nullptr);  // as sized above, now into the arena
    layout(*m, base, text);
    if (text) printout_into(arch_text(config->architecture), m->header + kHeaderMax);
    initialise(m->layers, m->n_layers, m->buf.row, seed);
    m->quantized = (m->flags & SGDX_INT8_ONLY) != 0;  // an int8-only model's rows were quantised as drawn
    m->magic = kMagic;
    *model = m;
    return SGDX_OK;
}

sgdx_status sgdx_model_config(const sgdx_model* m, sgdx_config* c) {
    if (sgdx_status st = check_model(m, "sgdx_model_config")) return st;
    if (!c) return null_arg(m, "sgdx_model_config", "config");
    std::memset(c, 0, sizeof *c);
    c->architecture = m->arch == kCustom ? printout(m) : kArchitectures[m->arch].name;
    for (uint32_t i = 0; i < SGDX_MAX_HIDDEN; ++i) c->hidden[i] = m->hidden[i];
    c->image_rows = m->rows, c->image_cols = m->cols, c->classes = m->classes;
    c->max_batch = m->max_batch, c->momentum = m->momentum, c->flags = m->flags;
    return SGDX_OK;
}

sgdx_status sgdx_tensor_count(const sgdx_model* m, uint32_t* count) {
    if (sgdx_status st = check_model(m, "sgdx_tensor_count")) return st;
    if (!count) return null_arg(m, "sgdx_tensor_count", "count");
    TensorRef list[kMaxTensors];
    *count = tensors(m, list);
    return SGDX_OK;
}

sgdx_status sgdx_tensor_at(const sgdx_model* m, uint32_t index, sgdx_tensor* t) {
    if (sgdx_status st = check_model(m, "sgdx_tensor_at")) return st;
    if (!t) return null_arg(m, "sgdx_tensor_at", "tensor");
    TensorRef list[kMaxTensors];
    const uint32_t n = tensors(m, list);
    if (index >= n)
        return error(m).s("sgdx_tensor_at: index ").u(index).s(" is not < the model's ").u(n).s(" tensors").status(SGDX_ERR_BAD_OPTION);
    std::memset(t, 0, sizeof *t);
    t->name = list[index].name();
    t->data = data(list[index]);
    t->rank = list[index].shape(t->shape);
    t->count = list[index].count();
    return SGDX_OK;
}

sgdx_status sgdx_arena_size(uint32_t inputs, uint32_t classes, uint32_t max_batch, size_t* bytes) {
    if (!bytes) return null_arg(nullptr, "sgdx_arena_size", "bytes");
    if (sgdx_status st = check_inputs(inputs)) return st;
    const sgdx_config c = logistic_config(inputs, classes, max_batch);
    return sgdx_model_arena_size(&c, bytes);
}

sgdx_status sgdx_create(void* arena, size_t arena_bytes, uint32_t inputs, uint32_t classes,
                        uint32_t max_batch, uint64_t seed, sgdx_model** model) {
    if (!model) return null_arg(nullptr, "sgdx_create", "model (the output pointer)");
    *model = nullptr;
    if (sgdx_status st = check_inputs(inputs)) return st;
    const sgdx_config c = logistic_config(inputs, classes, max_batch);
    return sgdx_create_model(arena, arena_bytes, &c, seed, model);
}

SGDX_SETUP_END
sgdx_status sgdx_predict(sgdx_model* m, const uint8_t* image, uint32_t* predicted, float* probs) {
    if (sgdx_status st = check_model(m, "sgdx_predict")) return st;
    if (m->flags & SGDX_INT8_ONLY) return int8_only(m, "sgdx_predict");
    if (!image) return null_arg(m, "sgdx_predict", "image");
    if (!predicted) return null_arg(m, "sgdx_predict", "predicted");
    const float* z = forward(m, image, 1);
    *predicted = argmax(z, m->classes);
    if (probs) {
        float sum = 0.f;
        for (uint32_t c = 0; c < m->classes; ++c) sum += probs[c] = exp_portable(z[c] - z[*predicted]);
        for (uint32_t c = 0; c < m->classes; ++c) probs[c] /= sum;
    }
    return SGDX_OK;
}

sgdx_status sgdx_train_step(sgdx_model* m, const uint8_t* images, const uint8_t* labels,
                            uint32_t batch, float lr, float* loss) {
    const char* fn = "sgdx_train_step";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (m->flags & SGDX_INFERENCE_ONLY)
        return error(m).s(fn).s(": the model was created SGDX_INFERENCE_ONLY (no room for training)").status(SGDX_ERR_NOT_TRAINABLE);
    if (!images) return null_arg(m, fn, "images");
    if (!labels) return null_arg(m, fn, "labels");
    if (batch == 0 || batch > m->max_batch)
        return error(m).s(fn).s(": batch of ").u(batch).s(" images: must be in [1, max_batch = ").u(m->max_batch).s("]").status(SGDX_ERR_BAD_BATCH_SIZE);
    if (!(std::isfinite(lr) && lr >= 0.f)) return error(m).s(fn).s(": lr must be a finite number >= 0").status(SGDX_ERR_BAD_OPTION);
    if (sgdx_status st = check_labels(m, fn, labels, batch)) return st;
    for (uint32_t i = 0; i < batch; ++i) m->buf.targets[i] = labels[i];
    const float* logits = forward(m, images, batch);
    // As the runtime's loss_batch: mean loss, gradient of the mean.
    const float mean = float(softmax_xent(logits, m->buf.targets, m->buf.grad[0], 1.f / float(batch), batch,
                                              m->classes, nullptr) / double(batch));
    if (loss) *loss = mean;
    if (!std::isfinite(mean))
        return error(m).s(fn).s(": the loss is not finite (learning rate too high?); the step was not applied").status(SGDX_ERR_DIVERGED);
    backward(m->layers, m->n_layers, m->buf, batch, SgdStep{lr, m->momentum, m->steps == 0});
    ++m->steps;
    m->quantized = false;
    return SGDX_OK;
}

sgdx_status sgdx_evaluate(sgdx_model* m, const uint8_t* images, const uint8_t* labels,
                          uint32_t count, uint32_t* correct, float* mean_loss) {
    const char* fn = "sgdx_evaluate";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (m->flags & SGDX_INT8_ONLY) return int8_only(m, fn);
    if (!images) return null_arg(m, fn, "images");
    if (!labels) return null_arg(m, fn, "labels");
    if (count == 0) return error(m).s(fn).s(": count is 0").status(SGDX_ERR_BAD_BATCH_SIZE);
    if (sgdx_status st = check_labels(m, fn, labels, count)) return st;
    double total = 0;
    uint32_t hits = 0;
    for (uint32_t i = 0; i < count; i += m->max_batch) {
        const uint32_t n = count - i < m->max_batch ? count - i : m->max_batch;
        for (uint32_t j = 0; j < n; ++j) m->buf.targets[j] = labels[i + j];
        const float* logits = forward(m, images + size_t(i) * pixels(m), n);
        size_t ok = 0;
        total += softmax_xent(logits, m->buf.targets, nullptr, 0.f, n, m->classes, &ok);
        hits += uint32_t(ok);
    }
    if (correct) *correct = hits;
    if (mean_loss) *mean_loss = float(total / count);
    return SGDX_OK;
}

sgdx_status sgdx_parameters(const sgdx_model* m, const float** weight, const float** bias) {
    if (sgdx_status st = check_model(m, "sgdx_parameters")) return st;
    if (!weight) return null_arg(m, "sgdx_parameters", "weight");
    if (!bias) return null_arg(m, "sgdx_parameters", "bias");
    if (m->flags & SGDX_INT8_ONLY) return int8_only(m, "sgdx_parameters");
    if (m->arch != kLogistic)
        return error(m).s("sgdx_parameters: this is a ").s(arch_label(m->arch))
            .s(" model, not the logistic one: use sgdx_tensor_at").status(SGDX_ERR_SHAPE_MISMATCH);
    *weight = m->layers[0].weight;
    *bias = m->layers[0].bias;
    return SGDX_OK;
}

SGDX_SETUP_BEGIN
sgdx_status sgdx_weights_size(const sgdx_model* m, size_t* bytes) {
    if (sgdx_status st = check_model(m, "sgdx_weights_size")) return st;
    if (!bytes) return null_arg(m, "sgdx_weights_size", "bytes");
    if (m->flags & SGDX_INT8_ONLY) return int8_only(m, "sgdx_weights_size");
    if (has_norm(m)) return folded(m, "sgdx_weights_size");
    *bytes = 8 + padded(write_header(m, m->header, kHeaderMax)) + data_bytes(m->layers, m->n_layers);
    return SGDX_OK;
}

sgdx_status sgdx_save_stream(const sgdx_model* m, sgdx_write_fn write, void* ctx) {
    const char* fn = "sgdx_save_stream";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (m->flags & SGDX_INT8_ONLY) return int8_only(m, fn);
    if (has_norm(m)) return folded(m, fn);
    if (!write) return null_arg(m, fn, "write");
    const size_t n = write_header(m, m->header, kHeaderMax), hlen = padded(n);
    if (n == 0 || hlen > kHeaderMax)
        return error(m).s(fn).s(": the header does not fit its ").u(kHeaderMax).s("-byte buffer").status(SGDX_ERR_BUFFER_TOO_SMALL);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(hlen) >> (8 * i));
    std::memset(m->header + n, ' ', hlen - n);  // data starts 8-byte aligned
    if (write(ctx, len, 8) || write(ctx, reinterpret_cast<const uint8_t*>(m->header), hlen))
        return error(m).s(fn).s(": the write callback failed").status(SGDX_ERR_IO);
    if (!write_tensor_data(m->layers, m->n_layers, write, ctx))
        return error(m).s(fn).s(": the write callback failed").status(SGDX_ERR_IO);
    return SGDX_OK;
}

namespace {
struct MemoryWriter {
    uint8_t* at;
    static int write(void* ctx, const uint8_t* bytes, size_t n) {
        auto* w = static_cast<MemoryWriter*>(ctx);
        std::memcpy(w->at, bytes, n);
        w->at += n;
        return 0;
    }
};
struct MemoryReader {
    const uint8_t* data;
    static int read(void* ctx, size_t offset, uint8_t* bytes, size_t n) {
        std::memcpy(bytes, static_cast<MemoryReader*>(ctx)->data + offset, n);
        return 0;
    }
};

// What a load fills: m's layers (core/weights).
NetWeights weights_of(sgdx_model* m) {
    return {m->layers, m->n_layers, m->buf.row, (m->flags & SGDX_INT8_ONLY) != 0, m->arch, arch_label(m->arch)};
}

// A file whose architecture is a printout must hold m's network (a name is
// checked by load_weights); its printout is parsed in `room`.
sgdx_status network_in(sgdx_model* m, const char* fn, const char* header, size_t hlen, PrintoutRoom& room) {
    uint32_t theirs = kCustom;
    if (network_matches(weights_of(m), m->rows, m->cols, header, hlen, room, kMaxInputs, theirs)) return SGDX_OK;
    Text e = error(m);
    e.s(fn).s(": the file holds a '").s(arch_label(theirs)).s("' model, this model is '").s(arch_label(m->arch));
    return e.s("' (sgdx_config_from_weights reads a file's architecture)").status(SGDX_ERR_SHAPE_MISMATCH);
}

__attribute__((noinline)) sgdx_status network_on_stack(sgdx_model* m, const char* fn, const char* header, size_t hlen) {
    PrintoutRoom room;
    return network_in(m, fn, header, hlen, room);
}

// network_in, in the model's scratch (else on the stack).
sgdx_status check_network(sgdx_model* m, const char* fn, const char* header, size_t hlen) {
    if (PrintoutRoom* room = scratch(m)) return network_in(m, fn, header, hlen, *room);
    return network_on_stack(m, fn, header, hlen);
}

// sgdx_load and sgdx_load_stream: `header` holds the header's hlen bytes.
sgdx_status load(sgdx_model* m, const char* fn, const char* header, size_t hlen, size_t size, sgdx_read_fn read,
                 void* ctx) {
    Text e = error(m);
    switch (load_weights(weights_of(m), header, hlen, size, read, ctx, e.s(fn).s(": "))) {
        case LoadResult::kLoaded: after_new_weights(m); return SGDX_OK;
        case LoadResult::kPartly: after_new_weights(m), m->quantized = false; return SGDX_ERR_IO;
        case LoadResult::kIo: return SGDX_ERR_IO;
        case LoadResult::kCorrupt: return SGDX_ERR_CORRUPT_WEIGHTS;
        case LoadResult::kMismatch: break;
    }
    return SGDX_ERR_SHAPE_MISMATCH;
}
}  // namespace

sgdx_status sgdx_save(const sgdx_model* m, uint8_t* buffer, size_t capacity, size_t* written) {
    const char* fn = "sgdx_save";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (m->flags & SGDX_INT8_ONLY) return int8_only(m, fn);
    if (!buffer) return null_arg(m, fn, "buffer");
    if (!written) return null_arg(m, fn, "written");
    *written = 0;
    size_t need = 0;
    if (has_norm(m)) return folded(m, fn);
    sgdx_weights_size(m, &need);
    if (capacity < need)
        return error(m).s(fn).s(": buffer of ").u(capacity).s(" bytes is too small for the ").u(need).s("-byte weights").status(SGDX_ERR_BUFFER_TOO_SMALL);
    MemoryWriter w{buffer};
    if (sgdx_status st = sgdx_save_stream(m, MemoryWriter::write, &w)) return st;
    *written = need;
    return SGDX_OK;
}

sgdx_status sgdx_load(sgdx_model* m, const uint8_t* buffer, size_t size) {
    const char* fn = "sgdx_load";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!buffer) return null_arg(m, fn, "buffer");
    size_t hlen = 0;
    if (sgdx_status st = header_length(m, fn, buffer, size, hlen)) return st;
    MemoryReader r{buffer};
    const char* header = reinterpret_cast<const char*>(buffer + 8);
    if (sgdx_status st = check_network(m, fn, header, hlen)) return st;
    return load(m, fn, header, hlen, size, MemoryReader::read, &r);
}

sgdx_status sgdx_load_stream(sgdx_model* m, sgdx_read_fn read, void* ctx, size_t size) {
    const char* fn = "sgdx_load_stream";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!read) return null_arg(m, fn, "read");
    uint8_t first8[8] = {};
    if (size >= 8 && read(ctx, 0, first8, 8)) return error(m).s(fn).s(": the read callback failed").status(SGDX_ERR_IO);
    size_t hlen = 0;
    if (sgdx_status st = header_length(m, fn, first8, size, hlen)) return st;
    if (hlen > kHeaderMax)
        return error(m).s(fn).s(": a header of ").u(hlen).s(" bytes is longer than this call reads (")
            .u(kHeaderMax).s("; sgdx's own files stay far below): use sgdx_load with the file in memory").status(SGDX_ERR_BUFFER_TOO_SMALL);
    if (read(ctx, 8, reinterpret_cast<uint8_t*>(m->header), hlen))
        return error(m).s(fn).s(": the read callback failed").status(SGDX_ERR_IO);
    if (sgdx_status st = check_network(m, fn, m->header, hlen)) return st;
    return load(m, fn, m->header, hlen, size, read, ctx);
}

sgdx_status sgdx_quantize(sgdx_model* m, sgdx_quant_mode mode) {
    if (sgdx_status st = check_model(m, "sgdx_quantize")) return st;
    if (mode != SGDX_QUANT_PER_TENSOR && mode != SGDX_QUANT_PER_ROW)
        return error(m).s("sgdx_quantize: mode ").u(uint32_t(mode)).s(" is neither SGDX_QUANT_PER_TENSOR nor SGDX_QUANT_PER_ROW").status(SGDX_ERR_BAD_OPTION);
    if (m->flags & SGDX_NO_INT8)
        return error(m).s("sgdx_quantize: the model was created SGDX_NO_INT8 (no room for int8 weights)").status(SGDX_ERR_NOT_QUANTIZED);
    if (m->flags & SGDX_INT8_ONLY) {
        if (!m->quantized)
            return error(m).s("sgdx_quantize: this SGDX_INT8_ONLY model's weights were partly loaded: load them again").status(SGDX_ERR_NOT_QUANTIZED);
        if (mode == SGDX_QUANT_PER_ROW) return SGDX_OK;  // done as the weights were loaded
        return error(m).s("sgdx_quantize: an SGDX_INT8_ONLY model keeps per-row scales (it has no float weights to requantise)").status(SGDX_ERR_BAD_OPTION);
    }
    m->quantized = quantize(m->layers, m->n_layers, mode == SGDX_QUANT_PER_ROW);
    if (!m->quantized) return error(m).s("sgdx_quantize: the weights are not finite").status(SGDX_ERR_DIVERGED);
    return SGDX_OK;
}
SGDX_SETUP_END

sgdx_status sgdx_predict_int8(sgdx_model* m, const uint8_t* image, uint32_t* predicted) {
    const char* fn = "sgdx_predict_int8";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!image) return null_arg(m, fn, "image");
    if (!predicted) return null_arg(m, fn, "predicted");
    if (!m->quantized) return not_quantized(m, fn);
    *predicted = predict_int8(m->layers, m->n_layers, m->buf, image, m->classes);
    return SGDX_OK;
}

sgdx_status sgdx_evaluate_int8(sgdx_model* m, const uint8_t* images, const uint8_t* labels,
                               uint32_t count, uint32_t* correct) {
    const char* fn = "sgdx_evaluate_int8";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!images) return null_arg(m, fn, "images");
    if (!labels) return null_arg(m, fn, "labels");
    if (!correct) return null_arg(m, fn, "correct");
    if (!m->quantized) return not_quantized(m, fn);
    if (count == 0) return error(m).s(fn).s(": count is 0").status(SGDX_ERR_BAD_BATCH_SIZE);
    if (sgdx_status st = check_labels(m, fn, labels, count)) return st;
    uint32_t hits = 0;
    for (uint32_t i = 0; i < count; ++i)
        hits += predict_int8(m->layers, m->n_layers, m->buf, images + size_t(i) * pixels(m), m->classes) == labels[i];
    *correct = hits;
    return SGDX_OK;
}

SGDX_SETUP_BEGIN
const char* sgdx_status_name(sgdx_status status) {
    switch (status) {
        case SGDX_OK: return "SGDX_OK";
        case SGDX_ERR_NULL_ARGUMENT: return "SGDX_ERR_NULL_ARGUMENT";
        case SGDX_ERR_BAD_DIMENSION: return "SGDX_ERR_BAD_DIMENSION";
        case SGDX_ERR_ARENA_TOO_SMALL: return "SGDX_ERR_ARENA_TOO_SMALL";
        case SGDX_ERR_BAD_MODEL: return "SGDX_ERR_BAD_MODEL";
        case SGDX_ERR_BAD_BATCH_SIZE: return "SGDX_ERR_BAD_BATCH_SIZE";
        case SGDX_ERR_BAD_LABEL: return "SGDX_ERR_BAD_LABEL";
        case SGDX_ERR_BAD_OPTION: return "SGDX_ERR_BAD_OPTION";
        case SGDX_ERR_DIVERGED: return "SGDX_ERR_DIVERGED";
        case SGDX_ERR_BUFFER_TOO_SMALL: return "SGDX_ERR_BUFFER_TOO_SMALL";
        case SGDX_ERR_CORRUPT_WEIGHTS: return "SGDX_ERR_CORRUPT_WEIGHTS";
        case SGDX_ERR_SHAPE_MISMATCH: return "SGDX_ERR_SHAPE_MISMATCH";
        case SGDX_ERR_NOT_QUANTIZED: return "SGDX_ERR_NOT_QUANTIZED";
        case SGDX_ERR_UNKNOWN_MODEL: return "SGDX_ERR_UNKNOWN_MODEL";
        case SGDX_ERR_NOT_TRAINABLE: return "SGDX_ERR_NOT_TRAINABLE";
        case SGDX_ERR_IO: return "SGDX_ERR_IO";
        default: break;  // SGDX_STATUS_FORCE_INT and any other number
    }
    return "unknown status";
}

const char* sgdx_last_error(const sgdx_model* m) {
    if (m && m->magic == kMagic) return m->message;
    return g_message;
}

SGDX_SETUP_END
}  // extern "C"
