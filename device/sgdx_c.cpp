// The C API over the runtime's scalar reference kernels. Built with
// -fno-exceptions -fno-rtti for the host and for Cortex-M4: no heap, no
// exceptions, no static constructors, no printf (messages are assembled by hand,
// since newlib's number formatting can allocate).
#include "sgdx.h"

#include <cmath>
#include <cstring>
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

#include "runtime/kernels/kernels.hpp"
#include "runtime/rng.hpp"

struct sgdx_model {
    uint32_t magic;
    uint32_t inputs, classes, max_batch;
    float* weight;     // (classes, inputs)
    float* bias;       // (classes)
    float* grad_w;     // (classes, inputs), zero between steps
    float* grad_b;     // (classes)
    float* x;          // (max_batch, inputs) scaled pixels
    float* logits;     // (max_batch, classes)
    float* dlogits;    // (max_batch, classes)
    int32_t* targets;  // (max_batch) the kernels' label type
    int8_t* qweight;   // (classes, inputs)
    float* qscale;     // (classes) weight scale per row (all equal per tensor)
    bool quantized;    // qweight matches weight
    mutable char message[200];
};

namespace {

constexpr uint32_t kMagic = 0x53474458;  // "SGDX"
constexpr float kPixelScale = 1.f / 255.f;
// int8 x uint8 products summed in int32: 127 * 255 * 65536 < 2^31.
constexpr uint32_t kMaxInputs = 65536;
constexpr uint32_t kMaxClasses = 256;  // labels are uint8
constexpr uint32_t kMaxBatch = 65536;
constexpr size_t kAlign = 8;

char g_message[200];  // errors without a usable model

// Appends text and numbers to a fixed buffer, truncating; no allocation.
class Text {
public:
    Text(char* buf, size_t cap) : buf_(buf), cap_(cap) { buf_[0] = '\0'; }
    Text& s(const char* t) {
        while (*t) put(*t++);
        return *this;
    }
    Text& u(uint64_t v) {
        char d[20];
        int n = 0;
        do d[n++] = char('0' + v % 10), v /= 10; while (v);
        while (n) put(d[--n]);
        return *this;
    }
    // A name taken from untrusted bytes: printable ASCII only, at most 40 chars.
    Text& name(const char* p, size_t n) {
        for (size_t i = 0; i < n && i < 40; ++i) put(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?');
        if (n > 40) s("...");
        return *this;
    }
    size_t size() const { return len_; }
    bool overflowed() const { return overflow_; }
    // Ends a failing call: the message stays in the buffer, the code is returned.
    sgdx_status status(sgdx_status st) const { return st; }

private:
    void put(char c) {
        if (len_ + 1 < cap_) {
            buf_[len_++] = c;
            buf_[len_] = '\0';
        } else {
            overflow_ = true;
        }
    }
    char* buf_;
    size_t cap_, len_ = 0;
    bool overflow_ = false;
};

Text error(const sgdx_model* m) {
    return m ? Text(m->message, sizeof m->message) : Text(g_message, sizeof g_message);
}

const sgdx::kernels::KernelSet& K() { return sgdx::kernels::reference(); }

size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Byte offsets of each buffer from the (aligned) start of the arena.
struct Layout {
    size_t weight, bias, grad_w, grad_b, x, logits, dlogits, targets, qweight, qscale, total;
};

Layout layout(uint64_t D, uint64_t C, uint64_t B) {
    Layout l{};
    size_t at = round_up(sizeof(sgdx_model));
    auto take = [&](size_t& field, uint64_t bytes) {
        field = at;
        at += round_up(size_t(bytes));
    };
    take(l.weight, 4 * C * D);
    take(l.bias, 4 * C);
    take(l.grad_w, 4 * C * D);
    take(l.grad_b, 4 * C);
    take(l.x, 4 * B * D);
    take(l.logits, 4 * B * C);
    take(l.dlogits, 4 * B * C);
    take(l.targets, 4 * B);
    take(l.qweight, C * D);
    take(l.qscale, 4 * C);
    l.total = at + kAlign - 1;  // slack to align any arena pointer
    return l;
}

sgdx_status check_dims(uint32_t D, uint32_t C, uint32_t B) {
    if (D == 0 || D > kMaxInputs)
        return error(nullptr).s("inputs = ").u(D).s(": must be in [1, ").u(kMaxInputs).s("]").status(SGDX_ERR_BAD_DIMENSION);
    if (C < 2 || C > kMaxClasses)
        return error(nullptr).s("classes = ").u(C).s(": must be in [2, ").u(kMaxClasses).s("] (labels are uint8)").status(SGDX_ERR_BAD_DIMENSION);
    if (B == 0 || B > kMaxBatch)
        return error(nullptr).s("max_batch = ").u(B).s(": must be in [1, ").u(kMaxBatch).s("]").status(SGDX_ERR_BAD_DIMENSION);
    // The largest layout must fit size_t (32-bit targets).
    uint64_t need = 64 * (uint64_t(C) * D + uint64_t(B) * D + uint64_t(B) * C) + 4096;
    if (need > uint64_t(SIZE_MAX))
        return error(nullptr).s("inputs, classes and max_batch need more memory than this target can address").status(SGDX_ERR_BAD_DIMENSION);
    return SGDX_OK;
}

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

sgdx_status not_quantized(const sgdx_model* m, const char* fn) {
    return error(m).s(fn).s(": no int8 weights: call sgdx_quantize after the last training step or load").status(SGDX_ERR_NOT_QUANTIZED);
}

sgdx_status check_labels(sgdx_model* m, const char* fn, const uint8_t* labels, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i)
        if (labels[i] >= m->classes)
            return error(m).s(fn).s(": label ").u(labels[i]).s(" at index ").u(i).s(" is not < classes (").u(m->classes).s(")").status(SGDX_ERR_BAD_LABEL);
    return SGDX_OK;
}

// images: (n, D) uint8 -> m->x, m->logits (n, C)
void forward(sgdx_model* m, const uint8_t* images, uint32_t n) {
    const size_t D = m->inputs, C = m->classes;
    K().scale_u8(images, kPixelScale, m->x, n * D);
    K().linear_forward(m->x, m->weight, m->bias, m->logits, n, D, C);
}

uint32_t argmax(const float* z, uint32_t C) {
    uint32_t arg = 0;  // first maximum, as the softmax_xent kernel counts hits
    for (uint32_t c = 1; c < C; ++c)
        if (z[c] > z[arg]) arg = c;
    return arg;
}

// Two rows against one image: a = Σ q0[k]·x[k], b = Σ q1[k]·x[k] in int32 (no
// overflow: n <= kMaxInputs). With the DSP extension (Cortex-M4) each 4-pixel
// word is loaded and widened once for both rows, and four products take two
// SMLADs (two 16x16 multiply-adds each).
void dot2_i8_u8(const int8_t* q0, const int8_t* q1, const uint8_t* x, uint32_t n, int32_t& a,
                int32_t& b) {
    a = b = 0;
#if defined(__ARM_FEATURE_DSP)
    for (; n >= 4; n -= 4, q0 += 4, q1 += 4, x += 4) {
        uint32_t p, w0, w1;
        std::memcpy(&p, x, 4);  // LDR: the M4 loads unaligned words
        std::memcpy(&w0, q0, 4);
        std::memcpy(&w1, q1, 4);
        // Bytes 0 and 2, then 1 and 3, widened to 16-bit lanes.
        const uint32_t p02 = __uxtb16(p), p13 = __uxtb16(p >> 8 | p << 24);
        a = __smlad(__sxtb16(w0), p02, a);
        a = __smlad(__sxtb16(w0 >> 8 | w0 << 24), p13, a);
        b = __smlad(__sxtb16(w1), p02, b);
        b = __smlad(__sxtb16(w1 >> 8 | w1 << 24), p13, b);
    }
#endif
    for (; n; --n, ++x) {
        a += int32_t(*q0++) * int32_t(*x);
        b += int32_t(*q1++) * int32_t(*x);
    }
}

// int8 weights x uint8 pixels -> class; logits (C) receive the rescaled scores.
uint32_t predict_int8(const sgdx_model* m, const uint8_t* image, float* logits) {
    const uint32_t D = m->inputs, C = m->classes;
    for (uint32_t c = 0; c < C; c += 2) {
        const uint32_t d = c + 1 < C ? c + 1 : c;  // an odd last row pairs with itself
        int32_t acc[2];
        dot2_i8_u8(m->qweight + size_t(c) * D, m->qweight + size_t(d) * D, image, D, acc[0], acc[1]);
        logits[c] = float(acc[0]) * (m->qscale[c] * kPixelScale) + m->bias[c];
        logits[d] = float(acc[1]) * (m->qscale[d] * kPixelScale) + m->bias[d];
    }
    return argmax(logits, C);
}

void put_u32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void put_floats(uint8_t* p, const float* v, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        uint32_t u;
        std::memcpy(&u, &v[i], 4);
        put_u32(p + 4 * i, u);
    }
}

// The header encode_safetensors writes for MnistLogistic, unpadded.
size_t write_header(const sgdx_model* m, char* buf, size_t cap) {
    const uint64_t C = m->classes, D = m->inputs;
    Text t(buf, cap);
    t.s("{\"__metadata__\":{\"format\":\"pt\"},\"lin.bias\":{\"dtype\":\"F32\",\"shape\":[").u(C)
        .s("],\"data_offsets\":[0,").u(4 * C).s("]},\"lin.weight\":{\"dtype\":\"F32\",\"shape\":[").u(C)
        .s(",").u(D).s("],\"data_offsets\":[").u(4 * C).s(",").u(4 * C + 4 * C * D).s("]}}");
    return t.overflowed() ? 0 : t.size();
}
constexpr size_t kHeaderCap = 256;

size_t padded(size_t header) { return round_up(8 + header) - 8; }

// A strict, bounded reader for just the safetensors header of this model:
// {"__metadata__": {string: string, ...}, "lin.weight": {...}, "lin.bias": {...}}
// in any order. Nothing is allocated; strings are spans into the buffer.
class HeaderReader {
public:
    struct Tensor {
        bool seen = false;
        bool f32 = false;
        uint64_t shape[8] = {};
        size_t rank = 0;
        uint64_t begin = 0, end = 0;
    };
    Tensor weight, bias;
    const char* bad_name = nullptr;  // an unexpected tensor name, if any
    size_t bad_name_len = 0;
    const char* problem = nullptr;   // what made the header corrupt

    HeaderReader(const char* p, size_t n) : p_(p), end_(p + n) {}

    bool parse() {
        if (!expect('{')) return false;
        if (peek() == '}') return ++p_, finish();
        for (;;) {
            const char* key;
            size_t len;
            if (!string(key, len) || !expect(':')) return false;
            if (is(key, len, "__metadata__")) {
                if (!metadata()) return false;
            } else if (is(key, len, "lin.weight") || is(key, len, "lin.bias")) {
                Tensor& t = is(key, len, "lin.weight") ? weight : bias;
                if (t.seen) return fail("a tensor appears twice");
                if (!tensor(t)) return false;
            } else {
                if (!bad_name) bad_name = key, bad_name_len = len;
                Tensor ignored;
                if (!tensor(ignored)) return false;
            }
            if (peek() == ',') { ++p_; continue; }
            if (!expect('}')) return false;
            return finish();
        }
    }

private:
    static bool is(const char* s, size_t n, const char* lit) {
        return std::strlen(lit) == n && std::memcmp(s, lit, n) == 0;
    }
    bool fail(const char* what) {
        if (!problem) problem = what;
        return false;
    }
    void skip_ws() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }
    char peek() {
        skip_ws();
        return p_ < end_ ? *p_ : '\0';
    }
    bool expect(char c) {
        if (peek() != c) return fail("unexpected character in the JSON header");
        ++p_;
        return true;
    }
    bool finish() {
        skip_ws();  // the format pads with spaces
        return p_ == end_ || fail("bytes after the JSON header");
    }
    // The raw (still escaped) contents of a JSON string.
    bool string(const char*& s, size_t& n) {
        if (!expect('"')) return false;
        s = p_;
        while (p_ < end_ && *p_ != '"') {
            if (static_cast<unsigned char>(*p_) < 0x20) return fail("control character in a string");
            if (*p_ == '\\') {
                if (++p_ >= end_) break;
                if (*p_ == 'u') {
                    if (end_ - p_ < 5) return fail("bad \\u escape");
                    p_ += 4;
                } else if (!std::strchr("\"\\/bfnrt", *p_)) {
                    return fail("bad escape in a string");
                }
            }
            ++p_;
        }
        if (p_ >= end_) return fail("unterminated string");
        n = size_t(p_ - s);
        ++p_;
        return true;
    }
    bool integer(uint64_t& v) {
        skip_ws();
        if (p_ >= end_ || *p_ < '0' || *p_ > '9') return fail("expected a non-negative integer");
        v = 0;
        while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
            if (v > (UINT64_MAX - 9) / 10) return fail("number too large");
            v = v * 10 + uint64_t(*p_++ - '0');
        }
        return true;
    }
    bool int_array(uint64_t* out, size_t cap, size_t& n) {
        n = 0;
        if (!expect('[')) return false;
        if (peek() == ']') return ++p_, true;
        for (;;) {
            if (n == cap) return fail("array too long");
            if (!integer(out[n++])) return false;
            if (peek() == ',') { ++p_; continue; }
            return expect(']');
        }
    }
    bool metadata() {
        if (!expect('{')) return false;
        if (peek() == '}') return ++p_, true;
        for (;;) {
            const char* s;
            size_t n;
            if (!string(s, n) || !expect(':') || !string(s, n)) return false;
            if (peek() == ',') { ++p_; continue; }
            return expect('}');
        }
    }
    bool tensor(Tensor& t) {
        bool dtype = false, shape = false, offsets = false;
        if (!expect('{')) return false;
        for (;;) {
            const char* key;
            size_t len;
            if (!string(key, len) || !expect(':')) return false;
            if (is(key, len, "dtype")) {
                const char* v;
                size_t n;
                if (!string(v, n)) return false;
                t.f32 = is(v, n, "F32");
                dtype = true;
            } else if (is(key, len, "shape")) {
                if (!int_array(t.shape, 8, t.rank)) return false;
                shape = true;
            } else if (is(key, len, "data_offsets")) {
                uint64_t off[2];
                size_t n;
                if (!int_array(off, 2, n)) return false;
                if (n != 2) return fail("data_offsets must hold 2 numbers");
                t.begin = off[0], t.end = off[1];
                offsets = true;
            } else {
                return fail("unknown field in a tensor entry");
            }
            if (peek() == ',') { ++p_; continue; }
            if (!expect('}')) return false;
            break;
        }
        if (!dtype || !shape || !offsets) return fail("a tensor lacks dtype, shape or data_offsets");
        t.seen = true;
        return true;
    }

    const char* p_;
    const char* end_;
};

sgdx_status check_tensor(sgdx_model* m, const char* name, const HeaderReader::Tensor& t,
                         uint64_t rows, uint64_t cols, size_t rank) {
    if (!t.seen) return error(m).s("sgdx_load: the weights have no tensor '").s(name).s("'").status(SGDX_ERR_SHAPE_MISMATCH);
    if (!t.f32) return error(m).s("sgdx_load: tensor '").s(name).s("' is not F32").status(SGDX_ERR_SHAPE_MISMATCH);
    const uint64_t want[2] = {rows, cols};
    bool same = t.rank == rank;
    for (size_t i = 0; same && i < rank; ++i) same = t.shape[i] == want[i];
    if (!same) {
        Text e = error(m);
        e.s("sgdx_load: tensor '").s(name).s("' has shape [");
        for (size_t i = 0; i < t.rank; ++i) (i ? e.s(", ") : e).u(t.shape[i]);
        e.s("], the model expects [").u(rows);
        if (rank == 2) e.s(", ").u(cols);
        return e.s("]").status(SGDX_ERR_SHAPE_MISMATCH);
    }
    return SGDX_OK;
}

}  // namespace

extern "C" {

sgdx_status sgdx_arena_size(uint32_t inputs, uint32_t classes, uint32_t max_batch, size_t* bytes) {
    if (!bytes) return null_arg(nullptr, "sgdx_arena_size", "bytes");
    if (sgdx_status st = check_dims(inputs, classes, max_batch)) return st;
    *bytes = layout(inputs, classes, max_batch).total;
    return SGDX_OK;
}

sgdx_status sgdx_create(void* arena, size_t arena_bytes, uint32_t inputs, uint32_t classes,
                        uint32_t max_batch, uint64_t seed, sgdx_model** model) {
    if (!model) return null_arg(nullptr, "sgdx_create", "model (the output pointer)");
    *model = nullptr;
    if (!arena) return null_arg(nullptr, "sgdx_create", "arena");
    if (sgdx_status st = check_dims(inputs, classes, max_batch)) return st;
    const Layout l = layout(inputs, classes, max_batch);
    if (arena_bytes < l.total)
        return error(nullptr).s("sgdx_create: arena of ").u(arena_bytes).s(" bytes is too small: inputs ").u(inputs)
            .s(", classes ").u(classes).s(", max_batch ").u(max_batch).s(" need ").u(l.total).status(SGDX_ERR_ARENA_TOO_SMALL);
    uint8_t* base = static_cast<uint8_t*>(arena);
    base += (kAlign - reinterpret_cast<uintptr_t>(base) % kAlign) % kAlign;
    std::memset(base, 0, l.total - (kAlign - 1));
    sgdx_model* m = reinterpret_cast<sgdx_model*>(base);
    m->inputs = inputs, m->classes = classes, m->max_batch = max_batch;
    m->weight = reinterpret_cast<float*>(base + l.weight);
    m->bias = reinterpret_cast<float*>(base + l.bias);
    m->grad_w = reinterpret_cast<float*>(base + l.grad_w);
    m->grad_b = reinterpret_cast<float*>(base + l.grad_b);
    m->x = reinterpret_cast<float*>(base + l.x);
    m->logits = reinterpret_cast<float*>(base + l.logits);
    m->dlogits = reinterpret_cast<float*>(base + l.dlogits);
    m->targets = reinterpret_cast<int32_t*>(base + l.targets);
    m->qweight = reinterpret_cast<int8_t*>(base + l.qweight);
    m->qscale = reinterpret_cast<float*>(base + l.qscale);
    // torch.nn.Linear.reset_parameters, drawn in sgdx::Linear's order.
    sgdx::Rng rng(seed);
    const float bound = 1.0f / std::sqrt(float(inputs));
    for (size_t i = 0; i < size_t(classes) * inputs; ++i) m->weight[i] = rng.uniform(-bound, bound);
    for (size_t i = 0; i < classes; ++i) m->bias[i] = rng.uniform(-bound, bound);
    m->magic = kMagic;
    *model = m;
    return SGDX_OK;
}

sgdx_status sgdx_predict(sgdx_model* m, const uint8_t* image, uint32_t* predicted, float* probs) {
    if (sgdx_status st = check_model(m, "sgdx_predict")) return st;
    if (!image) return null_arg(m, "sgdx_predict", "image");
    if (!predicted) return null_arg(m, "sgdx_predict", "predicted");
    forward(m, image, 1);
    const float* z = m->logits;
    *predicted = argmax(z, m->classes);
    if (probs) {
        float sum = 0.f;
        for (uint32_t c = 0; c < m->classes; ++c) sum += probs[c] = std::exp(z[c] - z[*predicted]);
        for (uint32_t c = 0; c < m->classes; ++c) probs[c] /= sum;
    }
    return SGDX_OK;
}

sgdx_status sgdx_train_step(sgdx_model* m, const uint8_t* images, const uint8_t* labels,
                            uint32_t batch, float lr, float* loss) {
    const char* fn = "sgdx_train_step";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!images) return null_arg(m, fn, "images");
    if (!labels) return null_arg(m, fn, "labels");
    if (batch == 0 || batch > m->max_batch)
        return error(m).s(fn).s(": batch of ").u(batch).s(" images: must be in [1, max_batch = ").u(m->max_batch).s("]").status(SGDX_ERR_BAD_BATCH_SIZE);
    if (!(std::isfinite(lr) && lr >= 0.f)) return error(m).s(fn).s(": lr must be a finite number >= 0").status(SGDX_ERR_BAD_OPTION);
    if (sgdx_status st = check_labels(m, fn, labels, batch)) return st;
    const size_t D = m->inputs, C = m->classes;
    for (uint32_t i = 0; i < batch; ++i) m->targets[i] = labels[i];
    forward(m, images, batch);
    // As the runtime's loss_batch: mean loss, gradient of the mean.
    const float mean = float(K().softmax_xent(m->logits, m->targets, m->dlogits, 1.f / float(batch), batch, C, nullptr) / double(batch));
    if (loss) *loss = mean;
    if (!std::isfinite(mean))
        return error(m).s(fn).s(": the loss is not finite (learning rate too high?); the step was not applied").status(SGDX_ERR_DIVERGED);
    K().linear_backward(m->x, m->dlogits, m->grad_w, m->grad_b, batch, D, C);
    K().sgd_update(m->weight, m->grad_w, nullptr, C * D, lr, 0.f, 0.f, 0.f, false, true);
    K().sgd_update(m->bias, m->grad_b, nullptr, C, lr, 0.f, 0.f, 0.f, false, true);
    std::memset(m->grad_w, 0, 4 * C * D);
    std::memset(m->grad_b, 0, 4 * C);
    m->quantized = false;
    return SGDX_OK;
}

sgdx_status sgdx_evaluate(sgdx_model* m, const uint8_t* images, const uint8_t* labels,
                          uint32_t count, uint32_t* correct, float* mean_loss) {
    const char* fn = "sgdx_evaluate";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!images) return null_arg(m, fn, "images");
    if (!labels) return null_arg(m, fn, "labels");
    if (count == 0) return error(m).s(fn).s(": count is 0").status(SGDX_ERR_BAD_BATCH_SIZE);
    if (sgdx_status st = check_labels(m, fn, labels, count)) return st;
    double total = 0;
    uint32_t hits = 0;
    for (uint32_t i = 0; i < count; i += m->max_batch) {
        const uint32_t n = count - i < m->max_batch ? count - i : m->max_batch;
        for (uint32_t j = 0; j < n; ++j) m->targets[j] = labels[i + j];
        forward(m, images + size_t(i) * m->inputs, n);
        size_t ok = 0;
        total += K().softmax_xent(m->logits, m->targets, nullptr, 0.f, n, m->classes, &ok);
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
    *weight = m->weight;
    *bias = m->bias;
    return SGDX_OK;
}

sgdx_status sgdx_weights_size(const sgdx_model* m, size_t* bytes) {
    if (sgdx_status st = check_model(m, "sgdx_weights_size")) return st;
    if (!bytes) return null_arg(m, "sgdx_weights_size", "bytes");
    char header[kHeaderCap];
    *bytes = 8 + padded(write_header(m, header, sizeof header)) + 4 * size_t(m->classes) * (m->inputs + 1);
    return SGDX_OK;
}

sgdx_status sgdx_save(const sgdx_model* m, uint8_t* buffer, size_t capacity, size_t* written) {
    const char* fn = "sgdx_save";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!buffer) return null_arg(m, fn, "buffer");
    if (!written) return null_arg(m, fn, "written");
    *written = 0;
    size_t need = 0;
    sgdx_weights_size(m, &need);
    if (capacity < need)
        return error(m).s(fn).s(": buffer of ").u(capacity).s(" bytes is too small for the ").u(need).s("-byte weights").status(SGDX_ERR_BUFFER_TOO_SMALL);
    char header[kHeaderCap];
    const size_t n = write_header(m, header, sizeof header), hlen = padded(n);
    for (int i = 0; i < 8; ++i) buffer[i] = uint8_t(uint64_t(hlen) >> (8 * i));
    std::memcpy(buffer + 8, header, n);
    std::memset(buffer + 8 + n, ' ', hlen - n);  // data starts 8-byte aligned
    uint8_t* data = buffer + 8 + hlen;
    put_floats(data, m->bias, m->classes);  // data_offsets put lin.bias first
    put_floats(data + 4 * m->classes, m->weight, size_t(m->classes) * m->inputs);
    *written = need;
    return SGDX_OK;
}

sgdx_status sgdx_load(sgdx_model* m, const uint8_t* buffer, size_t size) {
    const char* fn = "sgdx_load";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!buffer) return null_arg(m, fn, "buffer");
    if (size < 8)
        return error(m).s(fn).s(": not a safetensors file (only ").u(size).s(" bytes)").status(SGDX_ERR_CORRUPT_WEIGHTS);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | buffer[i];
    if (hlen > size - 8)
        return error(m).s(fn).s(": not a safetensors file (header length ").u(hlen).s(" is larger than the ").u(size).s("-byte buffer)").status(SGDX_ERR_CORRUPT_WEIGHTS);
    HeaderReader r(reinterpret_cast<const char*>(buffer + 8), size_t(hlen));
    if (!r.parse())
        return error(m).s(fn).s(": corrupt safetensors header: ").s(r.problem).status(SGDX_ERR_CORRUPT_WEIGHTS);
    if (r.bad_name)
        return error(m).s(fn).s(": unexpected tensor '").name(r.bad_name, r.bad_name_len).s("' for this model (want lin.weight and lin.bias)").status(SGDX_ERR_SHAPE_MISMATCH);
    const uint64_t C = m->classes, D = m->inputs;
    if (sgdx_status st = check_tensor(m, "lin.weight", r.weight, C, D, 2)) return st;
    if (sgdx_status st = check_tensor(m, "lin.bias", r.bias, C, 0, 1)) return st;
    // Offsets must tile the data section exactly, as the format requires.
    const uint64_t data_size = size - 8 - hlen;
    const HeaderReader::Tensor* first = r.weight.begin <= r.bias.begin ? &r.weight : &r.bias;
    const HeaderReader::Tensor* second = first == &r.weight ? &r.bias : &r.weight;
    const uint64_t first_bytes = 4 * (first == &r.weight ? C * D : C);
    const uint64_t second_bytes = 4 * (second == &r.weight ? C * D : C);
    if (first->begin != 0 || first->end != first_bytes || second->begin != first_bytes ||
        second->end != first_bytes + second_bytes)
        return error(m).s(fn).s(": corrupt safetensors header: data_offsets do not match the shapes or leave gaps").status(SGDX_ERR_CORRUPT_WEIGHTS);
    if (second->end != data_size)
        return error(m).s(fn).s(": the data section holds ").u(data_size).s(" bytes, the tensors need ").u(second->end)
            .s(data_size < second->end ? " (truncated)" : " (trailing bytes)").status(SGDX_ERR_CORRUPT_WEIGHTS);
    const uint8_t* data = buffer + 8 + hlen;
    for (size_t i = 0; i < C * D; ++i) {
        uint32_t u = get_u32(data + r.weight.begin + 4 * i);
        std::memcpy(&m->weight[i], &u, 4);
    }
    for (size_t i = 0; i < C; ++i) {
        uint32_t u = get_u32(data + r.bias.begin + 4 * i);
        std::memcpy(&m->bias[i], &u, 4);
    }
    m->quantized = false;
    return SGDX_OK;
}

sgdx_status sgdx_quantize(sgdx_model* m, sgdx_quant_mode mode) {
    if (sgdx_status st = check_model(m, "sgdx_quantize")) return st;
    if (mode != SGDX_QUANT_PER_TENSOR && mode != SGDX_QUANT_PER_ROW)
        return error(m).s("sgdx_quantize: mode ").u(uint32_t(mode)).s(" is neither SGDX_QUANT_PER_TENSOR nor SGDX_QUANT_PER_ROW").status(SGDX_ERR_BAD_OPTION);
    const size_t D = m->inputs, C = m->classes;
    float tensor_max = 0.f;
    for (size_t i = 0; i < C * D; ++i) tensor_max = std::fmax(tensor_max, std::fabs(m->weight[i]));
    for (size_t c = 0; c < C; ++c) {
        const float* w = m->weight + c * D;
        float row_max = 0.f;
        for (size_t k = 0; k < D; ++k) row_max = std::fmax(row_max, std::fabs(w[k]));
        const float max = mode == SGDX_QUANT_PER_ROW ? row_max : tensor_max;
        if (!std::isfinite(max))
            return error(m).s("sgdx_quantize: the weights are not finite").status(SGDX_ERR_DIVERGED);
        const float scale = max > 0.f ? max / 127.f : 1.f;
        m->qscale[c] = scale;
        for (size_t k = 0; k < D; ++k) {
            float q = w[k] / scale;
            q = q > 127.f ? 127.f : q < -127.f ? -127.f : q;
            m->qweight[c * D + k] = int8_t(q >= 0.f ? q + 0.5f : q - 0.5f);  // round half away
        }
    }
    m->quantized = true;
    return SGDX_OK;
}

sgdx_status sgdx_predict_int8(sgdx_model* m, const uint8_t* image, uint32_t* predicted) {
    const char* fn = "sgdx_predict_int8";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!image) return null_arg(m, fn, "image");
    if (!predicted) return null_arg(m, fn, "predicted");
    if (!m->quantized)
        return not_quantized(m, fn);
    *predicted = predict_int8(m, image, m->logits);
    return SGDX_OK;
}

sgdx_status sgdx_evaluate_int8(sgdx_model* m, const uint8_t* images, const uint8_t* labels,
                               uint32_t count, uint32_t* correct) {
    const char* fn = "sgdx_evaluate_int8";
    if (sgdx_status st = check_model(m, fn)) return st;
    if (!images) return null_arg(m, fn, "images");
    if (!labels) return null_arg(m, fn, "labels");
    if (!correct) return null_arg(m, fn, "correct");
    if (!m->quantized)
        return not_quantized(m, fn);
    if (count == 0) return error(m).s(fn).s(": count is 0").status(SGDX_ERR_BAD_BATCH_SIZE);
    if (sgdx_status st = check_labels(m, fn, labels, count)) return st;
    uint32_t hits = 0;
    for (uint32_t i = 0; i < count; ++i)
        hits += predict_int8(m, images + size_t(i) * m->inputs, m->logits) == labels[i];
    *correct = hits;
    return SGDX_OK;
}

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
        default: break;  // SGDX_STATUS_FORCE_INT and any other number
    }
    return "unknown status";
}

const char* sgdx_last_error(const sgdx_model* m) {
    if (m && m->magic == kMagic) return m->message;
    return g_message;
}

}  // extern "C"
