/* MNIST on a Cortex-M4F: stream the IDX files from the host over semihosting a
 * batch at a time, train the logistic-regression model with the C API inside a
 * fixed 256 KB arena, then report float and int8 accuracy on held-out images.
 *
 * Command line (QEMU's -append): DATA_DIR N_TRAIN N_VALID N_TEST MIN_ACCURACY [OUT]
 *   training rows [0, N_TRAIN) of train-*, validation rows [50000, 50000 + N_VALID)
 *   of train-* (the tutorial's split), test rows [0, N_TEST) of t10k-*; OUT, if
 *   given, receives the trained weights (safetensors) on the host.
 * Exit 0 only if the test (or validation) accuracy reaches MIN_ACCURACY, int8 is
 * within 0.5 points of float, and no heap memory was taken after set-up. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "board.h"
#include "sgdx.h"

enum { BATCH = 32, PIXELS = 784, CLASSES = 10, VALID_FIRST = 50000 };
#define ARENA_BYTES (256u * 1024u)
#define LR 0.5f

/* Everything the training needs: the model's arena and the batch being read. */
static unsigned char g_arena[ARENA_BYTES] __attribute__((aligned(8)));

/* Heap calls, counted through -Wl,--wrap: malloc & co. for our code, the _r
 * versions for newlib's own (stdio). */
static int g_heap_calls;
struct _reent;
void* __real_malloc(size_t n);
void* __real_calloc(size_t n, size_t size);
void* __real_realloc(void* p, size_t n);
void* __real__malloc_r(struct _reent* r, size_t n);
void* __real__calloc_r(struct _reent* r, size_t n, size_t size);
void* __real__realloc_r(struct _reent* r, void* p, size_t n);
void* __wrap_malloc(size_t n) { ++g_heap_calls; return __real_malloc(n); }
void* __wrap_calloc(size_t n, size_t size) { ++g_heap_calls; return __real_calloc(n, size); }
void* __wrap_realloc(void* p, size_t n) { ++g_heap_calls; return __real_realloc(p, n); }
void* __wrap__malloc_r(struct _reent* r, size_t n) { ++g_heap_calls; return __real__malloc_r(r, n); }
void* __wrap__calloc_r(struct _reent* r, size_t n, size_t size) { ++g_heap_calls; return __real__calloc_r(r, n, size); }
void* __wrap__realloc_r(struct _reent* r, void* p, size_t n) { ++g_heap_calls; return __real__realloc_r(r, p, n); }
extern void* _sbrk(ptrdiff_t incr);
extern char __end__[]; /* start of the heap (linker script) */

typedef struct {
    int images, labels; /* file descriptors (semihosting) */
    uint32_t count;
    const char* name;
} idx_set;

static uint32_t be32(const unsigned char* p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int fail(const char* what, const char* detail) {
    printf("firmware: error: %s%s\n", what, detail ? detail : "");
    return 2;
}

/* Opens DIR/NAME, checks the IDX header (magic, and 28x28 for images). */
static int open_idx(const char* dir, const char* name, uint32_t magic, uint32_t* count, int* fd) {
    static char path[512];
    unsigned char h[16];
    const size_t header = magic == 0x803 ? 16 : 8;
    if (strlen(dir) + strlen(name) + 2 > sizeof path) return fail("data path too long: ", dir);
    strcpy(path, dir);
    strcat(path, "/");
    strcat(path, name);
    *fd = open(path, O_RDONLY);
    if (*fd < 0) return fail("cannot open ", path);
    if (read(*fd, h, header) != (int)header) return fail("short IDX header in ", path);
    if (be32(h) != magic) return fail("not an IDX file of the expected kind: ", path);
    if (magic == 0x803 && (be32(h + 8) != 28 || be32(h + 12) != 28)) return fail("images are not 28x28: ", path);
    *count = be32(h + 4);
    return 0;
}

static int open_set(const char* dir, const char* prefix, idx_set* s) {
    char name[64];
    uint32_t labels = 0;
    int st;
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    if ((st = open_idx(dir, name, 0x803, &s->count, &s->images))) return st;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    if ((st = open_idx(dir, name, 0x801, &labels, &s->labels))) return st;
    if (labels != s->count) return fail("image and label counts differ in ", prefix);
    s->name = prefix;
    return 0;
}

/* Rows [first, first + n) of a set into the caller's buffers: two seeks, two reads. */
static int read_rows(const idx_set* s, uint32_t first, uint32_t n, uint8_t* images, uint8_t* labels) {
    if (first + n > s->count) return fail("not enough rows in ", s->name);
    if (lseek(s->images, (off_t)(16 + first * PIXELS), SEEK_SET) < 0 ||
        read(s->images, images, n * PIXELS) != (int)(n * PIXELS))
        return fail("short read of images in ", s->name);
    if (lseek(s->labels, (off_t)(8 + first), SEEK_SET) < 0 || read(s->labels, labels, n) != (int)n)
        return fail("short read of labels in ", s->name);
    return 0;
}

static int check(sgdx_status st, sgdx_model* m, const char* call) {
    if (st == SGDX_OK) return 0;
    printf("firmware: %s failed: %s: %s\n", call, sgdx_status_name(st), sgdx_last_error(m));
    return 3;
}

/* A whole number, all digits, below 10^9. */
static int parse_count(const char* s, uint32_t* out) {
    uint32_t v = 0;
    if (!*s) return 0;
    for (; *s; ++s) {
        if (*s < '0' || *s > '9' || v >= 100000000u) return 0;
        v = v * 10 + (uint32_t)(*s - '0');
    }
    *out = v;
    return 1;
}

/* "0.85" -> 8500 basis points, in [0, 1]; without pulling in strtod. */
static int parse_fraction(const char* s, uint32_t* bp) {
    uint32_t whole = 0, frac = 0, scale = 1000;
    if (*s < '0' || *s > '9') return 0;
    while (*s >= '0' && *s <= '9') whole = whole * 10 + (uint32_t)(*s++ - '0');
    if (*s == '.')
        for (++s; *s >= '0' && *s <= '9'; ++s, scale /= 10) frac += (uint32_t)(*s - '0') * scale;
    *bp = whole * 10000 + frac;
    return *s == '\0' && whole <= 1 && *bp <= 10000;
}

/* 9123 basis points -> "91.23" */
static const char* percent(uint32_t correct, uint32_t n, char* buf) {
    uint32_t bp = n ? (uint32_t)((uint64_t)correct * 10000 / n) : 0;
    snprintf(buf, 16, "%lu.%02lu", (unsigned long)(bp / 100), (unsigned long)(bp % 100));
    return buf;
}

static uint64_t g_ticks_per_minstr; /* SysTick ticks per million instructions */

/* A loop of exactly 2 instructions per turn tells how SysTick ticks relate to
 * instructions (with QEMU's -icount shift=0 the relation is exact). */
static void calibrate(void) {
    uint32_t n = 2000000;
    uint64_t t0 = board_ticks();
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
    g_ticks_per_minstr = (board_ticks() - t0) * 1000000u / 4000000u;
}

/* Instructions per image for `ticks` spent on n images (64-bit: 50,000 images
 * take ~6e9 instructions). */
static unsigned long per_image(uint64_t ticks, uint32_t n) {
    return g_ticks_per_minstr && n ? (unsigned long)(ticks * 1000000u / g_ticks_per_minstr / n) : 0;
}

typedef struct {
    uint32_t n, float_ok, int8_ok;
    uint64_t float_ticks, int8_ticks;
} eval_result;

static int evaluate(sgdx_model* m, const idx_set* s, uint32_t first, uint32_t n, uint8_t* images,
                    uint8_t* labels, eval_result* r) {
    memset(r, 0, sizeof *r);
    for (uint32_t i = 0; i < n; i += BATCH) {
        uint32_t k = n - i < BATCH ? n - i : BATCH, ok = 0;
        int st;
        if ((st = read_rows(s, first + i, k, images, labels))) return st;
        uint64_t t0 = board_ticks();
        if ((st = check(sgdx_evaluate(m, images, labels, k, &ok, NULL), m, "sgdx_evaluate"))) return st;
        uint64_t t1 = board_ticks();
        r->float_ok += ok;
        if ((st = check(sgdx_evaluate_int8(m, images, labels, k, &ok), m, "sgdx_evaluate_int8"))) return st;
        r->int8_ticks += board_ticks() - t1;
        r->float_ticks += t1 - t0;
        r->int8_ok += ok;
    }
    r->n = n;
    return 0;
}

static int report(const char* what, const eval_result* r, uint32_t min_bp, int judge) {
    char a[16], b[16];
    if (!r->n) return 0;
    printf("%s: %lu images: float accuracy %s%%, int8 accuracy %s%% (per-row scales)\n", what,
           (unsigned long)r->n, percent(r->float_ok, r->n, a), percent(r->int8_ok, r->n, b));
    printf("%s: inference %lu instructions/image float, %lu int8\n", what,
           per_image(r->float_ticks, r->n), per_image(r->int8_ticks, r->n));
    int bad = 0;
    /* |int8 - float| <= 0.5 points, in whole images: 200 * |diff| <= n */
    uint32_t diff = r->int8_ok > r->float_ok ? r->int8_ok - r->float_ok : r->float_ok - r->int8_ok;
    if (200u * diff > r->n) printf("FAIL: %s: int8 is more than 0.5 points from float\n", what), bad = 1;
    if (judge && (uint64_t)r->float_ok * 10000 < (uint64_t)min_bp * r->n)
        printf("FAIL: %s: float accuracy below the required %lu.%02lu%%\n", what,
               (unsigned long)(min_bp / 100), (unsigned long)(min_bp % 100)), bad = 1;
    return bad;
}

/* QEMU gives "KERNEL ARGS..." as one line; split it in place. */
static int arguments(char** argv, int max) {
    static char line[512];
    struct { char* buf; int len; } block = {line, (int)sizeof line - 1};
    int argc = 0;
    if (semihost(0x15 /* SYS_GET_CMDLINE */, &block) != 0) return 0;
    line[sizeof line - 1] = '\0';
    for (char* p = strtok(line, " "); p && argc < max; p = strtok(NULL, " ")) argv[argc++] = p;
    return argc;
}

int main(void) {
    char* argv[8];
    int argc = arguments(argv, 8), st;
    if (argc == 2 && strcmp(argv[1], "--fault") == 0)  /* ctest: a fault must end QEMU, not hang it */
        return (int)*(volatile uint32_t*)0xFFFFFFF0u;
    if (argc != 6 && argc != 7) {
        printf("usage: -append \"DATA_DIR N_TRAIN N_VALID N_TEST MIN_ACCURACY [OUT]\" (got %d words)\n", argc - 1);
        return 2;
    }
    const char* out = argc == 7 ? argv[6] : NULL;
    const char* dir = argv[1];
    uint32_t n_train, n_valid, n_test, min_bp;
    if (!parse_count(argv[2], &n_train) || !parse_count(argv[3], &n_valid) || !parse_count(argv[4], &n_test))
        return fail("N_TRAIN, N_VALID and N_TEST must be whole numbers", NULL);
    if (!parse_fraction(argv[5], &min_bp)) return fail("MIN_ACCURACY must be a fraction in [0, 1], e.g. 0.85; got ", argv[5]);
    if (n_train == 0 || n_valid + n_test == 0) return fail("N_TRAIN and N_VALID + N_TEST must be at least 1", NULL);
    printf("sgdx firmware: Cortex-M4F, %u KB arena, batch %d, lr 0.5\n", ARENA_BYTES / 1024, BATCH);
    calibrate();

    idx_set train, test;
    if ((st = open_set(dir, "train", &train)) || (st = open_set(dir, "t10k", &test))) return st;
    if (n_train > VALID_FIRST || n_valid > train.count - VALID_FIRST || n_test > test.count)
        return fail("N_TRAIN must be <= 50000, N_VALID <= the rows after 50000, N_TEST <= the test rows", NULL);

    /* The arena: the model first, then one batch of uint8 images and labels. */
    size_t need = 0;
    sgdx_model* model = NULL;
    if ((st = check(sgdx_arena_size(PIXELS, CLASSES, BATCH, &need), NULL, "sgdx_arena_size"))) return st;
    if (need + BATCH * (PIXELS + 1) > ARENA_BYTES) return fail("the model and a batch do not fit the arena", NULL);
    uint8_t* images = g_arena + need;
    uint8_t* labels = images + BATCH * PIXELS;
    if ((st = check(sgdx_create(g_arena, need, PIXELS, CLASSES, BATCH, 0, &model), NULL, "sgdx_create"))) return st;
    printf("arena: %lu bytes model + %d bytes batch of %u\n", (unsigned long)need, BATCH * (PIXELS + 1), ARENA_BYTES);

    const int heap_calls = g_heap_calls;
    char* const heap_top = _sbrk(0);
    uint64_t train_ticks = 0;
    const uint32_t cs0 = (uint32_t)semihost(0x10 /* SYS_CLOCK, centiseconds */, NULL);
    double loss_sum = 0;
    uint32_t steps = 0;
    for (uint32_t i = 0; i < n_train; i += BATCH) {
        const uint32_t k = n_train - i < BATCH ? n_train - i : BATCH;  /* the last may be short */
        float loss = 0.f;
        if ((st = read_rows(&train, i, k, images, labels))) return st;
        uint64_t t0 = board_ticks();
        if ((st = check(sgdx_train_step(model, images, labels, k, LR, &loss), model, "sgdx_train_step"))) return st;
        train_ticks += board_ticks() - t0;
        loss_sum += loss, ++steps;
        if ((i / BATCH + 1) % 313 == 0)  /* about every 10,000 images */
            printf("  %lu images, mean loss so far %d.%03d\n", (unsigned long)(i + k),
                   (int)(loss_sum / steps), (int)(loss_sum / steps * 1000) % 1000);
    }
    const uint32_t cs1 = (uint32_t)semihost(0x10, NULL);
    const uint32_t trained = n_train;
    printf("trained on %lu images: %lu instructions/image, %lu images/s emulated (wall clock)\n",
           (unsigned long)trained, per_image(train_ticks, trained),
           cs1 > cs0 ? (unsigned long)((uint64_t)trained * 100 / (cs1 - cs0)) : 0ul);

    if ((st = check(sgdx_quantize(model, SGDX_QUANT_PER_ROW), model, "sgdx_quantize"))) return st;
    eval_result valid, testr;
    if ((st = evaluate(model, &train, VALID_FIRST, n_valid, images, labels, &valid))) return st;
    if ((st = evaluate(model, &test, 0, n_test, images, labels, &testr))) return st;
    int bad = report("validation (train rows 50000+)", &valid, min_bp, n_test == 0);
    bad |= report("test (t10k)", &testr, min_bp, 1);

    /* Save -> load round trip in the arena's free tail: same predictions after. */
    uint8_t* file = labels + BATCH;
    size_t written = 0;
    uint32_t before[2], after[2];
    if ((st = read_rows(&test, 0, 1, images, labels))) return st;
    if ((st = check(sgdx_predict(model, images, &before[0], NULL), model, "sgdx_predict")) ||
        (st = check(sgdx_predict_int8(model, images, &before[1]), model, "sgdx_predict_int8")) ||
        (st = check(sgdx_save(model, file, (size_t)(g_arena + ARENA_BYTES - file), &written), model, "sgdx_save")) ||
        (st = check(sgdx_load(model, file, written), model, "sgdx_load")) ||
        (st = check(sgdx_quantize(model, SGDX_QUANT_PER_ROW), model, "sgdx_quantize")) ||
        (st = check(sgdx_predict(model, images, &after[0], NULL), model, "sgdx_predict")) ||
        (st = check(sgdx_predict_int8(model, images, &after[1]), model, "sgdx_predict_int8")))
        return st;
    printf("weights: %lu-byte safetensors saved and reloaded in the arena; test image 0 (label %u): "
           "predicted %lu (float), %lu (int8)\n", (unsigned long)written, labels[0],
           (unsigned long)after[0], (unsigned long)after[1]);
    if (before[0] != after[0] || before[1] != after[1])
        printf("FAIL: predictions changed across save and load\n"), bad = 1;

    const int heap_used = g_heap_calls - heap_calls;
    const long heap_grown = (long)((char*)_sbrk(0) - heap_top);
    printf("heap: %d allocations, %ld bytes grown during training and evaluation; %d calls, %ld bytes in all (stdio)\n",
           heap_used, heap_grown, g_heap_calls, (long)((char*)_sbrk(0) - __end__));
    if (heap_used || heap_grown) printf("FAIL: the heap was used after set-up\n"), bad = 1;
    printf("stack high-water: %lu of %lu bytes\n", (unsigned long)board_stack_used(),
           (unsigned long)board_stack_size());
    printf("calibration: %lu.%03lu SysTick ticks per 1000 instructions\n",
           (unsigned long)(g_ticks_per_minstr / 1000), (unsigned long)(g_ticks_per_minstr % 1000));
    if (out) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, file, written) != (int)written || close(fd) != 0)
            printf("FAIL: cannot write %s\n", out), bad = 1;
        else
            printf("weights written to %s\n", out);
    }
    printf(bad ? "RESULT: FAIL\n" : "RESULT: PASS\n");
    return bad;
}
