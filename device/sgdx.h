/* sgdx C API: the runtime's models (the tutorial's logistic regression, an MLP,
 * the tutorial's CNN, a LeNet-like CNN) in a fixed block of memory the caller
 * provides, for microcontrollers and for any language with a C FFI.
 *
 * - C99; nothing crosses this boundary but status codes (no exceptions).
 * - Every call returns an sgdx_status; on failure sgdx_last_error() holds a
 *   sentence naming the argument at fault and the problem.
 * - All memory is the caller's arena, laid out once by sgdx_create_model. No call
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
    SGDX_ERR_UNKNOWN_MODEL = 13,   /* the architecture is not one sgdx knows */
    SGDX_ERR_NOT_TRAINABLE = 14,   /* a training call on a model created SGDX_INFERENCE_ONLY */
    SGDX_ERR_IO = 15,              /* a read or write callback reported failure */
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

/* ---- Any model ------------------------------------------------------------
 * A model is described by an sgdx_config: fill one with sgdx_config_init (the
 * runtime's defaults for that architecture) or sgdx_config_from_weights (what a
 * saved file holds), change what you need, ask sgdx_model_arena_size how many
 * bytes it takes, then sgdx_create_model. The weights, the activations of
 * max_batch images, the optimiser's state and the int8 copy all live in the
 * arena; nothing is allocated after. */

#define SGDX_MAX_HIDDEN 4

/* Flags of sgdx_config. */
#define SGDX_INFERENCE_ONLY 1u /* no training buffers: predict, evaluate, load, quantize only */
#define SGDX_NO_INT8 2u        /* no room for int8 weights: sgdx_quantize is refused */
/* int8 weights alone (a quarter of the float ones' bytes), for a model whose
 * float weights do not fit: sgdx_load quantises each output row as it reads it
 * (SGDX_QUANT_PER_ROW). Inference only: sgdx_predict_int8 and
 * sgdx_evaluate_int8; the float calls and sgdx_save are refused. */
#define SGDX_INT8_ONLY 4u

typedef struct sgdx_config {
    /* "logistic" (the tutorial's Mnist_Logistic), "mlp" (Linear, ReLU, ...,
     * Linear), "cnn" (the tutorial's Mnist_CNN), "cnn_sequential" (the same
     * network as the tutorial's nn.Sequential) or "lenet" (2 conv + 2 linear):
     * sgdx_config_init and sgdx_config_from_weights set it to a static string.
     * ("bncnn", 18 layers, is known by name but beyond the 12 layers the C API
     * runs: sgdx_model_arena_size refuses it saying so.)
     *
     * Or any other network, as PyTorch prints its nn.Sequential (print(model)):
     *   "Sequential(\n  (0): Unflatten(dim=1, unflattened_size=(1, 28, 28))\n"
     *   "  (1): Conv2d(1, 8, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))\n ..."
     * of Linear, Conv2d (square stride and padding), ReLU, MaxPool2d and
     * AvgPool2d (no padding, square stride), AdaptiveAvgPool2d(1), Flatten and
     * Unflatten(1, (C, H, W)); at most 12 lines and 1 KB; layer names of at
     * most 8 characters. In SGDX_INFERENCE_ONLY models also BatchNorm1d/2d
     * right after a Conv2d or Linear (folded into it at load), Dropout (a
     * no-op) and bias=False; a model that trains refuses them by name
     * (SGDX_ERR_NOT_TRAINABLE), and a folded model is not saved. Other layers
     * are refused with their line and what the C API runs.
     * The text is the caller's and is read by sgdx_model_arena_size and
     * sgdx_create_model only: the model keeps its own copy (sgdx_model_config
     * returns that), saved as the file's "architecture" as `sgdx train` does.
     * sgdx_config_from_weights points it into the file's header (the printout
     * as JSON, from its opening quote): keep those bytes until
     * sgdx_create_model. */
    const char* architecture;
    uint32_t hidden[SGDX_MAX_HIDDEN]; /* mlp: hidden widths, 0 after the last */
    uint32_t image_rows, image_cols;  /* uint8 pixels per image, row-major */
    uint32_t classes;                 /* 2..256 (labels are uint8) */
    uint32_t max_batch;               /* most images per train_step / evaluate chunk */
    float momentum;                   /* SGD momentum in [0, 1); > 0 keeps a velocity per weight */
    uint32_t flags;                   /* SGDX_INFERENCE_ONLY, SGDX_NO_INT8, SGDX_INT8_ONLY */
} sgdx_config;

/* The architecture's defaults: MNIST's 28x28 images and 10 classes, hidden
 * {128} for mlp, max_batch 32, momentum 0 (no velocity buffers), flags 0. */
sgdx_status sgdx_config_init(sgdx_config* config, const char* architecture);

/* The architecture a safetensors file holds: its "architecture" metadata as
 * `sgdx train` writes it (a name, or a Sequential's printout: a zoo model's is
 * that model), or else its tensor names (files PyTorch wrote). Only the header
 * is read: `file` may be just the first bytes (8 + header length). A network
 * outside the zoo leaves config->architecture pointing into `file` (see
 * sgdx_config). max_batch, momentum and flags are left as sgdx_config_init
 * sets them. */
sgdx_status sgdx_config_from_weights(const uint8_t* file, size_t size, sgdx_config* config);

/* Bytes of arena the model needs (any alignment of the arena). */
sgdx_status sgdx_model_arena_size(const sgdx_config* config, size_t* bytes);

/* Lays out the model in arena[0, arena_bytes) and initialises its weights as
 * PyTorch does (uniform in +-1/sqrt(fan_in)), drawn from `seed` in the runtime's
 * order: the same seed gives sgdx::make_model's weights on any platform. */
sgdx_status sgdx_create_model(void* arena, size_t arena_bytes, const sgdx_config* config,
                              uint64_t seed, sgdx_model** model);

/* The model's configuration (architecture points to a static string, or to
 * the model's copy of its printout). */
sgdx_status sgdx_model_config(const sgdx_model* model, sgdx_config* config);

/* A weight tensor, in the order the safetensors file lists them (by name). */
typedef struct sgdx_tensor {
    const char* name;   /* "lin.weight", "0.bias", "conv1.weight", ...; NUL-terminated */
    const float* data;  /* count floats, row-major; NULL for an SGDX_INT8_ONLY model's weights */
    uint32_t rank, shape[4];
    size_t count;
} sgdx_tensor;
sgdx_status sgdx_tensor_count(const sgdx_model* model, uint32_t* count);
sgdx_status sgdx_tensor_at(const sgdx_model* model, uint32_t index, sgdx_tensor* tensor);

/* Streams for files larger than the RAM left beside the model: save calls
 * write(ctx, bytes, n) in order; load calls read(ctx, offset, bytes, n) at any
 * offset below size. Each returns 0 on success. */
typedef int (*sgdx_write_fn)(void* ctx, const uint8_t* bytes, size_t n);
typedef int (*sgdx_read_fn)(void* ctx, size_t offset, uint8_t* bytes, size_t n);
sgdx_status sgdx_save_stream(const sgdx_model* model, sgdx_write_fn write, void* ctx);
/* Checks the whole header against the model before reading any weight; a
 * read failure after that leaves the weights partly loaded (SGDX_ERR_IO). */
sgdx_status sgdx_load_stream(sgdx_model* model, sgdx_read_fn read, void* ctx, size_t size);

/* ---- The logistic model, as before ---------------------------------------- */

/* The logistic model (architecture "logistic", one Linear layer of `inputs`
 * pixels), sized and created from its dimensions as before. Equivalent to
 * sgdx_model_arena_size / sgdx_create_model with that config. */
/* Bytes of arena a model of these dimensions needs (any alignment of the arena). */
sgdx_status sgdx_arena_size(uint32_t inputs, uint32_t classes, uint32_t max_batch, size_t* bytes);

/* Lays out a model in arena[0, arena_bytes) and initialises it as PyTorch's
 * nn.Linear (weight and bias uniform in +-1/sqrt(inputs)) from `seed` with the
 * runtime's PCG32: the same seed gives the same weights as
 * sgdx::MnistLogistic(inputs, classes, seed) on any platform.
 * classes must be 2..256 (labels are uint8). */
sgdx_status sgdx_create(void* arena, size_t arena_bytes, uint32_t inputs, uint32_t classes,
                        uint32_t max_batch, uint64_t seed, sgdx_model** model);

/* ---- Every model ------------------------------------------------------------ */

/* One image -> the argmax class; probabilities (classes floats) if probs != NULL. */
sgdx_status sgdx_predict(sgdx_model* model, const uint8_t* image, uint32_t* predicted,
                         float* probs);

/* One SGD step (the tutorial's loss_batch with opt): forward, mean cross-entropy,
 * backward, PyTorch's SGD update (with the config's momentum). images: (batch,
 * rows * cols), labels: (batch). loss (may be NULL) receives the batch's mean
 * loss before the step. Each layer's weights are updated as soon as its
 * gradient is known, so no full gradient copy of a Linear layer is kept. */
sgdx_status sgdx_train_step(sgdx_model* model, const uint8_t* images, const uint8_t* labels,
                            uint32_t batch, float lr, float* loss);

/* Any number of images, max_batch at a time, without gradients. correct and
 * mean_loss may each be NULL. */
sgdx_status sgdx_evaluate(sgdx_model* model, const uint8_t* images, const uint8_t* labels,
                          uint32_t count, uint32_t* correct, float* mean_loss);

/* Read-only views of the logistic model's parameters: weight (classes, inputs),
 * bias (classes). Other models: sgdx_tensor_at. */
sgdx_status sgdx_parameters(const sgdx_model* model, const float** weight, const float** bias);

/* The weights as a safetensors file: PyTorch's state_dict names, F32
 * little-endian, and the architecture metadata `sgdx train` writes: the bytes the
 * CLI saves for the same weights. */
sgdx_status sgdx_weights_size(const sgdx_model* model, size_t* bytes);
sgdx_status sgdx_save(const sgdx_model* model, uint8_t* buffer, size_t capacity, size_t* written);

/* Accepts any safetensors file holding exactly this model's tensors as F32
 * with its shapes (metadata optional; an "architecture" entry must match).
 * Checks everything before copying: on error the model is unchanged. Resets
 * the momentum. */
sgdx_status sgdx_load(sgdx_model* model, const uint8_t* buffer, size_t size);

/* int8 weights (symmetric, scale = max|w| / 127 per tensor or per output row)
 * kept beside the float ones. sgdx_predict_int8 multiplies them with uint8
 * inputs in int32 and rescales once per output; the bias stays float. The
 * first layer's input is the pixels (scale 1/255); a later layer's input (>= 0
 * after a ReLU) is quantised per image to uint8 with scale max / 255. Training
 * or loading invalidates them. */
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
