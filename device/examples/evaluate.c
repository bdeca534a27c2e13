/* sgdx_c_evaluate MODEL DATA_DIR: a host program on the C API. Loads a
 * safetensors model of any architecture (e.g. one the firmware trained and
 * wrote over semihosting, or one from `sgdx train`), then prints its float and
 * int8 (per-row) accuracy on the 10,000 MNIST test images in the firmware's
 * words, so scripts/test-device.sh can compare it with the firmware and the CLI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgdx.h"

static unsigned char* read_all(const char* path, size_t* size) {
    FILE* f = fopen(path, "rb");
    unsigned char* data = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)n + 1)) != NULL && fread(data, 1, (size_t)n, f) == (size_t)n) {
        *size = (size_t)n;
    } else {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

static int fail(sgdx_status st, const sgdx_model* m, const char* call) {
    fprintf(stderr, "sgdx_c_evaluate: %s: %s: %s\n", call, sgdx_status_name(st), sgdx_last_error(m));
    return 1;
}

int main(int argc, char** argv) {
    char path[4096];
    size_t model_size = 0, images_size = 0, labels_size = 0, need = 0;
    unsigned char *model_bytes, *images, *labels;
    sgdx_model* m = NULL;
    sgdx_config config;
    sgdx_status st;
    uint32_t n, float_ok = 0, int8_ok = 0;
    void* arena;
    if (argc != 3) {
        fprintf(stderr, "usage: sgdx_c_evaluate MODEL.safetensors MNIST_DIR\n");
        return 2;
    }
    model_bytes = read_all(argv[1], &model_size);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", argv[2]);
    images = read_all(path, &images_size);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", argv[2]);
    labels = read_all(path, &labels_size);
    if (!model_bytes || !images || !labels || images_size < 16 || labels_size < 8) {
        fprintf(stderr, "sgdx_c_evaluate: cannot read %s or the test files in %s\n", argv[1], argv[2]);
        return 1;
    }
    n = (uint32_t)(labels_size - 8);
    if (images_size != 16 + (size_t)n * 784) {
        fprintf(stderr, "sgdx_c_evaluate: %s: images and labels disagree\n", argv[2]);
        return 1;
    }
    if ((st = sgdx_config_from_weights(model_bytes, model_size, &config))) return fail(st, NULL, "sgdx_config_from_weights");
    config.max_batch = 256;
    config.flags = SGDX_INFERENCE_ONLY;
    if ((st = sgdx_model_arena_size(&config, &need))) return fail(st, NULL, "sgdx_model_arena_size");
    arena = malloc(need);
    if ((st = sgdx_create_model(arena, need, &config, 0, &m))) return fail(st, NULL, "sgdx_create_model");
    if ((st = sgdx_load(m, model_bytes, model_size))) return fail(st, m, "sgdx_load");
    if ((st = sgdx_evaluate(m, images + 16, labels + 8, n, &float_ok, NULL))) return fail(st, m, "sgdx_evaluate");
    if ((st = sgdx_quantize(m, SGDX_QUANT_PER_ROW))) return fail(st, m, "sgdx_quantize");
    if ((st = sgdx_evaluate_int8(m, images + 16, labels + 8, n, &int8_ok))) return fail(st, m, "sgdx_evaluate_int8");
    /* The firmware's line, character for character (truncated basis points). */
    printf("test (t10k): %lu images: float accuracy %lu.%02lu%%, int8 accuracy %lu.%02lu%% (per-row scales)\n",
           (unsigned long)n, (unsigned long)(float_ok * 10000ull / n / 100), (unsigned long)(float_ok * 10000ull / n % 100),
           (unsigned long)(int8_ok * 10000ull / n / 100), (unsigned long)(int8_ok * 10000ull / n % 100));
    free(arena);
    free(model_bytes);
    free(images);
    free(labels);
    return 0;
}
