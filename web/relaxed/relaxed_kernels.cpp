// The relaxed-SIMD kernel set: see relaxed_kernels.hpp. The relaxed module is
// position independent (wasm-ld -pie): it imports this module's memory, a
// __memory_base for its own statics (the kernels' scratch buffers), a
// __stack_pointer, and malloc/free (this module's, passed through its function
// table, so scratch grows in the same heap). One instance per thread: each gets
// its own statics and stack, which makes the templates' scratch per thread as
// this module's thread_local scratch is. Calls go through small JS functions
// (EM_JS), a few per layer and batch.
#include "relaxed_kernels.hpp"

#include <emscripten.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

extern "C" const unsigned char sgdx_relaxed_wasm[];
extern "C" const size_t sgdx_relaxed_wasm_size;

// Compiles the embedded module (once per JS context: the page's worker and each
// pthread worker) and returns the bytes its statics need, or -1 when the engine
// rejects it (no relaxed SIMD: WebAssembly.validate fails).
EM_JS(int, sgdx_relaxed_compile, (const unsigned char* bytes, int size), {
    if (!Module['sgdxRelaxedModule']) {
        var copy = new Uint8Array(wasmMemory.buffer, bytes, size).slice();
        if (typeof WebAssembly.validate != 'function' || !WebAssembly.validate(copy)) return -1;
        try {
            Module['sgdxRelaxedModule'] = new WebAssembly.Module(copy);
        } catch (e) {
            return -1;
        }
    }
    // dylink.0, subsection 1 (memory info): memory size, its alignment (log2),
    // table size, its alignment, as LEB128 numbers.
    var sections = WebAssembly.Module.customSections(Module['sgdxRelaxedModule'], 'dylink.0');
    if (sections.length != 1) return -1;
    var d = new Uint8Array(sections[0]), at = 0;
    function leb() {
        var v = 0, shift = 0, b;
        do { b = d[at++]; v |= (b & 127) << shift; shift += 7; } while (b & 128);
        return v >>> 0;
    }
    while (at < d.length) {
        var kind = d[at++], len = leb(), end = at + len;
        if (kind == 1) {
            var memSize = leb(), memAlign = leb(), tableSize = leb();
            Module['sgdxRelaxedTableSize'] = tableSize;
            return memSize + (1 << memAlign);
        }
        at = end;
    }
    return -1;
});

// Instantiates it on this thread with statics at data and a stack ending at
// stack_top; returns its sizeof(ConvShape), 0 on failure.
EM_JS(int, sgdx_relaxed_instantiate, (char* data, char* stack_top, int malloc_fn, int free_fn), {
    try {
        var env = {
            'memory': wasmMemory,
            '__indirect_function_table': new WebAssembly.Table({'initial': Module['sgdxRelaxedTableSize'], 'element': 'anyfunc'}),
            '__stack_pointer': new WebAssembly.Global({'value': 'i32', 'mutable': true}, stack_top),
            '__memory_base': new WebAssembly.Global({'value': 'i32', 'mutable': false}, data),
            '__table_base': new WebAssembly.Global({'value': 'i32', 'mutable': false}, 0),
            '__cxa_atexit': function() { return 0; },
            'malloc': wasmTable.get(malloc_fn),
            'free': wasmTable.get(free_fn),
            'abort': function() { abort('relaxed SIMD kernels: out of memory'); }
        };
        var ex = new WebAssembly.Instance(Module['sgdxRelaxedModule'], {'env': env}).exports;
        if (ex['__wasm_apply_data_relocs']) ex['__wasm_apply_data_relocs']();
        if (ex['__wasm_call_ctors']) ex['__wasm_call_ctors']();
        Module['sgdxRelaxed'] = ex;
        return ex['conv_shape_size']();
    } catch (e) {
        err('relaxed SIMD kernels: ' + e);
        return 0;
    }
});

EM_JS(void, sgdx_relaxed_gemm, (int ta, int tb, int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                                float* c, int ldc, int acc), {
    Module['sgdxRelaxed']['gemm'](ta, tb, M, N, K, a, lda, b, ldb, c, ldc, acc);
});
EM_JS(void, sgdx_relaxed_conv_input_grad_cl, (const float* dy, const float* wt, float* dx, const void* s), {
    Module['sgdxRelaxed']['conv_input_grad_cl'](dy, wt, dx, s);
});
EM_JS(void, sgdx_relaxed_conv_forward_cl, (const float* x, const float* w, const float* b, float* y, const void* s), {
    Module['sgdxRelaxed']['conv_forward_cl'](x, w, b, y, s);
});

EM_JS(void, sgdx_relaxed_reserve_scratch, (int gemm, const void* s), {
    Module['sgdxRelaxed']['reserve_scratch'](gemm, s);
});

namespace sgdx::kernels {

const KernelSet& wasm_simd128();

namespace {

#if defined(__EMSCRIPTEN_PTHREADS__)
#define SGDX_RELAXED_PER_THREAD thread_local
#else
#define SGDX_RELAXED_PER_THREAD static
#endif

// The relaxed module's stack: its kernels keep a few small arrays there.
constexpr size_t kStackBytes = 64 << 10;

void* relaxed_malloc(size_t n) { return std::malloc(n); }
void relaxed_free(void* p) { std::free(p); }

std::atomic<int> instances{0};

bool instantiate() {
    if (sgdx_relaxed_wasm_size == 0) return false;  // the build could not make it (build_module.cmake)
    const int need = sgdx_relaxed_compile(sgdx_relaxed_wasm, int(sgdx_relaxed_wasm_size));
    if (need < 0) return false;
    // Zeroed: the module's bss is not in its data segments.
    char* data = static_cast<char*>(std::calloc(size_t(need) + 16, 1));
    char* stack = static_cast<char*>(std::malloc(kStackBytes));
    if (!data || !stack) return false;
    data += (16 - reinterpret_cast<uintptr_t>(data) % 16) % 16;
    char* top = stack + kStackBytes - reinterpret_cast<uintptr_t>(stack + kStackBytes) % 16;
    const int shape = sgdx_relaxed_instantiate(data, top, int(reinterpret_cast<intptr_t>(&relaxed_malloc)),
                                               int(reinterpret_cast<intptr_t>(&relaxed_free)));
    if (shape != int(sizeof(ConvShape))) return false;  // 0 (failed) or another layout of kernels.hpp: not used
    ++instances;
    return true;
}

// Whether this thread has its instance (made on its first call).
bool here() {
    SGDX_RELAXED_PER_THREAD int state = 0;  // 0 not tried, 1 ready, -1 failed
    if (state == 0) state = instantiate() ? 1 : -1;
    return state > 0;
}

// Each kernel: the relaxed module's where this thread has it, else SIMD128's
// (a thread whose instantiation failed still computes the same thing).
void gemm(bool ta, bool tb, size_t M, size_t N, size_t K, const float* a, size_t lda, const float* b, size_t ldb,
          float* c, size_t ldc, bool acc) {
    if (here()) sgdx_relaxed_gemm(ta, tb, int(M), int(N), int(K), a, int(lda), b, int(ldb), c, int(ldc), acc);
    else wasm_simd128().gemm(ta, tb, M, N, K, a, lda, b, ldb, c, ldc, acc);
}
void conv_input_grad_cl(const float* dy, const float* wt, float* dx, const ConvShape& s) {
    if (here()) sgdx_relaxed_conv_input_grad_cl(dy, wt, dx, &s);
    else wasm_simd128().conv_input_grad_cl(dy, wt, dx, s);
}
void conv_forward_cl(const float* x, const float* w, const float* b, float* y, const ConvShape& s) {
    if (here()) sgdx_relaxed_conv_forward_cl(x, w, b, y, &s);
    else wasm_simd128().conv_forward_cl(x, w, b, y, s);
}

// The SIMD128 kernels' scratch (the set keeps their weight gradient and linear
// kernels), then the relaxed module's.
void reserve_scratch(const ScratchNeeds& needs) {
    wasm_simd128().reserve_scratch(needs);
    if (here()) sgdx_relaxed_reserve_scratch(needs.gemm, needs.conv);
}

KernelSet make_set() {
    KernelSet set = wasm_simd128();
    set.name = "wasm_relaxed_simd";
    set.gemm = gemm;
    set.conv_input_grad_cl = conv_input_grad_cl;
    set.conv_forward_cl = conv_forward_cl;
    set.reserve_scratch = reserve_scratch;
    return set;
}

}  // namespace

const KernelSet* wasm_relaxed_simd() {
    static const KernelSet set = make_set();
    static const bool usable = here();
    return usable ? &set : nullptr;
}

int wasm_relaxed_instances() { return instances.load(); }

}  // namespace sgdx::kernels
