/* An MLP through the installed C API: create it in a static arena, train it on
 * a pattern it can learn, save, load, quantise; prints "c_consumer: ok" and
 * exits 0 if every step worked. */
#include <stdio.h>
#include <string.h>

#include "sgdx.h"

enum { SIDE = 8, PIXELS = SIDE * SIDE, N = 16 };

static unsigned char arena[96 * 1024];
static uint8_t images[N * PIXELS], labels[N], file[16 * 1024];

static int check(sgdx_status st, const sgdx_model* m, const char* what) {
    if (st == SGDX_OK) return 0;
    printf("c_consumer: %s: %s: %s\n", what, sgdx_status_name(st), sgdx_last_error(m));
    return 1;
}

int main(void) {
    sgdx_config config;
    sgdx_model* model = NULL;
    size_t need = 0, written = 0;
    uint32_t correct = 0, step;
    float loss = 0.f;
    int i;
    /* Three classes: the bright quarter is top-left, top-right or bottom. */
    for (i = 0; i < N; ++i) {
        int r, c;
        labels[i] = (uint8_t)(i % 3);
        for (r = 0; r < SIDE; ++r)
            for (c = 0; c < SIDE; ++c) {
                int lit = labels[i] == 0 ? (r < 4 && c < 4) : labels[i] == 1 ? (r < 4 && c >= 4) : r >= 4;
                images[i * PIXELS + r * SIDE + c] = (uint8_t)(lit ? 200 + (i * 7 + r + c) % 50 : (i + r * c) % 30);
            }
    }
    if (check(sgdx_config_init(&config, "mlp"), NULL, "sgdx_config_init")) return 1;
    config.image_rows = config.image_cols = SIDE;
    config.classes = 3;
    config.hidden[0] = 16;
    config.max_batch = N;
    config.momentum = 0.9f;
    if (check(sgdx_model_arena_size(&config, &need), NULL, "sgdx_model_arena_size")) return 1;
    if (need > sizeof arena) return printf("c_consumer: the model needs %lu bytes\n", (unsigned long)need), 1;
    if (check(sgdx_create_model(arena, sizeof arena, &config, 1, &model), NULL, "sgdx_create_model")) return 1;
    for (step = 0; step < 40; ++step)
        if (check(sgdx_train_step(model, images, labels, N, 0.1f, &loss), model, "sgdx_train_step")) return 1;
    if (check(sgdx_evaluate(model, images, labels, N, &correct, NULL), model, "sgdx_evaluate")) return 1;
    if (correct != N) return printf("c_consumer: %lu of %d right after training\n", (unsigned long)correct, N), 1;
    if (check(sgdx_save(model, file, sizeof file, &written), model, "sgdx_save") ||
        check(sgdx_load(model, file, written), model, "sgdx_load") ||
        check(sgdx_quantize(model, SGDX_QUANT_PER_ROW), model, "sgdx_quantize") ||
        check(sgdx_evaluate_int8(model, images, labels, N, &correct), model, "sgdx_evaluate_int8"))
        return 1;
    if (correct != N) return printf("c_consumer: int8: %lu of %d right\n", (unsigned long)correct, N), 1;
    printf("c_consumer: ok (mlp %dx%d -> 16 -> 3 in %lu bytes of arena, last loss %d.%03d, %lu-byte file)\n", SIDE,
           SIDE, (unsigned long)need, (int)loss, (int)(loss * 1000) % 1000, (unsigned long)written);
    return 0;
}
