/* What startup.c offers main.c. */
#ifndef SGDX_BOARD_H
#define SGDX_BOARD_H
#include <stdint.h>

/* A semihosting call (ARM's "bkpt 0xAB" convention). */
int semihost(int op, void* arg);
/* SysTick ticks on the core clock since reset (64-bit across wraps). */
uint64_t board_ticks(void);
/* Deepest stack use since reset, from the painted stack. */
uint32_t board_stack_used(void);
uint32_t board_stack_size(void);

#endif
