/* The MNIST run the firmware does, as a function the host can run too: the same
 * C source, the same C API, the same numbers (tests compare them). */
#ifndef SGDX_RUN_MNIST_H
#define SGDX_RUN_MNIST_H
#include <stdint.h>

/* argv[1..]: DATA_DIR N_TRAIN N_VALID N_TEST MIN_ACCURACY [OUT] [key=value ...];
 * see run_mnist.c. Returns the process's exit code. */
int run_mnist(int argc, char** argv);

/* What the board offers the run (startup.c on the device, stand-ins on a host). */
uint64_t board_ticks(void);          /* SysTick ticks since reset; 0 where unknown */
uint32_t board_stack_used(void);     /* deepest stack use since reset; 0 where unknown */
uint32_t board_stack_size(void);
long board_heap_calls(void);         /* heap calls so far; -1 where not counted */
long board_heap_grown(void);         /* bytes the heap grew so far */
uint32_t board_centiseconds(void);   /* wall clock, for emulated images per second */
int board_is_device(void);           /* 1 on the Cortex-M4 */

#endif
