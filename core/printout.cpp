#include "core/printout.hpp"

namespace sgdx::core {
namespace {

// ---- Decimal <-> double, exactly ----------------------------------------------------
// A double is M * 2^E; a decimal m * 10^e. Comparing the two exactly needs
// integers of a few hundred bits (magnitudes are kept within 1e-60 .. 1e61),
// so a small fixed-size big integer does it, without the heap.

constexpr int kMinDecimalExponent = -60, kMaxDecimalExponent = 60;
constexpr int kMaxDigits = 19;  // 10^19 - 1 fits a uint64_t

const double kPow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                           1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

uint64_t pow10u(int e) {  // e in [0, 19]
    uint64_t v = 1;
    while (e-- > 0) v *= 10;
    return v;
}

class Big {
public:
    explicit Big(uint64_t v) {
        w_[0] = uint32_t(v), w_[1] = uint32_t(v >> 32);
        n_ = (v >> 32) ? 2 : v ? 1 : 0;
    }
    void mul(uint32_t m) {
        uint64_t carry = 0;
        for (int i = 0; i < n_; ++i) {
            const uint64_t t = uint64_t(w_[i]) * m + carry;
            w_[i] = uint32_t(t), carry = t >> 32;
        }
        if (carry) push(uint32_t(carry));
    }
    void mul_pow10(int e) {
        for (; e >= 9; e -= 9) mul(1000000000u);
        mul(uint32_t(pow10u(e)));
    }
    // Divides by d; returns the remainder.
    uint32_t div(uint32_t d) {
        uint64_t r = 0;
        for (int i = n_ - 1; i >= 0; --i) {
            const uint64_t t = (r << 32) | w_[i];
            w_[i] = uint32_t(t / d), r = t % d;
        }
        trim();
        return uint32_t(r);
    }
    void shl(int bits) {
        if (n_ == 0) return;
        const int words = bits / 32, b = bits % 32;
        const uint32_t hi = b ? w_[n_ - 1] >> (32 - b) : 0;
        if (n_ + words + (hi ? 1 : 0) > kLimbs) return void(overflow_ = true);
        for (int i = n_ - 1; i >= 0; --i) w_[i + words] = (w_[i] << b) | (b && i > 0 ? w_[i - 1] >> (32 - b) : 0);
        for (int i = 0; i < words; ++i) w_[i] = 0;
        n_ += words;
        if (hi) w_[n_++] = hi;
    }
    // Shifts right; returns whether a 1 bit fell off.
    bool shr(int bits) {
        const int words = bits / 32, b = bits % 32;
        if (words >= n_) {
            const bool any = n_ > 0;
            n_ = 0;
            return any;
        }
        bool lost = false;
        for (int i = 0; i < words; ++i) lost |= w_[i] != 0;
        if (b) lost |= (w_[words] & ((1u << b) - 1)) != 0;
        for (int i = 0; i + words < n_; ++i)
            w_[i] = (w_[i + words] >> b) | (b && i + words + 1 < n_ ? w_[i + words + 1] << (32 - b) : 0);
        n_ -= words;
        trim();
        return lost;
    }
    int compare(const Big& o) const {
        if (n_ != o.n_) return n_ < o.n_ ? -1 : 1;
        for (int i = n_ - 1; i >= 0; --i)
            if (w_[i] != o.w_[i]) return w_[i] < o.w_[i] ? -1 : 1;
        return 0;
    }
    bool fits64() const { return n_ <= 2; }
    uint64_t u64() const { return n_ == 0 ? 0 : n_ == 1 ? w_[0] : uint64_t(w_[1]) << 32 | w_[0]; }
    bool overflow() const { return overflow_; }

private:
    static constexpr int kLimbs = 24;  // 768 bits; the range above needs about 330
    void push(uint32_t v) {
        if (n_ == kLimbs) overflow_ = true;
        else w_[n_++] = v;
    }
    void trim() {
        while (n_ > 0 && w_[n_ - 1] == 0) --n_;
    }
    uint32_t w_[kLimbs];
    int n_;
    bool overflow_ = false;
};

uint64_t bits_of(double x) {
    uint64_t b;
    std::memcpy(&b, &x, 8);
    return b;
}

double from_bits(uint64_t b) {
    double x;
    std::memcpy(&x, &b, 8);
    return x;
}

// m * 10^e against k * 2^f: -1, 0 or 1.
int compare(uint64_t m, int e, uint64_t k, int f) {
    Big a(m), b(k);
    if (e >= 0) a.mul_pow10(e);
    else b.mul_pow10(-e);
    if (f >= 0) b.shl(f);
    else a.shl(-f);
    return a.compare(b);
}

// The double nearest m * 10^e (ties to even), m > 0, within the range above.
double to_double(uint64_t m, int e) {
    // Clinger's fast path: both factors exact, one rounding.
    if (m <= (uint64_t(1) << 53) && e >= -22 && e <= 22) return e >= 0 ? double(m) * kPow10[e] : double(m) / kPow10[-e];
    // Otherwise a few roundings off, then corrected against the exact halfway points.
    double x = double(m);
    int k = e;
    for (; k > 22; k -= 22) x *= 1e22;
    for (; k < -22; k += 22) x /= 1e22;
    x = k >= 0 ? x * kPow10[k] : x / kPow10[-k];
    for (int step = 0; step < 64; ++step) {
        const uint64_t b = bits_of(x);
        const uint64_t mant = (b & ((uint64_t(1) << 52) - 1)) | (uint64_t(1) << 52);
        const int exp2 = int(b >> 52) - 1075;  // x = mant * 2^exp2 (always normal here)
        const int up = compare(m, e, 2 * mant + 1, exp2 - 1);
        if (up > 0 || (up == 0 && (mant & 1))) {
            x = from_bits(b + 1);
            continue;
        }
        // Below a power of two the next double down is half as far.
        const bool edge = mant == (uint64_t(1) << 52);
        const int down = compare(m, e, edge ? 4 * mant - 1 : 2 * mant - 1, edge ? exp2 - 2 : exp2 - 1);
        if (down < 0 || (down == 0 && (mant & 1))) {
            x = from_bits(b - 1);
            continue;
        }
        break;
    }
    return x;
}

// A number as Python writes one: an int ("-1", "28") or a float ("0.1", "1e-05").
struct Number {
    bool integer = true;
    int64_t i = 0;      // when integer
    double value = 0;   // always
};

// Reads a number at p (leaves p after it); on failure returns the problem.
const char* lex_number(const char*& p, const char* end, Number& out) {
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+')) neg = *p++ == '-';
    uint64_t m = 0;
    int sig = 0, zeros = 0, exp10 = 0;  // zeros: ones not yet added to m (maybe trailing)
    bool digits = false, dot = false, too_many = false;
    int64_t whole = 0;
    bool whole_big = false;
    for (; p < end; ++p) {
        const char c = *p;
        if (c == '.' && !dot) {
            dot = true;
            continue;
        }
        if (c < '0' || c > '9') break;
        digits = true;
        const int d = c - '0';
        if (!dot) {
            if (whole > 100000000000000000) whole_big = true;  // ints stay below 10^18
            else whole = whole * 10 + d;
        }
        if (dot) --exp10;
        if (d == 0) {
            if (sig > 0) ++zeros;
            continue;
        }
        for (; zeros > 0; --zeros) {
            if (sig == kMaxDigits) too_many = true;
            else m *= 10, ++sig;
        }
        if (sig == kMaxDigits) too_many = true;
        else m = m * 10 + uint64_t(d), ++sig;
    }
    if (!digits) return "expected a number";
    bool exponent = false;
    if (p < end && (*p == 'e' || *p == 'E')) {
        ++p;
        bool eneg = false;
        if (p < end && (*p == '-' || *p == '+')) eneg = *p++ == '-';
        if (p >= end || *p < '0' || *p > '9') return "expected the exponent's digits";
        int x = 0;
        for (; p < end && *p >= '0' && *p <= '9'; ++p) x = x < 100000 ? x * 10 + (*p - '0') : x;
        exp10 += eneg ? -x : x;
        exponent = true;
    }
    out.integer = !dot && !exponent;
    if (out.integer) {
        if (whole_big) return "number too large";
        out.i = neg ? -whole : whole;
        out.value = double(out.i);
        return nullptr;
    }
    if (too_many) return "more than 19 significant digits";
    exp10 += zeros;
    if (m == 0) {
        out.value = neg ? -0.0 : 0.0;
        return nullptr;
    }
    const int magnitude = exp10 + sig - 1;
    if (magnitude < kMinDecimalExponent || magnitude > kMaxDecimalExponent) return "number out of range";
    const double x = to_double(m, exp10);
    out.value = neg ? -x : x;
    return nullptr;
}

// The shortest decimal c * 10^e that reads back as x > 0; false if none does.
bool shortest(double x, uint64_t& c_out, int& e_out) {
    const uint64_t b = bits_of(x);
    const uint64_t mant = (b & ((uint64_t(1) << 52) - 1)) | (uint64_t(1) << 52);
    const int exp2 = int(b >> 52) - 1075;
    int e10 = 0;  // an estimate of floor(log10(x)), corrected below
    for (double t = x; t >= 10 && e10 < 400; t /= 10) ++e10;
    for (double t = x; t < 1 && e10 > -400; t *= 10) --e10;
    if (e10 < kMinDecimalExponent - 1 || e10 > kMaxDecimalExponent + 1) return false;
    // d: the first 18 digits of x exactly (x * 10^(17 - e10) truncated), and
    // whether anything nonzero follows them.
    uint64_t d = 0;
    bool sticky = false;
    for (int attempt = 0;; ++attempt) {
        if (attempt == 4) return false;
        const int s = 17 - e10;
        Big n(mant);
        sticky = false;
        if (s >= 0) {
            n.mul_pow10(s);
            if (exp2 >= 0) n.shl(exp2);
            else sticky = n.shr(-exp2);
        } else {
            n.shl(exp2);  // x >= 10^18 > 2^53: exp2 > 0
            for (int k = -s; k > 0; k -= 9) sticky |= n.div(uint32_t(pow10u(k < 9 ? k : 9))) != 0;
        }
        if (n.overflow() || !n.fits64()) return false;
        d = n.u64();
        if (d < pow10u(17)) --e10;
        else if (d >= pow10u(18)) ++e10;
        else break;
    }
    for (int k = 1; k <= 17; ++k) {
        const uint64_t unit = pow10u(18 - k), q = d / unit, r = d % unit, half = unit / 2;
        const bool up = r > half || (r == half && (sticky || (q & 1)));
        const int e = e10 + 1 - k;  // q * 10^e is x truncated to k digits
        // The nearest k-digit decimal first; just below a power of two the one
        // on the far side may be the only one that reads back.
        const uint64_t tries[3] = {q + up, up ? q : q + 1, up ? q + 2 : q - 1};
        for (uint64_t c : tries) {
            if (c == 0) continue;
            uint64_t cm = c;
            int ce = e;
            while (cm % 10 == 0) cm /= 10, ++ce;
            int digits = 0;
            for (uint64_t t = cm; t; t /= 10) ++digits;
            if (ce + digits - 1 < kMinDecimalExponent || ce + digits - 1 > kMaxDecimalExponent) continue;
            if (bits_of(to_double(cm, ce)) == b) {
                c_out = cm, e_out = ce;
                return true;
            }
        }
    }
    return false;
}

// ---- Layers --------------------------------------------------------------------------

struct KindInfo {
    const char* name;
    const char* params[9];  // the constructor's, in order (those a printout may hold)
    uint32_t required;      // how many of them have no default
};

const KindInfo kKinds[] = {
    {"Linear", {"in_features", "out_features", "bias"}, 2},
    {"Conv2d", {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
                "padding_mode"}, 3},
    {"ReLU", {"inplace"}, 0},
    {"MaxPool2d", {"kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"}, 1},
    {"AvgPool2d", {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"}, 1},
    {"AdaptiveAvgPool2d", {"output_size"}, 1},
    {"Flatten", {"start_dim", "end_dim"}, 0},
    {"Unflatten", {"dim", "unflattened_size"}, 2},
    {"BatchNorm1d", {"num_features", "eps", "momentum", "affine", "track_running_stats"}, 1},
    {"BatchNorm2d", {"num_features", "eps", "momentum", "affine", "track_running_stats"}, 1},
    {"Dropout", {"p", "inplace"}, 0},
};
static_assert(sizeof kKinds / sizeof kKinds[0] == size_t(LayerKind::kCount), "one entry per LayerKind");

constexpr uint32_t kMaxParams = 9, kMaxArgs = 12, kMaxItems = 4;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return is_alpha(c) || is_digit(c); }
bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// "a.b" is used by layers[0, n) if one is named so, lies inside a Sequential
// of that name ("a.b.0"), or is inside it ("a" when "a.b" is a layer).
bool used(const LayerSpec* layers, uint32_t n, const char* name, size_t len) {
    for (uint32_t i = 0; i < n; ++i) {
        const char* other = layers[i].name;
        size_t olen = 0;
        while (olen < kLayerNameCap && other[olen]) ++olen;
        const size_t common = olen < len ? olen : len;
        if (std::memcmp(other, name, common) != 0) continue;
        if (olen == len || (olen > len && other[len] == '.') || (len > olen && name[olen] == '.')) return true;
    }
    return false;
}

// A value in an argument list, as much of Python as printouts hold.
struct Value {
    enum Type : uint8_t { kMissing, kNone, kInt, kReal, kBool, kWord, kString, kSeq } type = kMissing;
    Span raw;          // its text, for messages
    int64_t i = 0;     // kInt; kBool: 0 or 1
    double real = 0;   // kInt, kReal
    Span word;         // kWord, kString: the contents
    int64_t items[kMaxItems] = {};
    uint32_t n = 0;    // kSeq: the items, whole numbers (None when has_none)
    bool has_none = false;
    Form form = Form::kInt;
};

struct Arg {
    Span key;  // absent: positional
    Value v;
};

class Parser {
public:
    Parser(Span text, LayerSpec* layers, uint32_t cap, Text& why)
        : begin_(text.p ? text.p : ""), p_(begin_), end_(begin_ + (text.p ? text.n : 0)), counted_(begin_),
          layers_(layers), cap_(cap), why_(why) {}

    bool run(uint32_t& count) {
        skip_ws();
        const char* start = p_;
        Span w;
        // no space before '(', as is_printout() demands
        if (!word(w) || !w.is("Sequential") || p_ == end_ || *p_ != '(')
            return problem(start).s("expected 'Sequential(' (PyTorch's printout of an nn.Sequential)"), false;
        ++p_;
        char name[kLayerNameCap] = {};
        if (!block(start, name, 0, 0)) return false;
        skip_ws();
        if (p_ < end_) return problem(p_).s("text after the Sequential's closing ')'"), false;
        count = count_;
        return true;
    }

private:
    void skip_ws() {
        while (p_ < end_ && is_space(*p_)) ++p_;
    }
    bool at(char c) {
        skip_ws();
        return p_ < end_ && *p_ == c;
    }
    // An identifier, dots allowed after the first character (torch.Size).
    bool word(Span& w) {
        skip_ws();
        w = {p_, 0};
        if (p_ >= end_ || !is_alpha(*p_)) return false;
        while (p_ < end_ && (is_name_char(*p_) || *p_ == '.')) ++p_;
        w.n = size_t(p_ - w.p);
        return true;
    }

    uint32_t line_of(const char* at) {
        if (at < counted_) counted_ = begin_, line_ = 1;
        for (; counted_ < at; ++counted_) line_ += *counted_ == '\n';
        return line_;
    }

    // Starts the message: "line N: <text from `at`, to the line's end or
    // `stop`, at most 64 characters>: ".
    Text& problem(const char* at, const char* stop = nullptr) {
        why_.s("line ").u(line_of(at)).s(": ");
        const char* end = at;
        while (end < end_ && *end != '\n' && *end != '\r' && (!stop || end < stop)) ++end;
        while (end > at && is_space(end[-1])) --end;
        const size_t n = size_t(end - at), shown = n > 64 ? 60 : n;
        for (size_t i = 0; i < shown; ++i) why_.c(at[i] >= 0x20 && at[i] < 0x7f ? at[i] : '?');
        if (shown < n) why_.s("...");
        if (n == 0) why_.s("(end of text)");
        return why_.s(": ");
    }
    // About the layer being read.
    Text& layer_problem() { return problem(call_, call_end_); }

    bool block(const char* open, char* prefix, size_t prefix_len, uint32_t depth);
    bool layer(const char* item, Span kind, const char* name, size_t len);
    bool args(const KindInfo& info, const Value** bound);
    bool value(Value& v);
    bool sequence(Value& v, char close);
    bool fill(LayerSpec& l, const Value* const* v);

    // Field readers: a missing value leaves the default in place.
    bool size(const Value* v, const char* key, uint64_t lo, uint64_t hi, uint64_t& out);
    bool flag(const Value* v, const char* key, bool& out);
    bool pair(const Value* v, const char* key, uint32_t lo, uint32_t hi, uint32_t* out, Form& form);
    bool real(const Value* v, const char* key, double lo, double hi, const char* range, Real& out, bool* none);
    bool whole(const Value* v, const char* key, int64_t& out);
    // "line N: Conv2d(...): groups=2" and the caller's rest.
    Text& bad(const Value* v, const char* key) { return layer_problem().s(key).s("=").name(v->raw); }

    const char* begin_;
    const char* p_;
    const char* end_;
    const char* counted_;
    uint32_t line_ = 1;
    LayerSpec* layers_;
    uint32_t cap_, count_ = 0;
    Text& why_;
    const char* call_ = nullptr;      // where the layer being read begins ("Conv2d(...")
    const char* call_end_ = nullptr;  // and ends, once known
};

bool Parser::block(const char* open, char* prefix, size_t prefix_len, uint32_t depth) {
    if (at(')')) return problem(open).s("an empty Sequential (it has no layers)"), false;
    for (;;) {
        skip_ws();
        if (p_ >= end_) return problem(open).s("the text ends before this Sequential's closing ')'"), false;
        if (*p_ == ')') return ++p_, true;
        const char* item = p_;
        if (*p_ != '(') return problem(p_).s("expected '(name): Layer(...)' or the Sequential's ')'"), false;
        ++p_;
        skip_ws();
        const char* nm = p_;
        while (p_ < end_ && is_name_char(*p_)) ++p_;
        const size_t nlen = size_t(p_ - nm);
        if (nlen == 0 || !at(')'))
            return problem(item).s("expected '(name): Layer(...)', a name being letters, digits and _"), false;
        ++p_;
        if (!at(':')) return problem(item).s("expected ':' after the layer's name"), false;
        ++p_;
        skip_ws();
        const char* kind_at = p_;
        Span kind;
        if (!word(kind)) return problem(kind_at).s("expected a layer, such as Linear(...)"), false;
        const size_t len = prefix_len + (prefix_len ? 1 : 0) + nlen;
        if (len >= kLayerNameCap)
            return problem(item).s("layer name '").name(prefix, prefix_len).s(prefix_len ? "." : "").name(nm, nlen)
                       .s("' is longer than ").u(kLayerNameCap - 1).s(" characters"), false;
        char name[kLayerNameCap];
        std::memcpy(name, prefix, prefix_len);
        if (prefix_len) name[prefix_len] = '.';
        std::memcpy(name + len - nlen, nm, nlen);
        name[len] = '\0';
        if (used(layers_, count_, name, len)) return problem(item).s("a second layer named '").s(name).s("'"), false;
        if (!kind.is("Sequential")) {
            if (!layer(kind_at, kind, name, len)) return false;
            continue;
        }
        if (!at('(')) return problem(item).s("expected '(' after Sequential"), false;
        ++p_;
        if (depth + 1 >= kMaxNesting)
            return problem(item).s("Sequentials nested more than ").u(kMaxNesting).s(" deep"), false;
        if (!block(item, name, len, depth + 1)) return false;
    }
}

bool Parser::layer(const char* at_kind, Span kind, const char* name, size_t len) {
    call_ = at_kind, call_end_ = nullptr;
    uint32_t k = 0;
    while (k < uint32_t(LayerKind::kCount) && !kind.is(kKinds[k].name)) ++k;
    if (k == uint32_t(LayerKind::kCount)) {
        problem(at_kind).s("unknown layer '").name(kind).s("' (supported: ");
        for (uint32_t i = 0; i < uint32_t(LayerKind::kCount); ++i) why_.s(kKinds[i].name).s(", ");
        return why_.s("Sequential)"), false;
    }
    if (!at('(')) return layer_problem().s("expected '(' after ").s(kKinds[k].name), false;
    ++p_;
    const Value* bound[kMaxParams] = {};
    Arg list[kMaxArgs];
    uint32_t n = 0;
    // The arguments, as Python would read them.
    for (;;) {
        skip_ws();
        if (p_ >= end_) return layer_problem().s("the text ends inside this layer"), false;
        if (*p_ == ')') break;
        if (n == kMaxArgs) return layer_problem().s("more than ").u(kMaxArgs).s(" arguments"), false;
        Arg& a = list[n++];
        const char* save = p_;
        Span key;
        if (word(key) && at('=')) a.key = key, ++p_;
        else p_ = save;
        if (!value(a.v)) return false;
        const char* after = p_;
        skip_ws();
        if (p_ < end_ && *p_ == ',') {
            ++p_;
            continue;
        }
        if (p_ < end_ && *p_ == ')') break;
        bool newline = p_ >= end_;
        for (const char* c = after; c < p_; ++c) newline |= *c == '\n';
        if (newline) return layer_problem().s("missing ')'"), false;
        return problem(p_).s("expected ',' or ')' after an argument of ").s(kKinds[k].name), false;
    }
    call_end_ = ++p_;
    // Bound to the constructor's parameters.
    const KindInfo& info = kKinds[k];
    uint32_t params = 0;
    while (params < kMaxParams && info.params[params]) ++params;
    bool keywords = false;
    for (uint32_t a = 0; a < n; ++a) {
        uint32_t slot = a;
        if (list[a].key.p) {
            keywords = true;
            slot = 0;
            while (slot < params && !list[a].key.is(info.params[slot])) ++slot;
            if (slot == params) {
                layer_problem().s("unexpected argument '").name(list[a].key).s("' (").s(info.name).s(" takes ");
                for (uint32_t i = 0; i < params; ++i) why_.s(i ? ", " : "").s(info.params[i]);
                return why_.s(")"), false;
            }
        } else if (keywords) {
            return layer_problem().s("an argument without a name after one with a name"), false;
        } else if (slot >= params) {
            return layer_problem().s(info.name).s(" takes at most ").u(params).s(" arguments"), false;
        }
        if (bound[slot]) return layer_problem().s("argument '").s(info.params[slot]).s("' given twice"), false;
        bound[slot] = &list[a].v;
    }
    for (uint32_t i = 0; i < info.required; ++i)
        if (!bound[i]) return layer_problem().s("missing argument '").s(info.params[i]).s("'"), false;
    if (count_ == cap_) return layer_problem().s("more than ").u(cap_).s(" layers"), false;
    LayerSpec& l = layers_[count_];
    l = LayerSpec{};
    l.kind = LayerKind(k);
    std::memcpy(l.name, name, len + 1);
    l.line = line_of(call_);
    if (!fill(l, bound)) return false;
    ++count_;
    return true;
}

bool Parser::value(Value& v) {
    skip_ws();
    v = Value{};
    const char* start = p_;
    const char c = p_ < end_ ? *p_ : '\0';
    if (c == '(' || c == '[') {
        if (!sequence(v, c == '(' ? ')' : ']')) return false;
    } else if (is_digit(c) || c == '-' || c == '+' || c == '.') {
        Number num;
        if (const char* problem = lex_number(p_, end_, num))
            return layer_problem().s("'").name(start, size_t(p_ - start)).s("': ").s(problem), false;
        v.type = num.integer ? Value::kInt : Value::kReal;
        v.i = num.i, v.real = num.value;
    } else if (c == '\'' || c == '"') {
        ++p_;
        while (p_ < end_ && *p_ != c && *p_ != '\n') ++p_;
        if (p_ >= end_ || *p_ != c) return layer_problem().s("a string without its closing quote"), false;
        v.type = Value::kString, v.word = {start + 1, size_t(p_ - start - 1)};
        ++p_;
    } else if (is_alpha(c)) {
        word(v.word);
        v.type = Value::kWord;
        if (v.word.is("True") || v.word.is("False")) v.type = Value::kBool, v.i = v.word.is("True");
        else if (v.word.is("None")) v.type = Value::kNone;
        else if (v.word.is("torch.Size") && at('(')) {
            ++p_;
            if (!at('[')) return layer_problem().s("expected torch.Size([...])"), false;
            if (!sequence(v, ']')) return false;
            if (!at(')')) return layer_problem().s("expected torch.Size([...])"), false;
            ++p_;
            v.form = Form::kSize;
        }
    } else {
        return problem(p_ < end_ ? p_ : call_).s(p_ < end_ ? "expected a value" : "the text ends inside this layer"),
               false;
    }
    v.raw = {start, size_t(p_ - start)};
    return true;
}

// (1, 28, 28), (10,), [2, 2]: whole numbers or None; p_ is at the opening bracket.
bool Parser::sequence(Value& v, char close) {
    v.type = Value::kSeq;
    v.form = close == ')' ? Form::kTuple : Form::kList;
    ++p_;
    for (;;) {
        if (at(close)) return ++p_, true;
        if (p_ >= end_) return layer_problem().s("the text ends inside this layer"), false;
        Value x;
        if (*p_ == '(' || *p_ == '[') return layer_problem().s("a tuple inside a tuple"), false;
        if (!value(x)) return false;
        if (x.type != Value::kInt && x.type != Value::kNone)
            return layer_problem().s("expected whole numbers in a tuple, not '").name(x.raw).s("'"), false;
        if (v.n == kMaxItems) return layer_problem().s("more than ").u(kMaxItems).s(" numbers in a tuple"), false;
        v.has_none |= x.type == Value::kNone;
        v.items[v.n++] = x.i;
        if (at(',')) ++p_;
        else if (!at(close)) return layer_problem().s("expected ',' or '").c(close).s("' in a tuple"), false;
    }
}

bool Parser::whole(const Value* v, const char* key, int64_t& out) {
    if (!v) return true;
    if (v->type != Value::kInt) return bad(v, key).s(" must be a whole number"), false;
    out = v->i;
    return true;
}

bool Parser::size(const Value* v, const char* key, uint64_t lo, uint64_t hi, uint64_t& out) {
    int64_t x = int64_t(out);
    if (!whole(v, key, x)) return false;
    if (x < int64_t(lo) || uint64_t(x) > hi) return bad(v, key).s(" is out of range (").u(lo).s(" to ").u(hi).s(")"), false;
    out = uint64_t(x);
    return true;
}

bool Parser::flag(const Value* v, const char* key, bool& out) {
    if (!v) return true;
    if (v->type != Value::kBool) return bad(v, key).s(" must be True or False"), false;
    out = v->i != 0;
    return true;
}

bool Parser::pair(const Value* v, const char* key, uint32_t lo, uint32_t hi, uint32_t* out, Form& form) {
    if (!v) return true;
    int64_t x[2];
    if (v->type == Value::kInt) {
        x[0] = x[1] = v->i, form = Form::kInt;
    } else if (v->type == Value::kSeq && v->n == 2 && !v->has_none) {
        x[0] = v->items[0], x[1] = v->items[1], form = v->form;
    } else if (v->type == Value::kWord || v->type == Value::kString) {
        return bad(v, key).s(" is not supported (give numbers)"), false;
    } else {
        return bad(v, key).s(" must be one whole number or two"), false;
    }
    for (int i = 0; i < 2; ++i) {
        if (x[i] < int64_t(lo) || x[i] > int64_t(hi))
            return bad(v, key).s(" is out of range (").u(lo).s(" to ").u(hi).s(")"), false;
        out[i] = uint32_t(x[i]);
    }
    return true;
}

bool Parser::real(const Value* v, const char* key, double lo, double hi, const char* range, Real& out, bool* none) {
    if (!v) return true;
    if (v->type == Value::kNone && none) return *none = true, true;
    if (v->type != Value::kInt && v->type != Value::kReal) return bad(v, key).s(" must be a number"), false;
    if (!(v->real >= lo && v->real <= hi)) return bad(v, key).s(" must be ").s(range), false;
    out = Real{v->real, v->type == Value::kInt};
    return true;
}

bool Parser::fill(LayerSpec& l, const Value* const* v) {
    switch (l.kind) {
        case LayerKind::kLinear:
            l.bias = true;
            return size(v[0], "in_features", 1, kMaxFeatures, l.in) && size(v[1], "out_features", 1, kMaxFeatures, l.out) &&
                   flag(v[2], "bias", l.bias);
        case LayerKind::kConv2d: {
            l.stride[0] = l.stride[1] = 1, l.bias = true;
            uint32_t dilation[2] = {1, 1};
            int64_t groups = 1;
            Form ignored;
            if (!size(v[0], "in_channels", 1, kMaxFeatures, l.in) || !size(v[1], "out_channels", 1, kMaxFeatures, l.out) ||
                !pair(v[2], "kernel_size", 1, kMaxWindow, l.kernel, ignored) ||
                !pair(v[3], "stride", 1, kMaxWindow, l.stride, ignored) ||
                !pair(v[4], "padding", 0, kMaxWindow, l.padding, ignored) ||
                !pair(v[5], "dilation", 1, kMaxWindow, dilation, ignored) || !whole(v[6], "groups", groups) ||
                !flag(v[7], "bias", l.bias))
                return false;
            if (dilation[0] != 1 || dilation[1] != 1) return bad(v[5], "dilation").s(": dilation other than 1 is not supported"), false;
            if (groups != 1) return bad(v[6], "groups").s(": groups other than 1 are not supported"), false;
            if (v[8] && !((v[8]->type == Value::kWord || v[8]->type == Value::kString) && v[8]->word.is("zeros")))
                return bad(v[8], "padding_mode").s(" is not supported (only zeros)"), false;
            return true;
        }
        case LayerKind::kReLU:
            return flag(v[0], "inplace", l.inplace);
        case LayerKind::kMaxPool2d:
        case LayerKind::kAvgPool2d: {
            const bool max = l.kind == LayerKind::kMaxPool2d;
            if (!pair(v[0], "kernel_size", 1, kMaxWindow, l.kernel, l.kernel_form)) return false;
            // stride=None (the default) is the kernel size, spelled as it is
            l.stride[0] = l.kernel[0], l.stride[1] = l.kernel[1], l.stride_form = l.kernel_form;
            if (v[1] && v[1]->type != Value::kNone && !pair(v[1], "stride", 1, kMaxWindow, l.stride, l.stride_form))
                return false;
            if (!pair(v[2], "padding", 0, kMaxWindow, l.padding, l.padding_form)) return false;
            if (2 * l.padding[0] > l.kernel[0] || 2 * l.padding[1] > l.kernel[1])
                return bad(v[2], "padding").s(" is more than half the kernel size (torch refuses it too)"), false;
            bool ceil = false;
            if (max) {
                uint32_t dilation[2] = {1, 1};
                bool indices = false;
                if (!pair(v[3], "dilation", 1, kMaxWindow, dilation, l.dilation_form) ||
                    !flag(v[4], "return_indices", indices) || !flag(v[5], "ceil_mode", ceil))
                    return false;
                if (dilation[0] != 1 || dilation[1] != 1)
                    return bad(v[3], "dilation").s(": dilation other than 1 is not supported"), false;
                if (indices) return bad(v[4], "return_indices").s(" is not supported"), false;
                if (ceil) return bad(v[5], "ceil_mode").s(" is not supported"), false;
                return true;
            }
            bool include_pad = true;
            if (!flag(v[3], "ceil_mode", ceil) || !flag(v[4], "count_include_pad", include_pad)) return false;
            if (ceil) return bad(v[3], "ceil_mode").s(" is not supported"), false;
            if (!include_pad) return bad(v[4], "count_include_pad").s(" is not supported"), false;
            if (v[5] && v[5]->type != Value::kNone) return bad(v[5], "divisor_override").s(" is not supported"), false;
            return true;
        }
        case LayerKind::kAdaptiveAvgPool2d: {
            const Value* o = v[0];
            const bool one = (o->type == Value::kInt && o->i == 1) ||
                             (o->type == Value::kSeq && o->n == 2 && !o->has_none && o->items[0] == 1 && o->items[1] == 1);
            if (!one) return bad(o, "output_size").s(": only output_size=1 is supported"), false;
            l.output_form = o->type == Value::kInt ? Form::kInt : o->form;
            return true;
        }
        case LayerKind::kFlatten: {
            int64_t start = 1, end = -1;
            if (!whole(v[0], "start_dim", start) || !whole(v[1], "end_dim", end)) return false;
            if (start != 1 || end != -1)
                return layer_problem().s("only Flatten(start_dim=1, end_dim=-1) is supported"), false;
            return true;
        }
        case LayerKind::kUnflatten: {
            if (v[0]->type != Value::kInt || v[0]->i != 1) return bad(v[0], "dim").s(": only dim=1 is supported"), false;
            const Value* s = v[1];
            if (s->type != Value::kSeq || s->n < 1 || s->n > 3)
                return bad(s, "unflattened_size").s(" must be a tuple of 1 to 3 sizes"), false;
            for (uint32_t i = 0; i < s->n; ++i)
                if (s->has_none || s->items[i] < 1 || uint64_t(s->items[i]) > kMaxFeatures)
                    return bad(s, "unflattened_size").s(" is out of range (sizes 1 to ").u(kMaxFeatures).s(")"), false;
                else l.unflatten[i] = uint64_t(s->items[i]);
            l.unflatten_rank = s->n, l.unflatten_form = s->form;
            return true;
        }
        case LayerKind::kBatchNorm1d:
        case LayerKind::kBatchNorm2d:
            l.eps = Real{1e-5, false}, l.momentum = Real{0.1, false}, l.affine = l.track_running_stats = true;
            return size(v[0], "num_features", 1, kMaxFeatures, l.in) && real(v[1], "eps", 0, 1e61, "0 or more", l.eps, nullptr) &&
                   real(v[2], "momentum", 0, 1, "between 0 and 1, or None", l.momentum, &l.cumulative) && flag(v[3], "affine", l.affine) &&
                   flag(v[4], "track_running_stats", l.track_running_stats);
        case LayerKind::kDropout:
            l.p = Real{0.5, false};
            return real(v[0], "p", 0, 1, "between 0 and 1", l.p, nullptr) && flag(v[1], "inplace", l.inplace);
        case LayerKind::kCount:
            break;
    }
    return false;
}

// ---- Writing -------------------------------------------------------------------------

Text& bool_text(Text& t, bool b) { return t.s(b ? "True" : "False"); }

Text& signed_text(Text& t, int64_t v) { return v < 0 ? t.c('-').u(uint64_t(-v)) : t.u(uint64_t(v)); }

// A sequence of sizes in a form: "(1, 28, 28)", "(10,)", "[2, 2]", "torch.Size([2, 2])".
template <typename T>
bool sizes_text(Text& t, const T* v, uint32_t n, Form form) {
    if (form == Form::kInt) {
        for (uint32_t i = 1; i < n; ++i)
            if (v[i] != v[0]) return false;
        return t.u(v[0]), true;
    }
    t.s(form == Form::kTuple ? "(" : form == Form::kList ? "[" : "torch.Size([");
    for (uint32_t i = 0; i < n; ++i) (i ? t.s(", ") : t).u(v[i]);
    if (form == Form::kTuple && n == 1) t.c(',');
    t.s(form == Form::kTuple ? ")" : form == Form::kList ? "]" : "])");
    return form <= Form::kSize;
}

bool real_text(Text& t, Real r) {
    if (!r.integer) return write_real(r.value, t);
    const double limit = 9.2e18;  // within int64_t
    if (!(r.value >= -limit && r.value <= limit) || double(int64_t(r.value)) != r.value) return false;
    return signed_text(t, int64_t(r.value)), true;
}

bool layer_text(Text& t, const LayerSpec& l) {
    static const uint32_t kOne[2] = {1, 1};
    if (l.kind >= LayerKind::kCount) return false;
    t.s(layer_kind_name(l.kind)).c('(');
    switch (l.kind) {
        case LayerKind::kLinear:
            bool_text(t.s("in_features=").u(l.in).s(", out_features=").u(l.out).s(", bias="), l.bias);
            break;
        case LayerKind::kConv2d:
            t.u(l.in).s(", ").u(l.out).s(", kernel_size=");
            sizes_text(t, l.kernel, 2, Form::kTuple);
            sizes_text(t.s(", stride="), l.stride, 2, Form::kTuple);
            if (l.padding[0] || l.padding[1]) sizes_text(t.s(", padding="), l.padding, 2, Form::kTuple);
            if (!l.bias) t.s(", bias=False");
            break;
        case LayerKind::kReLU:
            if (l.inplace) t.s("inplace=True");
            break;
        case LayerKind::kMaxPool2d:
        case LayerKind::kAvgPool2d:
            if (!sizes_text(t.s("kernel_size="), l.kernel, 2, l.kernel_form) ||
                !sizes_text(t.s(", stride="), l.stride, 2, l.stride_form) ||
                !sizes_text(t.s(", padding="), l.padding, 2, l.padding_form))
                return false;
            if (l.kind == LayerKind::kMaxPool2d) {
                if (!sizes_text(t.s(", dilation="), kOne, 2, l.dilation_form)) return false;
                t.s(", ceil_mode=False");
            }
            break;
        case LayerKind::kAdaptiveAvgPool2d:
            if (!sizes_text(t.s("output_size="), kOne, 2, l.output_form)) return false;
            break;
        case LayerKind::kFlatten:
            t.s("start_dim=1, end_dim=-1");
            break;
        case LayerKind::kUnflatten:
            if (l.unflatten_rank < 1 || l.unflatten_rank > 3 ||
                !sizes_text(t.s("dim=1, unflattened_size="), l.unflatten, l.unflatten_rank, l.unflatten_form))
                return false;
            break;
        case LayerKind::kBatchNorm1d:
        case LayerKind::kBatchNorm2d:
            t.u(l.in);
            if (!real_text(t.s(", eps="), l.eps)) return false;
            t.s(", momentum=");
            if (l.cumulative) t.s("None");
            else if (!real_text(t, l.momentum)) return false;
            bool_text(bool_text(t.s(", affine="), l.affine).s(", track_running_stats="), l.track_running_stats);
            break;
        case LayerKind::kDropout:
            if (!real_text(t.s("p="), l.p)) return false;
            bool_text(t.s(", inplace="), l.inplace);
            break;
        case LayerKind::kCount:
            return false;
    }
    t.c(')');
    return true;
}

// The components of a layer's dotted name; false unless each is letters, digits and _.
bool split_name(const LayerSpec& l, Span* parts, uint32_t& n, size_t& len) {
    n = 0, len = 0;
    while (len < kLayerNameCap && l.name[len]) ++len;
    if (len == kLayerNameCap) return false;
    for (size_t at = 0; at <= len;) {
        size_t end = at;
        while (end < len && l.name[end] != '.') ++end;
        if (end == at || n == kMaxNesting) return false;
        for (size_t i = at; i < end; ++i)
            if (!is_name_char(l.name[i])) return false;
        parts[n++] = {l.name + at, end - at};
        at = end + 1;
    }
    return true;
}

Text& indent(Text& t, uint32_t level) {
    t.c('\n');
    for (uint32_t i = 0; i < 2 * level; ++i) t.c(' ');
    return t;
}

}  // namespace

const char* layer_kind_name(LayerKind kind) {
    return kind < LayerKind::kCount ? kKinds[uint32_t(kind)].name : "?";
}

bool is_printout(Span text) {
    size_t i = 0;
    while (text.p && i < text.n && is_space(text.p[i])) ++i;
    static const char kStart[] = "Sequential(";
    return text.p && text.n - i >= sizeof kStart - 1 && std::memcmp(text.p + i, kStart, sizeof kStart - 1) == 0;
}

bool parse_printout(Span text, LayerSpec* layers, uint32_t cap, uint32_t& count, Text& why) {
    count = 0;
    return Parser(text, layers, cap, why).run(count);
}

bool takes_images(const LayerSpec* layers, uint32_t count) {
    if (!count) return false;
    const LayerKind k = layers[0].kind;
    return k == LayerKind::kConv2d || k == LayerKind::kMaxPool2d || k == LayerKind::kAvgPool2d ||
           k == LayerKind::kAdaptiveAvgPool2d || k == LayerKind::kBatchNorm2d;
}

uint32_t unflattened_linear(const LayerSpec* layers, uint32_t count) {
    bool image = takes_images(layers, count);
    for (uint32_t i = 0; i < count; ++i) switch (layers[i].kind) {
            case LayerKind::kLinear:
                if (image) return i;
                break;
            case LayerKind::kFlatten:
                image = false;
                break;
            case LayerKind::kUnflatten:
            case LayerKind::kConv2d:
            case LayerKind::kMaxPool2d:
            case LayerKind::kAvgPool2d:
            case LayerKind::kAdaptiveAvgPool2d:
            case LayerKind::kBatchNorm2d:
                image = true;
                break;
            default:  // ReLU, Dropout, BatchNorm1d keep their input's shape
                break;
        }
    return count;
}

bool write_printout(const LayerSpec* layers, uint32_t count, Text& out) {
    if (count == 0) return false;
    out.s("Sequential(");
    Span open[kMaxNesting];  // the nested Sequentials the previous layer is in
    uint32_t depth = 0;
    for (uint32_t i = 0; i < count; ++i) {
        Span parts[kMaxNesting];
        uint32_t n = 0;
        size_t len = 0;
        if (!split_name(layers[i], parts, n, len)) return false;
        uint32_t same = 0;
        while (same < depth && same + 1 < n && parts[same].same(open[same])) ++same;
        for (; depth > same; --depth) indent(out, depth).c(')');
        for (; depth + 1 < n; ++depth) {
            const size_t group = size_t(parts[depth].p + parts[depth].n - layers[i].name);
            if (used(layers, i, layers[i].name, group)) return false;
            indent(out, depth + 1).c('(').name(parts[depth]).s("): Sequential(");
            open[depth] = parts[depth];
        }
        if (used(layers, i, layers[i].name, len)) return false;
        if (!layer_text(indent(out, depth + 1).c('(').name(parts[n - 1]).s("): "), layers[i])) return false;
    }
    for (; depth > 0; --depth) indent(out, depth).c(')');
    out.s("\n)");
    return !out.overflowed();
}

bool read_real(Span text, double& value) {
    if (!text.p) return false;
    const char* p = text.p;
    Number num;
    if (lex_number(p, text.p + text.n, num) || p != text.p + text.n) return false;
    value = num.value;
    return true;
}

bool write_real(double value, Text& out) {
    const uint64_t b = bits_of(value);
    if (((b >> 52) & 0x7ff) == 0x7ff) return false;  // inf, nan
    if (b >> 63) out.c('-');
    const double x = value < 0 ? -value : value;
    if (x == 0) return out.s("0.0"), true;
    uint64_t c = 0;
    int e = 0;
    if (!shortest(x, c, e)) return false;
    char digits[20];
    int n = 0;
    for (uint64_t t = c; t; t /= 10) digits[n++] = char('0' + t % 10);
    for (int i = 0; i < n / 2; ++i) {
        const char t = digits[i];
        digits[i] = digits[n - 1 - i], digits[n - 1 - i] = t;
    }
    const int point = e + n;  // x = 0.digits * 10^point
    // Python's repr: positional for 1e-4 <= x < 1e16, else with an exponent.
    if (point > -4 && point <= 16) {
        if (point <= 0) {
            out.s("0.");
            for (int i = point; i < 0; ++i) out.c('0');
            for (int i = 0; i < n; ++i) out.c(digits[i]);
        } else if (point >= n) {
            for (int i = 0; i < n; ++i) out.c(digits[i]);
            for (int i = n; i < point; ++i) out.c('0');
            out.s(".0");
        } else {
            for (int i = 0; i < n; ++i) (i == point ? out.c('.') : out).c(digits[i]);
        }
    } else {
        out.c(digits[0]);
        if (n > 1) out.c('.');
        for (int i = 1; i < n; ++i) out.c(digits[i]);
        const int exp10 = point - 1;
        out.s(exp10 < 0 ? "e-" : "e+");
        const uint32_t a = uint32_t(exp10 < 0 ? -exp10 : exp10);
        if (a < 10) out.c('0');
        out.u(a);
    }
    return !out.overflowed();
}

}  // namespace sgdx::core
