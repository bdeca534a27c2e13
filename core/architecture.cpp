#include "core/architecture.hpp"

#include <cmath>

namespace sgdx::core {

const Architecture kArchitectures[kArchCount] = {{"logistic", "MnistLogistic"},
                                                 {"cnn", "Mnist_CNN"},
                                                 {"cnn_sequential", "Sequential"},
                                                 {"mlp", "Sequential"},
                                                 {"lenet", "Sequential"}};

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
    const uint64_t side = uint64_t(std::sqrt(double(n)) + 0.5);
    if (side * side == n) rows = cols = side;
    else rows = 1, cols = n;
}

bool detect_reads(Span key) {
    return key.is("architecture") || key.is("classes") || key.is("hidden") || key.is("image_rows") ||
           key.is("image_cols");
}

namespace {

// What detect recognises in a file without metadata, in its order.
const char* const kTensorNamesByModel =
    "logistic: lin.weight (2-d); cnn: conv1/conv2/conv3.weight (4-d); "
    "lenet: 1.weight and 4.weight (4-d), 10.weight (2-d); cnn_sequential: 1/3/5.weight (4-d); "
    "mlp: 0.weight, 2.weight, ... (2-d)";

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

DetectProblem from_metadata(const HeaderView& h, Span arch, Spec& s, Text& why) {
    const int id = arch_id(arch);
    if (id < 0) {
        why.s("its architecture '").name(arch).s("' is not one sgdx knows (");
        return list_architectures(why).s(")"), DetectProblem::kUnknownModel;
    }
    s.arch = uint32_t(id);
    const char* keys[] = {"image_rows", "image_cols", "classes"};
    uint64_t* fields[] = {&s.rows, &s.cols, &s.classes};
    for (int k = 0; k < 3; ++k) {
        const Span v = meta(h, keys[k]);
        if (!v.p)
            return why.s("metadata names architecture '").s(kArchitectures[id].name).s("' but lacks '").s(keys[k])
                       .s("'"), DetectProblem::kCorrupt;
        if (!parse_size(v, *fields[k]))
            return why.s("metadata '").s(keys[k]).s("' is not a valid size: '").name(v).s("'"), DetectProblem::kCorrupt;
    }
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
    if (const TensorEntry* w = find(h, "lin.weight", 2)) {
        s.arch = kLogistic;
        s.classes = w->shape[0];
        image_size(w->shape[1], s.rows, s.cols);
        uint64_t rows = 0, cols = 0;
        if (parse_size(meta(h, "image_rows"), rows) && parse_size(meta(h, "image_cols"), cols))
            s.rows = rows, s.cols = cols;  // older sgdx files
    } else if (const TensorEntry* w3 = find(h, "conv3.weight", 4)) {
        s.arch = kCnn;
        s.classes = w3->shape[0];
    } else if (find(h, "1.weight", 4) && find(h, "4.weight", 4)) {
        s.arch = kLenet;
        const TensorEntry* w10 = find(h, "10.weight", 2);
        s.classes = w10 ? w10->shape[0] : 10;
    } else if (const TensorEntry* w5 = find(h, "5.weight", 4)) {
        s.arch = kCnnSequential;
        s.classes = w5->shape[0];
    } else if (const TensorEntry* w0 = find(h, "0.weight", 2)) {
        s.arch = kMlp;
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
    } else {
        why.s("cannot tell which model this is: its metadata names no architecture, and its tensors (");
        return tensor_summary(h, why).s(") are none of sgdx's models' (").s(kTensorNamesByModel).s(")"),
               DetectProblem::kUnknownModel;
    }
    return DetectProblem::kNone;
}

bool model_metadata(const Spec& s, bool with_format, char* text, size_t cap, Metadata& out) {
    out = Metadata{};
    if (s.arch >= kArchCount) return false;
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
    add("architecture", [&](Text& t) { t.s(kArchitectures[s.arch].name); });
    add("classes", [&](Text& t) { t.u(s.classes); });
    if (with_format) add("format", [&](Text& t) { t.s("pt"); });
    if (s.arch == kMlp)
        add("hidden", [&](Text& t) {
            for (uint32_t i = 0; i < s.n_hidden; ++i) (i ? t.s(",") : t).u(s.hidden[i]);
        });
    add("image_cols", [&](Text& t) { t.u(s.cols); });
    add("image_rows", [&](Text& t) { t.u(s.rows); });
    add("model", [&](Text& t) { t.s(kArchitectures[s.arch].torch_class); });
    return fits;
}

}  // namespace sgdx::core
