#include "core/architecture.hpp"

#include <cstring>

namespace sgdx::core {

int arch_id(Span name) {
    for (uint32_t i = 0; i < kArchCount; ++i)
        if (name.is(kArchitectures[i].name)) return int(i);
    return -1;
}

Text& list_architectures(Text& t) {
    for (uint32_t i = 0; i < kArchCount; ++i) t.s(i ? ", " : "").s(kArchitectures[i].name);
    return t;
}

void image_size(uint64_t n, uint64_t& rows, uint64_t& cols) {
    // The integer square root by bisection (no libm: the firmware links no sqrt for it).
    uint64_t lo = 0, hi = n < (uint64_t(1) << 32) ? n : (uint64_t(1) << 32) - 1;
    while (lo < hi) {
        const uint64_t mid = lo + (hi - lo + 1) / 2;
        if (mid * mid <= n) lo = mid;
        else hi = mid - 1;
    }
    const uint64_t side = lo;
    if (side * side == n) rows = cols = side;
    else rows = 1, cols = n;
}

bool is_sequential(uint32_t arch) {
    return arch == kCustom || (arch < kArchCount && std::strcmp(kArchitectures[arch].torch_class, "Sequential") == 0);
}

namespace {

bool same_layer(const LayerSpec& a, const LayerSpec& b) {
    if (a.kind != b.kind || std::strcmp(a.name, b.name) != 0 || a.in != b.in || a.out != b.out || a.bias != b.bias)
        return false;
    for (int i = 0; i < 2; ++i)
        if (a.kernel[i] != b.kernel[i] || a.stride[i] != b.stride[i] || a.padding[i] != b.padding[i]) return false;
    if (a.kind == LayerKind::kUnflatten) {
        if (a.unflatten_rank != b.unflatten_rank) return false;
        for (uint32_t i = 0; i < a.unflatten_rank; ++i)
            if (a.unflatten[i] != b.unflatten[i]) return false;
    }
    if (a.kind == LayerKind::kBatchNorm1d || a.kind == LayerKind::kBatchNorm2d)
        return a.eps.value == b.eps.value && a.momentum.value == b.momentum.value && a.cumulative == b.cumulative &&
               a.affine == b.affine && a.track_running_stats == b.track_running_stats;
    return a.kind != LayerKind::kDropout || a.p.value == b.p.value;
}

// (h + 2 pad - k) / stride + 1, or 0 if the window does not fit.
uint64_t out_size(uint64_t h, uint32_t k, uint32_t stride, uint32_t pad) {
    return h + 2 * pad < k ? 0 : (h + 2 * pad - k) / stride + 1;
}

}  // namespace

// Appends layers to out[0, cap), named by position (a Sequential's children) or
// as given; past cap it only counts.
class LayerBuilder {
public:
    LayerBuilder(LayerSpec* list, uint32_t room) : out(list), cap(room) {}
    LayerSpec* out;
    uint32_t cap, n = 0;
    LayerSpec spare;
    // Comparing instead of listing: each layer is checked against expect[i] (of
    // n_expected) and kept nowhere, so no array of a model's layers is needed.
    const LayerSpec* expect = nullptr;
    uint32_t n_expected = 0;
    bool differs = false;

    void check_last() {
        if (expect && n > 0) differs = differs || n > n_expected || !same_layer(spare, expect[n - 1]);
    }
    bool matches() {
        check_last();
        return !differs && n == n_expected;
    }
    LayerSpec& add(LayerKind kind, const char* name = nullptr) {
        check_last();
        LayerSpec& l = n < cap && !expect ? out[n] : spare;
        std::memset(&l, 0, sizeof l);
        l.kind = kind;
        Text t(l.name, sizeof l.name);
        if (name) t.s(name);
        else t.u(n);
        ++n;
        return l;
    }
    void unflatten(uint64_t c, uint64_t h, uint64_t w, const char* name = nullptr) {
        LayerSpec& l = add(LayerKind::kUnflatten, name);
        l.unflatten[0] = c, l.unflatten[1] = h, l.unflatten[2] = w;
        l.unflatten_rank = 3, l.unflatten_form = Form::kTuple;
    }
    void conv(uint64_t in, uint64_t out_channels, uint32_t k, uint32_t stride, uint32_t pad, const char* name = nullptr,
              bool bias = true) {
        LayerSpec& l = add(LayerKind::kConv2d, name);
        l.in = in, l.out = out_channels, l.bias = bias;
        l.kernel[0] = l.kernel[1] = k, l.stride[0] = l.stride[1] = stride, l.padding[0] = l.padding[1] = pad;
        l.kernel_form = l.stride_form = l.padding_form = l.dilation_form = Form::kTuple;
    }
    void relu(const char* name = nullptr) { add(LayerKind::kReLU, name); }
    void pool(LayerKind kind, uint32_t k, const char* name = nullptr) {  // stride = window, no padding
        LayerSpec& l = add(kind, name);
        l.kernel[0] = l.kernel[1] = l.stride[0] = l.stride[1] = k;
        l.kernel_form = l.stride_form = l.padding_form = l.dilation_form = Form::kInt;
    }
    void adaptive_avg_pool(const char* name = nullptr) { add(LayerKind::kAdaptiveAvgPool2d, name).output_form = Form::kInt; }
    void flatten(const char* name = nullptr) { add(LayerKind::kFlatten, name); }
    void linear(uint64_t in, uint64_t out_features, const char* name = nullptr, bool bias = true) {
        LayerSpec& l = add(LayerKind::kLinear, name);
        l.in = in, l.out = out_features, l.bias = bias;
    }
    void batch_norm(LayerKind kind, uint64_t features) {  // PyTorch's defaults
        LayerSpec& l = add(kind);
        l.in = features;
        l.eps = {1e-5, false}, l.momentum = {0.1, false};
        l.affine = l.track_running_stats = true;
    }
};

namespace {

// The tutorial's CNN chapter: SGD, lr 0.1, momentum 0.9, two epochs.
constexpr Training kTutorialCnn = {"sgd", 0.1f, 0.9f, 1.0, "step", 2};

}  // namespace

const Training kCustomTraining = kTutorialCnn;

// The models sgdx knows by name, in the order --help and messages list them.
// Adding one is adding an entry: tests/test_architecture.cpp tries every entry
// (its network, printout, files and their detection, training defaults).
const Architecture kArchitectures[] = {
    {"logistic", "MnistLogistic", {"sgd", 0.5f, 0.f, 1.0, "step", 2},  // the tutorial's: lr 0.5, no momentum
     {{"lin.weight", 2}}, {"lin.weight", 2}, 0,
     [](const Spec& s, LayerBuilder& l) { l.linear(s.rows * s.cols, s.classes, "lin"); }},
    {"cnn", "Mnist_CNN", kTutorialCnn, {{"conv3.weight", 4}}, {"conv3.weight", 4}, 0,
     [](const Spec& s, LayerBuilder& l) {  // Mnist_CNN.forward: view, 3 x (conv, relu), avg_pool2d(4), view
         l.unflatten(1, s.rows, s.cols, "view");
         l.conv(1, 16, 3, 2, 1, "conv1");
         l.relu("relu1");
         l.conv(16, 16, 3, 2, 1, "conv2");
         l.relu("relu2");
         l.conv(16, s.classes, 3, 2, 1, "conv3");
         l.relu("relu3");
         l.pool(LayerKind::kAvgPool2d, 4, "avg_pool2d");
         l.flatten("view2");
     }},
    {"cnn_sequential", "Sequential", kTutorialCnn, {{"5.weight", 4}}, {"5.weight", 4}, 0,
     [](const Spec& s, LayerBuilder& l) {  // the tutorial's Lambda(preprocess) and Lambda(view) as Unflatten and Flatten
         l.unflatten(1, s.rows, s.cols);
         l.conv(1, 16, 3, 2, 1);
         l.relu();
         l.conv(16, 16, 3, 2, 1);
         l.relu();
         l.conv(16, s.classes, 3, 2, 1);
         l.relu();
         l.adaptive_avg_pool();
         l.flatten();
     }},
    {"mlp", "Sequential", kTutorialCnn, {{"0.weight", 2}}, {}, 0,  // classes: the last of 0.weight, 2.weight, ...
     [](const Spec& s, LayerBuilder& l) {  // (Linear, ReLU) per hidden width, Linear
         uint64_t in = s.rows * s.cols;
         for (uint32_t i = 0; i < s.n_hidden; ++i) {
             l.linear(in, s.hidden[i]);
             l.relu();
             in = s.hidden[i];
         }
         l.linear(in, s.classes);
     }},
    {"lenet", "Sequential", {"sgd", 0.05f, 0.9f, 0.7, "step", 3},  // PyTorch's MNIST example's lr decay
     {{"1.weight", 4}, {"4.weight", 4}}, {"10.weight", 2}, 16,
     [](const Spec& s, LayerBuilder& l) {  // LeNet-5's layout, widened (see models/zoo.hpp)
         const uint64_t h = out_size(out_size(out_size(out_size(s.rows, 5, 1, 0), 2, 2, 0), 5, 1, 0), 2, 2, 0);
         const uint64_t w = out_size(out_size(out_size(out_size(s.cols, 5, 1, 0), 2, 2, 0), 5, 1, 0), 2, 2, 0);
         l.unflatten(1, s.rows, s.cols);
         l.conv(1, 16, 5, 1, 0);
         l.relu();
         l.pool(LayerKind::kMaxPool2d, 2);
         l.conv(16, 32, 5, 1, 0);
         l.relu();
         l.pool(LayerKind::kMaxPool2d, 2);
         l.flatten();
         l.linear(32 * h * w, 128);
         l.relu();
         l.linear(128, s.classes);
     }},
    {"bncnn", "Sequential", {"adam", 0.005f, 0.f, 1.0, "onecycle", 1},  // OneCycleLR peaking at 5e-3
     {{"1.weight", 4}, {"2.running_mean", 1}}, {"17.weight", 2}, 8,
     [](const Spec& s, LayerBuilder& l) {  // 3 x (conv 3x3 without bias, BatchNorm, ReLU, max-pool), BatchNorm'd hidden layer
         l.unflatten(1, s.rows, s.cols);
         uint64_t h = s.rows, w = s.cols, in = 1;
         static const uint64_t kChannels[] = {16, 32, 64};
         for (uint64_t out_channels : kChannels) {
             l.conv(in, out_channels, 3, 1, 1, nullptr, false);
             l.batch_norm(LayerKind::kBatchNorm2d, out_channels);
             l.relu();
             l.pool(LayerKind::kMaxPool2d, 2);
             in = out_channels, h /= 2, w /= 2;
         }
         l.flatten();
         l.linear(64 * h * w, 128, nullptr, false);
         l.batch_norm(LayerKind::kBatchNorm1d, 128);
         l.relu();
         l.linear(128, s.classes);
     }},
};
const uint32_t kArchCount = sizeof kArchitectures / sizeof kArchitectures[0];

namespace {

// s's layers into l; false for an architecture with none of its own.
bool list_layers(const Spec& s, LayerBuilder& l) {
    if (s.arch >= kArchCount) return false;
    kArchitectures[s.arch].layers(s, l);
    return true;
}

}  // namespace

bool model_layers(const Spec& s, LayerSpec* out, uint32_t cap, uint32_t& count) {
    if (s.arch == kCustom) {
        if (s.n_layers > cap) return false;
        if (out != s.layers) std::memcpy(out, s.layers, s.n_layers * sizeof(LayerSpec));
        count = s.n_layers;
        return true;
    }
    LayerBuilder l{out, cap};
    if (!list_layers(s, l)) return false;
    count = l.n;
    return l.n <= cap;
}

bool detect_reads(Span key) {
    return key.is("architecture") || key.is("classes") || key.is("hidden") || key.is("image_rows") ||
           key.is("image_cols");
}

namespace {

Span meta(const HeaderView& h, const char* key) {
    for (size_t i = 0; i < h.meta_count; ++i)
        if (h.meta[i].key.is(key)) return h.meta[i].value;
    return {};
}

const TensorEntry* find(const HeaderView& h, const char* name, uint32_t rank) {
    for (size_t i = 0; i < h.count; ++i)
        if (h.tensors[i].name.is(name) && h.tensors[i].rank == rank) return &h.tensors[i];
    return nullptr;
}

// Whether a file without metadata holds the tensors that tell architecture a apart.
bool holds(const HeaderView& h, const Architecture& a) {
    for (const TensorName& t : a.has)
        if (t.name && !find(h, t.name, t.rank)) return false;
    return a.has[0].name != nullptr;
}

// "logistic: lin.weight (2-d); ...; bncnn: 1.weight (4-d) and 2.running_mean (1-d)":
// what detect looks for in a file without metadata.
Text& tensor_names_by_model(Text& t) {
    for (uint32_t i = 0; i < kArchCount; ++i) {
        t.s(i ? "; " : "").s(kArchitectures[i].name).s(": ");
        for (uint32_t j = 0; j < 2 && kArchitectures[i].has[j].name; ++j)
            t.s(j ? " and " : "").s(kArchitectures[i].has[j].name).s(" (").u(kArchitectures[i].has[j].rank).s("-d)");
    }
    return t;
}

// "28" -> 28: digits only, 1 .. 2^24.
bool parse_size(Span s, uint64_t& v) {
    if (!s.p || s.n == 0 || s.n > 8) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < s.n; ++i) {
        if (s.p[i] < '0' || s.p[i] > '9') return false;
        x = x * 10 + uint64_t(s.p[i] - '0');
    }
    if (x == 0 || x > (1u << 24)) return false;
    v = x;
    return true;
}

// "0.weight [8, 1, 5, 5], 0.bias [8], ..." for the first few tensors, by name.
Text& tensor_summary(const HeaderView& h, Text& t) {
    if (h.count == 0) return t.s("it has none");
    const TensorEntry* prev = nullptr;
    for (size_t shown = 0; shown < h.count; ++shown) {
        if (shown == 4) return t.s(", ... ").u(h.count).s(" in all");
        const TensorEntry* next = nullptr;
        for (size_t i = 0; i < h.count; ++i) {
            const TensorEntry& e = h.tensors[i];
            if ((!prev || e.name.compare(prev->name) > 0) && (!next || e.name.compare(next->name) < 0)) next = &e;
        }
        if (!next) break;  // names the reader let through twice
        t.s(shown ? ", " : "").name(next->name).s(" [");
        for (uint32_t d = 0; d < next->rank; ++d) (d ? t.s(", ") : t).u(next->shape[d]);
        t.s("]");
        prev = next;
    }
    return t;
}

// The metadata's image_rows, image_cols and classes into s. A named model's file
// (`required` names it) must have all three; a printout's may leave them out.
DetectProblem read_sizes(const HeaderView& h, const char* required, Spec& s, Text& why) {
    const char* keys[] = {"image_rows", "image_cols", "classes"};
    uint64_t* fields[] = {&s.rows, &s.cols, &s.classes};
    for (int k = 0; k < 3; ++k) {
        const Span v = meta(h, keys[k]);
        if (!v.p && !required) continue;
        if (!v.p)
            return why.s("metadata names architecture '").s(required).s("' but lacks '").s(keys[k]).s("'"),
                   DetectProblem::kCorrupt;
        if (!parse_size(v, *fields[k]))
            return why.s("metadata '").s(keys[k]).s("' is not a valid size: '").name(v).s("'"), DetectProblem::kCorrupt;
    }
    return DetectProblem::kNone;
}

// The image size and classes a printout's layers imply (metadata may say otherwise).
void infer_sizes(const LayerSpec* layers, uint32_t n, Spec& s) {
    s.rows = s.cols = 28;
    for (uint32_t i = 0; i < n; ++i) {
        const LayerSpec& l = layers[i];
        if (l.kind == LayerKind::kUnflatten && l.unflatten_rank == 3) {
            s.rows = l.unflatten[1], s.cols = l.unflatten[2];
            break;
        }
        if (l.kind == LayerKind::kLinear) {
            image_size(l.in, s.rows, s.cols);
            break;
        }
        if (l.kind == LayerKind::kConv2d) break;
    }
    for (uint32_t i = 0; i < n; ++i)
        if (layers[i].kind == LayerKind::kLinear || layers[i].kind == LayerKind::kConv2d) s.classes = layers[i].out;
}

// Which named model a printout's layers are, if any (compared layer by layer:
// no copy of a model's layers on the device's stack).
void recognise(Spec& s) {
    constexpr uint32_t kMostHidden = 16;
    uint64_t hidden[kMostHidden];
    for (uint32_t arch = 0; arch < kArchCount; ++arch) {
        if (!is_sequential(arch)) continue;
        Spec c = s;
        c.arch = arch;
        c.hidden = hidden, c.hidden_cap = kMostHidden, c.n_hidden = 0;
        if (arch == kMlp) {
            for (uint32_t i = 0; i + 1 < s.n_layers && c.n_hidden < kMostHidden; ++i)
                if (s.layers[i].kind == LayerKind::kLinear) hidden[c.n_hidden++] = s.layers[i].out;
            if (c.n_hidden == 0 || c.n_hidden > s.hidden_cap) continue;  // one Linear: no mlp; or more than kept
        }
        LayerBuilder l{nullptr, 0};
        l.expect = s.layers, l.n_expected = s.n_layers;
        if (!list_layers(c, l) || !l.matches()) continue;
        s.arch = arch;
        s.n_hidden = 0;
        if (arch == kMlp)
            for (uint32_t i = 0; i < c.n_hidden; ++i) s.hidden[s.n_hidden++] = hidden[i];
        return;
    }
}

DetectProblem from_printout(const HeaderView& h, Span arch, Spec& s, Text& why) {
    if (!s.layers || s.layers_cap == 0)
        return why.s("its architecture is a printout (an nn.Sequential's layers), which this reader does not take"),
               DetectProblem::kUnknownModel;
    uint32_t n = 0;
    if (!parse_printout(arch, s.layers, s.layers_cap, n, why)) return DetectProblem::kUnknownModel;
    s.arch = kCustom, s.n_layers = n, s.n_hidden = 0;
    infer_sizes(s.layers, n, s);
    if (const DetectProblem p = read_sizes(h, nullptr, s, why); p != DetectProblem::kNone) return p;
    recognise(s);
    return DetectProblem::kNone;
}

DetectProblem from_metadata(const HeaderView& h, Span arch, Spec& s, Text& why) {
    if (is_printout(arch)) return from_printout(h, arch, s, why);
    const int id = arch_id(arch);
    if (id < 0) {
        why.s("its architecture '").name(arch).s("' is not one sgdx knows (");
        return list_architectures(why).s(")"), DetectProblem::kUnknownModel;
    }
    s.arch = uint32_t(id);
    if (const DetectProblem p = read_sizes(h, kArchitectures[id].name, s, why); p != DetectProblem::kNone) return p;
    s.n_hidden = 0;
    if (s.arch != kMlp) return DetectProblem::kNone;
    const Span list = meta(h, "hidden");
    if (!list.p) return why.s("metadata names architecture 'mlp' but lacks 'hidden'"), DetectProblem::kCorrupt;
    for (size_t at = 0; at <= list.n;) {
        size_t end = at;
        while (end < list.n && list.p[end] != ',') ++end;
        const Span piece{list.p + at, end - at};
        if (s.n_hidden == s.hidden_cap)
            return why.s("metadata 'hidden' must list 1 to ").u(s.hidden_cap).s(" widths, e.g. \"128\" or \"256,128\""),
                   DetectProblem::kCorrupt;
        if (!parse_size(piece, s.hidden[s.n_hidden++]))
            return why.s("metadata 'hidden' is not a valid size: '").name(piece).s("'"), DetectProblem::kCorrupt;
        at = end + 1;
    }
    return DetectProblem::kNone;
}

}  // namespace

DetectProblem detect(const HeaderView& h, uint64_t max_inputs, Spec& s, Text& why) {
    const Span arch = meta(h, "architecture");
    if (arch.p) return from_metadata(h, arch, s, why);
    // No architecture recorded: PyTorch's state_dict names tell the models apart.
    s.rows = s.cols = 28, s.classes = 10, s.n_hidden = 0;
    static const char* const kFirstLayers[] = {"lin.weight", "0.weight"};
    for (const char* name : kFirstLayers) {
        const TensorEntry* w = find(h, name, 2);
        if (w && (w->shape[1] == 0 || w->shape[1] > max_inputs))
            return why.s("tensor '").s(name).s("' takes ").u(w->shape[1]).s(" inputs: images must have 1 to ")
                       .u(max_inputs).s(" pixels"), DetectProblem::kBadDimension;
    }
    // Later entries first: a newer model is not taken for an older one with fewer tensors.
    uint32_t id = kArchCount;
    while (id > 0 && !holds(h, kArchitectures[id - 1])) --id;
    if (id == 0) {
        why.s("cannot tell which model this is: its metadata names no architecture, and its tensors (");
        return tensor_names_by_model(tensor_summary(h, why).s(") are none of sgdx's models' (")).s(")"),
               DetectProblem::kUnknownModel;
    }
    s.arch = --id;
    const TensorName& classes = kArchitectures[id].classes;
    if (const TensorEntry* c = classes.name ? find(h, classes.name, classes.rank) : nullptr) s.classes = c->shape[0];
    if (id == kLogistic) {  // lin.weight [classes, pixels]
        image_size(find(h, "lin.weight", 2)->shape[1], s.rows, s.cols);
        uint64_t rows = 0, cols = 0;
        if (parse_size(meta(h, "image_rows"), rows) && parse_size(meta(h, "image_cols"), cols))
            s.rows = rows, s.cols = cols;  // older sgdx files
    } else if (id == kMlp) {
        const TensorEntry* w0 = find(h, "0.weight", 2);
        image_size(w0->shape[1], s.rows, s.cols);
        // 0.weight, 2.weight, ...: the last is the output layer.
        uint32_t n = 0;
        char name[24];
        for (const TensorEntry* w = w0; w; w = find(h, name, 2)) {
            if (n > s.hidden_cap)
                return why.s("an mlp of more than ").u(s.hidden_cap).s(" hidden layers"), DetectProblem::kBadDimension;
            if (n < s.hidden_cap) s.hidden[n] = w->shape[0];
            s.classes = w->shape[0];
            ++n;
            Text(name, sizeof name).u(2 * n).s(".weight");
        }
        if (n < 2)
            return why.s("a Sequential of one Linear layer: save it with the logistic model's names (lin.*)"),
                   DetectProblem::kUnknownModel;
        s.n_hidden = n - 1;
    }
    return DetectProblem::kNone;
}

bool model_metadata(const Spec& s, bool with_format, bool printout, char* text, size_t cap, Metadata& out) {
    out = Metadata{};
    if ((s.arch >= kArchCount && s.arch != kCustom) || (s.arch == kCustom && !printout)) return false;
    const bool as_printout = printout && is_sequential(s.arch);
    size_t used = 0;
    bool fits = true;
    // Appends a value written by `write` to text; false once text is full.
    auto add = [&](const char* key, auto write) {
        if (!fits || used >= cap) return void(fits = false);
        Text t(text + used, cap - used);
        write(t);
        fits = !t.overflowed();
        out.key[out.count] = key, out.value[out.count++] = text + used;
        used += t.size() + 1;
    };
    if (as_printout) {
        uint32_t n = 0;
        if (!model_layers(s, s.layers, s.layers_cap, n)) return false;
        bool written = false;
        add("architecture", [&](Text& t) { written = write_printout(s.layers, n, t); });
        if (!written) return false;
    } else {
        add("architecture", [&](Text& t) { t.s(kArchitectures[s.arch].name); });
    }
    add("classes", [&](Text& t) { t.u(s.classes); });
    if (with_format) add("format", [&](Text& t) { t.s("pt"); });
    if (s.arch == kMlp && !as_printout)
        add("hidden", [&](Text& t) {
            for (uint32_t i = 0; i < s.n_hidden; ++i) (i ? t.s(",") : t).u(s.hidden[i]);
        });
    add("image_cols", [&](Text& t) { t.u(s.cols); });
    add("image_rows", [&](Text& t) { t.u(s.rows); });
    add("model", [&](Text& t) { t.s(s.arch == kCustom ? "Sequential" : kArchitectures[s.arch].torch_class); });
    return fits;
}

}  // namespace sgdx::core
