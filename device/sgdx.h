/* sgdx C API: the tutorial's MNIST logistic regression (inputs -> classes) in a
 * fixed block of memory the caller provides, for microcontrollers and for any
 * language with a C FFI.
 *
 * - C99; nothing crosses this boundary but status codes (no exceptions).
 * - Every call returns an sgdx_status; on failure sgdx_last_error() holds a
 *   sentence naming the argument at fault and the problem.
 * - All memory is the caller's arena, laid out once by sgdx_create. No call
 *   allocates from the heap.
 * - Images are uint8 pixels (row-major, `inputs` per image), scaled by 1/255
 *   as the host runtime does; labels are uint8 class indices.
 * - Not thread-safe: use one model from one thread at a time. */
#ifndef SGDX_H
#define SGDX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sgdx_status {
    SGDX_OK = 0,
    SGDX_ERR_NULL_ARGUMENT = 1,   /* a required pointer is NULL */
    SGDX_ERR_BAD_DIMENSION = 2,   /* inputs, classes or max_batch is 0 or too large */
    SGDX_ERR_ARENA_TOO_SMALL = 3, /* the arena is smaller than sgdx_arena_size says */
    SGDX_ERR_BAD_MODEL = 4,       /* the handle is not a live model (arena overwritten?) */
    SGDX_ERR_BAD_BATCH_SIZE = 5,  /* batch (or count) is 0, or batch > the model's max_batch */
    SGDX_ERR_BAD_LABEL = 6,       /* a label is >= classes */
    SGDX_ERR_BAD_OPTION = 7,      /* learning rate not finite and >= 0, unknown mode */
    SGDX_ERR_DIVERGED = 8,        /* the loss is not finite; the step was not applied */
    SGDX_ERR_BUFFER_TOO_SMALL = 9, /* the save buffer cannot hold the weights */
    SGDX_ERR_CORRUPT_WEIGHTS = 10, /* the weight buffer is not a valid safetensors file */
    SGDX_ERR_SHAPE_MISMATCH = 11,  /* valid file, but its tensors do not fit this model */
    SGDX_ERR_NOT_QUANTIZED = 12,   /* int8 call before sgdx_quantize (or after weights changed) */
    /* Not a status: makes every int a valid value of the type, so a C caller's
       stray number reaching the implementation is checked, not undefined. */
    SGDX_STATUS_FORCE_INT = 0x7fffffff
} sgdx_status;

typedef enum sgdx_quant_mode {
    SGDX_QUANT_PER_TENSOR = 0, /* one scale for the whole weight matrix */
    SGDX_QUANT_PER_ROW = 1,    /* one scale per class (row of the weight) */
    SGDX_QUANT_MODE_FORCE_INT = 0x7fffffff  /* not a mode: see SGDX_STATUS_FORCE_INT */
} sgdx_quant_mode;

/* Lives inside the caller's arena; valid while the arena is. */
typedef struct sgdx_model sgdx_model;

/* Bytes of arena a model of these dimensions needs (any alignment of the arena). */
sgdx_status sgdx_arena_size(uint32_t inputs, uint32_t classes, uint32_t max_batch, size_t* bytes);

/* Lays out a model in arena[0, arena_bytes) and initialises it as PyTorch's
 * nn.Linear (weight and bias uniform in +-1/sqrt(inputs)) from `seed` with the
 * runtime's PCG32: the same seed gives the same weights as
 * sgdx::MnistLogistic(inputs, classes, seed) on any platform.
 * classes must be 2..256 (labels are uint8). */
sgdx_status sgdx_create(void* arena, size_t arena_bytes, uint32_t inputs, uint32_t classes,
                        uint32_t max_batch, uint64_t seed, sgdx_model** model);

/* One image -> the argmax class; probabilities (classes floats) if probs != NULL. */
sgdx_status sgdx_predict(sgdx_model* model, const uint8_t* image, uint32_t* predicted,
                         float* probs);

/* One SGD step (the tutorial's loss_batch with opt): forward, mean cross-entropy,
 * backward, p -= lr * grad. images: (batch, inputs), labels: (batch).
 * loss (may be NULL) receives the batch's mean loss before the step. */
sgdx_status sgdx_train_step(sgdx_model* model, const uint8_t* images, const uint8_t* labels,
                            uint32_t batch, float lr, float* loss);

/* Any number of images, max_batch at a time, without gradients. correct and
 * mean_loss may each be NULL. */
sgdx_status sgdx_evaluate(sgdx_model* model, const uint8_t* images, const uint8_t* labels,
                          uint32_t count, uint32_t* correct, float* mean_loss);

/* Read-only views of the parameters: weight (classes, inputs), bias (classes). */
sgdx_status sgdx_parameters(const sgdx_model* model, const float** weight, const float** bias);

/* The weights as a safetensors file ("lin.weight" (classes, inputs), "lin.bias"
 * (classes), F32 little-endian, metadata {"format": "pt"}): the bytes the host
 * runtime's encode_model writes for MnistLogistic. */
sgdx_status sgdx_weights_size(const sgdx_model* model, size_t* bytes);
sgdx_status sgdx_save(const sgdx_model* model, uint8_t* buffer, size_t capacity, size_t* written);

/* Accepts any safetensors file holding exactly lin.weight and lin.bias as F32
 * with this model's shapes (metadata optional). Checks everything before
 * copying: on error the model is unchanged. */
sgdx_status sgdx_load(sgdx_model* model, const uint8_t* buffer, size_t size);

/* int8 weights (symmetric, scale = max|w| / 127) kept beside the float ones.
 * sgdx_predict_int8 multiplies them with the uint8 pixels in int32 and rescales
 * once per class; the bias stays float. Training or loading invalidates them. */
sgdx_status sgdx_quantize(sgdx_model* model, sgdx_quant_mode mode);
sgdx_status sgdx_predict_int8(sgdx_model* model, const uint8_t* image, uint32_t* predicted);
sgdx_status sgdx_evaluate_int8(sgdx_model* model, const uint8_t* images, const uint8_t* labels,
                               uint32_t count, uint32_t* correct);

/* "SGDX_ERR_BAD_LABEL" etc.; "unknown status" for other values. */
const char* sgdx_status_name(sgdx_status status);

/* The message of the last failed call on `model`; with model == NULL, of the
 * last failed call that had no usable model (sgdx_arena_size, sgdx_create, or a
 * NULL/invalid handle). "" if none. Never NULL. */
const char* sgdx_last_error(const sgdx_model* model);

#ifdef __cplusplus
}
#endif

#endif /* SGDX_H */
