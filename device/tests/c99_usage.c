/* The C API used from plain C99 (compiled with -std=c99 -pedantic-errors):
 * create, train, predict, save, load, quantise on synthetic data. Returns 0 on
 * success, else the number of the failing step. */
#include <string.h>

#include "sgdx.h"

int sgdx_c99_usage(void) {
    static unsigned char arena[64 * 1024];
    static uint8_t images[8 * 16], labels[8], file[4096];
    sgdx_model* model = NULL;
    size_t need = 0, written = 0;
    uint32_t predicted = 99, correct = 0;
    float loss = 0.f;
    int i, step;
    /* Class = which half of the image is bright: learnable in a few steps. */
    for (i = 0; i < 8; ++i) {
        labels[i] = (uint8_t)(i % 2);
        memset(images + i * 16 + (i % 2) * 8, 255, 8);
    }
    if (sgdx_arena_size(16, 2, 8, &need) != SGDX_OK || need > sizeof arena) return 1;
    if (sgdx_create(arena, sizeof arena, 16, 2, 8, 1, &model) != SGDX_OK) return 2;
    for (step = 0; step < 20; ++step)
        if (sgdx_train_step(model, images, labels, 8, 0.5f, &loss) != SGDX_OK) return 3;
    if (sgdx_evaluate(model, images, labels, 8, &correct, NULL) != SGDX_OK || correct != 8) return 4;
    if (sgdx_predict(model, images + 16, &predicted, NULL) != SGDX_OK || predicted != 1) return 5;
    if (sgdx_save(model, file, sizeof file, &written) != SGDX_OK) return 6;
    if (sgdx_load(model, file, written) != SGDX_OK) return 7;
    if (sgdx_quantize(model, SGDX_QUANT_PER_ROW) != SGDX_OK) return 8;
    if (sgdx_evaluate_int8(model, images, labels, 8, &correct) != SGDX_OK || correct != 8) return 9;
    if (sgdx_train_step(model, images, NULL, 8, 0.5f, &loss) != SGDX_ERR_NULL_ARGUMENT) return 10;
    if (strstr(sgdx_last_error(model), "labels is NULL") == NULL) return 11;
    {   /* A network through sgdx_config: an MLP 4x4 -> 8 -> 2 with momentum, read back from its file. */
        sgdx_config config, again;
        sgdx_tensor tensor;
        uint32_t count = 0;
        if (sgdx_config_init(&config, "mlp") != SGDX_OK) return 12;
        config.image_rows = config.image_cols = 4;
        config.classes = 2;
        config.hidden[0] = 8;
        config.max_batch = 8;
        config.momentum = 0.9f;
        if (sgdx_model_arena_size(&config, &need) != SGDX_OK || need > sizeof arena) return 13;
        if (sgdx_create_model(arena, sizeof arena, &config, 3, &model) != SGDX_OK) return 14;
        for (step = 0; step < 30; ++step)
            if (sgdx_train_step(model, images, labels, 8, 0.1f, &loss) != SGDX_OK) return 15;
        if (sgdx_evaluate(model, images, labels, 8, &correct, NULL) != SGDX_OK || correct != 8) return 16;
        if (sgdx_save(model, file, sizeof file, &written) != SGDX_OK) return 17;
        if (sgdx_config_from_weights(file, written, &again) != SGDX_OK || strcmp(again.architecture, "mlp") != 0 ||
            again.hidden[0] != 8 || again.hidden[1] != 0 || again.classes != 2)
            return 18;
        if (sgdx_tensor_count(model, &count) != SGDX_OK || count != 4) return 19;
        if (sgdx_tensor_at(model, 0, &tensor) != SGDX_OK || strcmp(tensor.name, "0.bias") != 0 || tensor.rank != 1 ||
            tensor.shape[0] != 8)
            return 20;
    }
    return 0;
}
