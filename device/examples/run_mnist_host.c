/* sgdx_run_mnist: the firmware's MNIST run (device/firmware/run_mnist.c) built
 * for the host, so scripts/test-device.sh can check the host's C API computes
 * the emulated Cortex-M4's numbers exactly, and so a model can be tried on a
 * PC with the device's memory limits before flashing. Same arguments. */
#include <time.h>

#include "run_mnist.h"

uint64_t board_ticks(void) { return 0; }
uint32_t board_stack_used(void) { return 0; }
uint32_t board_stack_size(void) { return 0; }
long board_heap_calls(void) { return -1; }
long board_heap_grown(void) { return 0; }
int board_is_device(void) { return 0; }
uint32_t board_centiseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint32_t)(t.tv_sec * 100 + t.tv_nsec / 10000000);
}

int main(int argc, char** argv) { return run_mnist(argc, argv); }
