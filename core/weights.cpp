// A planned net's weights in a safetensors file (core/weights.hpp).
#include "core/weights.hpp"

#include <cmath>
#include <cstring>

#include "core/architecture.hpp"
#include "runtime/kernels/cortex_m4.hpp"

namespace sgdx::core {
namespace {

using sgdx::kernels::m4::max_abs, sgdx::kernels::m4::quantize_row;

void put_u32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// ---- BatchNorm, folded as the weights load -------------------------------------------
//
// A kNorm layer's tensors and the folding arithmetic are core/plan's; here they
// are found in the file and read a channel at a time.

// Where a kNorm layer's four F32 tensors start in the file (0 for absent ones).
struct NormPlace {
    uint64_t at[kPlanMaxLayers][4];
};

bool read_f32(ReadFn read, void* ctx, size_t at, float& v) {
    uint8_t b[4];
    if (read(ctx, at, b, 4)) return false;
    const uint32_t u = get_u32(b);
    std::memcpy(&v, &u, 4);
    return true;
}

// Channel c of kNorm layer i: y = x·scale + shift, with shift = beta - mean·scale
// written as the brief's (b - mean)·scale + beta by the caller; false if a read failed.
struct NormChannel {
    float scale, mean, beta;
};
bool norm_channel(const NetWeights& net, const NormPlace& np, uint32_t i, size_t c, ReadFn read, void* ctx,
                  NormChannel& out) {
    const Layer& l = net.layers[i];
    float v[4] = {1.f, 0.f, 0.f, 1.f};
    for (uint32_t t = 0; t < 4; ++t)
        if (norm_has(l, t) && !read_f32(read, ctx, size_t(np.at[i][t]) + 4 * c, v[t])) return false;
    out.scale = fold_scale(v[kGamma], v[kVar], norm_eps(l));
    out.mean = v[kMean], out.beta = v[kBeta];
    return true;
}

// Whether `name` is a tensor of one of the net's BatchNorm layers.
bool norm_tensor(const NetWeights& net, Span name) {
    char buf[32];
    for (uint32_t i = 0; i < net.count; ++i)
        if (net.layers[i].kind == kNorm)
            for (uint32_t t = 0; t < kNormTensors; ++t)
                if (norm_has(net.layers[i], t) && name.is(norm_name(net.layers[i], t, buf))) return true;
    return false;
}

// ---- Loading ------------------------------------------------------------------------
//
// Every message goes to e after its prefix (the call's name), replacing anything
// a check that passed may have left there.

// e back to its prefix, for a message.
Text& restart(Text& e, size_t prefix) {
    e.keep(prefix);
    return e;
}

// core/safetensors' expect_f32, its problem (if any) in e.
const TensorEntry* expect(Text& e, size_t prefix, Entries& entries, const char* name, const uint64_t* dims,
                          uint32_t rank, Expect form) {
    char why[200];
    Text t(why, sizeof why);
    const TensorEntry* found = expect_f32(entries, name, dims, rank, t, form);
    if (!found) restart(e, prefix).s(why);
    return found;
}

// The file places of the net's BatchNorm tensors (each F32 of shape [channels]).
bool match_norms(const NetWeights& net, Text& e, size_t prefix, const Header& r, NormPlace& np) {
    char buf[32];
    Entries entries = r.entries();
    for (uint32_t i = 0; i < net.count; ++i) {
        const Layer& l = net.layers[i];
        if (l.kind != kNorm) continue;
        for (uint32_t t = 0; t < 4; ++t) {
            np.at[i][t] = 0;
            if (!norm_has(l, t)) continue;
            const uint64_t channels = l.cout;
            const auto* found = expect(e, prefix, entries, norm_name(l, t, buf), &channels, 1, Expect::kVector);
            if (!found) return false;
            np.at[i][t] = found->begin;
        }
    }
    return true;
}

// Checks every tensor of the header against the net (core/safetensors has
// checked the data layout); on success place[i] is the data offset of tensors()[i].
bool match_header(const NetWeights& net, Text& e, size_t prefix, const Header& r, uint64_t* place) {
    Span arch = r.meta("architecture");
    const char* mine = net.arch_label;
    if (arch.p && !is_printout(arch) && (net.arch == kCustom || !arch.is(mine))) {  // printouts: the caller's
        restart(e, prefix).s("the file holds a '").name(arch.p, arch.n).s("' model, this model is '").s(mine)
            .s("' (sgdx_config_from_weights reads a file's architecture)");
        return false;
    }
    PlanTensor list[kPlanMaxTensors];
    const uint32_t n = tensors(net.layers, net.count, list);
    Entries entries = r.entries();
    for (const TensorEntry* t = entries.next(); t; t = entries.next()) {
        bool known = false;
        for (uint32_t j = 0; j < n && !known; ++j) known = t->name.is(list[j].name());
        known = known || norm_tensor(net, t->name);
        if (!known) {
            restart(e, prefix).s("unexpected tensor '").name(t->name.p, t->name.n).s("' for this ").s(mine).s(" model (want ");
            for (uint32_t j = 0; j < n; ++j) e.s(j ? ", " : "").s(list[j].name());
            e.s(")");
            return false;
        }
    }
    for (uint32_t j = 0; j < n; ++j) {
        uint32_t dims[4];
        uint64_t shape[4];
        const uint32_t rank = list[j].shape(dims);
        for (uint32_t d = 0; d < rank; ++d) shape[d] = dims[d];
        const auto* t = expect(e, prefix, entries, list[j].name(), shape, rank, Expect::kShape);
        if (!t) return false;
        place[j] = t->begin;
    }
    return true;
}

// Little-endian F32 bytes (already in place) -> floats, on any host.
void from_le(float* v, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        uint8_t b[4];
        std::memcpy(b, &v[i], 4);
        const uint32_t u = get_u32(b);
        std::memcpy(&v[i], &u, 4);
    }
}

// Row c of a weight tensor whose data starts at file offset `at` (rows of R floats)
// into row, as floats; false if the read callback failed.
bool read_row(ReadFn read, void* ctx, size_t at, size_t c, size_t R, float* row) {
    if (read(ctx, at + 4 * c * R, reinterpret_cast<uint8_t*>(row), 4 * R)) return false;
    from_le(row, R);
    return true;
}

}  // namespace

// ---- Saving ------------------------------------------------------------------------

void write_tensor_entries(HeaderWriter& w, const Layer* layers, uint32_t count) {
    PlanTensor list[kPlanMaxTensors];
    const uint32_t n = tensors(layers, count, list);
    for (uint32_t i = 0; i < n; ++i) {
        uint32_t dims[4];
        uint64_t shape[4];
        const uint32_t rank = list[i].shape(dims);
        for (uint32_t d = 0; d < rank; ++d) shape[d] = dims[d];
        w.tensor(span(list[i].name()), shape, rank, 4 * uint64_t(list[i].count()));
    }
}

size_t data_bytes(const Layer* layers, uint32_t count) {
    size_t n = 0;
    for (uint32_t i = 0; i < count; ++i)
        if (layers[i].learns()) n += 4 * (layers[i].cout * (layers[i].patch() + !layers[i].nobias));
    return n;
}

bool write_tensor_data(const Layer* layers, uint32_t count, WriteFn write, void* ctx) {
    PlanTensor list[kPlanMaxTensors];
    const uint32_t n = tensors(layers, count, list);
    uint8_t chunk[256];
    for (uint32_t t = 0; t < n; ++t) {
        const float* v = data(list[t]);
        for (size_t i = 0, total = list[t].count(); i < total;) {
            size_t k = 0;
            for (; k < sizeof chunk / 4 && i < total; ++k, ++i) {
                uint32_t u;
                std::memcpy(&u, &v[i], 4);
                put_u32(chunk + 4 * k, u);
            }
            if (write(ctx, chunk, 4 * k)) return false;
        }
    }
    return true;
}

// ---- Loading ------------------------------------------------------------------------

bool read_header(const char* p, size_t n, Header& h, Text& e) {
    HeaderReader r(p, n, e);
    h.bytes = p, h.length = n;
    for (;;) {
        switch (r.next()) {
            case HeaderReader::kEnd:
                return check_names(h.entries(), e);
            case HeaderReader::kError:
                return false;
            case HeaderReader::kMeta: {
                // Only the keys sgdx reads are kept, so any number of others is fine.
                if (detect_reads(r.meta().key) && h.meta_count < Header::kMaxMeta) h.metadata[h.meta_count++] = r.meta();
                break;
            }
            case HeaderReader::kTensor:
                if (h.count == Header::kMaxEntries)
                    return e.s("more than ").u(Header::kMaxEntries).s(" tensors: a larger network than the C API runs (")
                               .u(kPlanMaxLayers).s(" layers at most)"), false;
                ++h.count;
                break;
        }
    }
}

bool has_norm(const Layer* layers, uint32_t count) {
    for (uint32_t i = 0; i < count; ++i)
        if (layers[i].kind == kNorm) return true;
    return false;
}

LoadResult load_weights(const NetWeights& net, const char* header, size_t hlen, size_t size, ReadFn read, void* ctx,
                        Text& e) {
    const size_t prefix = e.size();
    Header r;
    if (!read_header(header, hlen, r, e)) return LoadResult::kCorrupt;
    const bool norms = has_norm(net.layers, net.count);  // BatchNorm's num_batches_tracked is I64
    switch (check_data(r.entries(), size - 8 - hlen, e, norms ? Dtypes::kF32OrI64 : Dtypes::kF32)) {
        case DataProblem::kNone: break;
        case DataProblem::kDtype: return LoadResult::kMismatch;
        case DataProblem::kLayout: return LoadResult::kCorrupt;
    }
    uint64_t place[kPlanMaxTensors];
    if (!match_header(net, e, prefix, r, place)) return LoadResult::kMismatch;
    NormPlace np;
    if (!match_norms(net, e, prefix, r, np)) return LoadResult::kMismatch;
    for (uint32_t i = 0; norms && i < net.count; ++i) {  // BatchNorms that cannot fold are refused before anything changes
        const Layer& l = net.layers[i];
        if (l.kind != kNorm) continue;
        for (uint32_t t = 0; t < 4; ++t) np.at[i][t] += 8 + hlen;
        for (size_t c = 0; c < l.cout; ++c) {
            NormChannel k;
            if (!norm_channel(net, np, i, c, read, ctx, k)) {
                restart(e, prefix).s("the read callback failed at BatchNorm '").s(l.wname).s("'; the model is unchanged");
                return LoadResult::kIo;
            }
            if (!std::isfinite(k.scale) || !std::isfinite(k.mean) || !std::isfinite(k.beta)) {
                restart(e, prefix).s("BatchNorm '").name(l.wname, std::strlen(l.wname) - 7)
                    .s("' holds values that are not finite (or a variance of -eps); the model is unchanged");
                return LoadResult::kCorrupt;
            }
        }
    }
    PlanTensor list[kPlanMaxTensors];
    const uint32_t n = tensors(net.layers, net.count, list);
    if (net.int8_only) {  // weights that cannot be quantised are refused before anything changes
        for (uint32_t j = 0; j < n; ++j) {
            if (list[j].is_bias) continue;
            const Layer& l = layer_of(list[j]);
            const size_t R = l.patch(), at = 8 + hlen + size_t(place[j]);
            for (size_t c = 0; c < l.cout; ++c) {
                if (!read_row(read, ctx, at, c, R, net.row)) {
                    restart(e, prefix).s("the read callback failed at tensor '").s(list[j].name())
                        .s("'; the model is unchanged");
                    return LoadResult::kIo;
                }
                if (!std::isfinite(max_abs(net.row, R))) {
                    restart(e, prefix).s("tensor '").s(list[j].name())
                        .s("' holds values that are not finite; the model is unchanged");
                    return LoadResult::kCorrupt;
                }
            }
        }
    }
    for (uint32_t j = 0; j < n; ++j) {
        const Layer& l = layer_of(list[j]);
        const size_t at = 8 + hlen + size_t(place[j]);
        bool failed = false;
        if (float* v = data(list[j])) {
            failed = read(ctx, at, reinterpret_cast<uint8_t*>(v), 4 * list[j].count()) != 0;
            if (!failed) from_le(v, list[j].count());
        } else {  // int8-only weights: one row at a time through net.row
            const size_t R = l.patch();
            for (size_t c = 0; c < l.cout && !failed; ++c) {
                failed = !read_row(read, ctx, at, c, R, net.row);
                if (failed) break;
                float max = max_abs(net.row, R);
                if (!std::isfinite(max)) {  // the first pass saw it finite: the source changed under us
                    restart(e, prefix).s("tensor '").s(list[j].name())
                        .s("' changed while it was read; the weights are partly loaded");
                    return LoadResult::kPartly;
                }
                const uint32_t i = uint32_t(&l - net.layers);
                if (i + 1 < net.count && net.layers[i + 1].kind == kNorm) {  // fold: the row times its scale
                    NormChannel k;
                    failed = !norm_channel(net, np, i + 1, c, read, ctx, k);
                    if (failed) break;
                    for (size_t d = 0; d < R; ++d) net.row[d] *= k.scale;
                    max = max_abs(net.row, R);
                }
                quantize_row(net.row, R, max, l.qweight + c * R, &l.qscale[c]);
            }
        }
        if (failed) {
            restart(e, prefix).s("the read callback failed at tensor '").s(list[j].name())
                .s("'; the weights are partly loaded");
            return LoadResult::kPartly;
        }
    }
    // BatchNorms fold into the layer before: biases (a bias=False layer's from
    // 0), and the float weights (an int8-only model's were scaled as quantised).
    for (uint32_t i = 1; norms && i < net.count; ++i) {
        const Layer& l = net.layers[i - 1];
        if (net.layers[i].kind != kNorm) continue;
        const size_t R = l.patch();
        for (size_t c = 0; c < l.cout; ++c) {
            NormChannel k;
            if (!norm_channel(net, np, i, c, read, ctx, k)) {
                restart(e, prefix).s("the read callback failed at BatchNorm '").s(net.layers[i].wname)
                    .s("'; the weights are partly loaded");
                return LoadResult::kPartly;
            }
            const float b = l.nobias ? 0.f : l.bias[c];
            l.bias[c] = fold_bias(b, k.mean, k.scale, k.beta);
            if (l.weight)
                for (size_t d = 0; d < R; ++d) l.weight[c * R + d] *= k.scale;
        }
    }
    return LoadResult::kLoaded;
}

namespace {

// Whether a printout (raw JSON) is the net's: parsed (in `room`) and planned
// for rows x cols images, every layer the same as the net's.
__attribute__((noinline)) bool same_network(const NetWeights& net, uint32_t rows, uint32_t cols, Span raw,
                                            PrintoutRoom& room) {
    char* text = room.text;
    LayerSpec* specs = room.specs;
    char why[8];
    Text t(why, sizeof why);
    uint32_t n = 0;
    if (raw.n >= kPrintoutMax || !parse_printout({text, decode_string(raw, text)}, specs, kPlanMaxLayers, n, t))
        return false;
    Planner p(rows, cols, takes_images(specs, n));
    for (uint32_t i = 0; i < n; ++i) {
        const uint32_t before = p.count();
        if (plan_unsupported(specs[i]) || !p.take(specs[i]) || p.count() > net.count) return false;
        if (p.count() == before) continue;
        const Layer& l = net.layers[p.count() - 1];
        const LayerShape& one = p.last();
        if (l.kind != one.kind || l.cin != one.cin || l.h != one.h || l.w != one.w || l.cout != one.cout ||
            l.oh != one.oh || l.ow != one.ow || l.kh != one.kh || l.kw != one.kw || l.stride != one.stride ||
            l.pad != one.pad || std::strcmp(l.wname, one.wname) != 0)
            return false;
    }
    return p.count() == net.count;
}

// The named model a printout (raw JSON) is, or kCustom (parsed in `room`).
__attribute__((noinline)) uint32_t printout_arch(Span raw, PrintoutRoom& room, uint64_t max_inputs) {
    char* text = room.text;
    LayerSpec* specs = room.specs;
    uint64_t hidden[kMaxHidden];
    char why[8];
    Text t(why, sizeof why);
    if (raw.n >= kPrintoutMax) return kCustom;
    MetaEntry arch{span("architecture"), {text, decode_string(raw, text)}};
    HeaderView view;
    view.meta = &arch, view.meta_count = 1;
    Spec spec;
    spec.hidden = hidden, spec.hidden_cap = kMaxHidden;
    spec.layers = specs, spec.layers_cap = kPlanMaxLayers;
    return detect(view, max_inputs, spec, t) == DetectProblem::kNone ? spec.arch : uint32_t(kCustom);
}

}  // namespace

bool network_matches(const NetWeights& net, uint32_t rows, uint32_t cols, const char* header, size_t hlen,
                     PrintoutRoom& room, uint64_t max_inputs, uint32_t& theirs) {
    char why[8];
    Text t(why, sizeof why);
    HeaderReader r(header, hlen, t);
    for (auto k = r.next(); k == HeaderReader::kMeta || k == HeaderReader::kTensor; k = r.next()) {
        if (k != HeaderReader::kMeta || !r.meta().key.is("architecture")) continue;
        const Span arch = r.meta().value;
        if (!is_printout(arch) || same_network(net, rows, cols, arch, room)) return true;
        theirs = printout_arch(arch, room, max_inputs);
        return net.arch != kCustom && theirs == net.arch;
    }
    return true;  // no architecture, or a broken header: load_weights says
}

}  // namespace sgdx::core
