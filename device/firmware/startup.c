/* Reset, vector table, faults and SysTick for the mps2-an386 (Cortex-M4F) under
 * QEMU, with newlib's rdimon (semihosting) but our own start-up code: rdimon's
 * crt0 would move the stack to the top of QEMU's RAM, and we need the linker
 * script's stack to measure the RAM budget. */
#include <stdint.h>
#include <stdlib.h>

#include "board.h"

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_bottom, __stack, __heap_end__;
extern unsigned int __heap_limit; /* rdimon's _sbrk stops here */
extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern int main(void);

/* What crtbegin/crti would provide (we link with -nostartfiles). */
void* __dso_handle = 0;
void _init(void) {}
void _fini(void) {}

#define STACK_PAINT 0xDEADBEEFu
#define REG(addr) (*(volatile uint32_t*)(addr))

static volatile uint32_t g_systick_wraps;

int semihost(int op, void* arg) {
    register int r0 __asm__("r0") = op;
    register void* r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

uint64_t board_ticks(void) {
    uint32_t wraps, value;
    do {  /* a wrap between the two reads would mix old and new */
        wraps = g_systick_wraps;
        value = REG(0xE000E018);
    } while (wraps != g_systick_wraps);
    return ((uint64_t)wraps << 24) + (0xFFFFFFu - value);
}

uint32_t board_stack_used(void) {
    const uint32_t* p = &__stack_bottom;
    while (p < &__stack && *p == STACK_PAINT) ++p;
    return (uint32_t)((uintptr_t)&__stack - (uintptr_t)p);
}

uint32_t board_stack_size(void) { return (uint32_t)((uintptr_t)&__stack - (uintptr_t)&__stack_bottom); }

static void SysTick_Handler(void) { g_systick_wraps = g_systick_wraps + 1; }

/* A fault must end QEMU with a code: a bare bkpt would hang it. */
static void fault(const char* what) {
    semihost(0x04 /* SYS_WRITE0 */, (void*)what);
    _Exit(99);
}
static void HardFault_Handler(void) { fault("firmware: hard fault\n"); }
static void MemManage_Handler(void) { fault("firmware: memory management fault\n"); }
static void BusFault_Handler(void) { fault("firmware: bus fault\n"); }
static void UsageFault_Handler(void) { fault("firmware: usage fault\n"); }
static void Other_Handler(void) { fault("firmware: unexpected interrupt\n"); }

void Reset_Handler(void) {
    /* FPU: full access for CP10 and CP11, before any float instruction. */
    REG(0xE000ED88) |= 0xFu << 20;
    __asm__ volatile("dsb\n isb");
    const uint32_t* src = &__etext;
    for (uint32_t* dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
    for (uint32_t* dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
    /* Paint the unused stack so board_stack_used() finds the high-water mark. */
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t* p = &__stack_bottom; (uintptr_t)p < sp - 64; ++p) *p = STACK_PAINT;
    __heap_limit = (unsigned int)(uintptr_t)&__heap_end__;
    /* SysTick on the core clock, wrapping every 2^24 ticks. */
    REG(0xE000E014) = 0xFFFFFFu;
    REG(0xE000E018) = 0;
    REG(0xE000E010) = 7;
    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}

__attribute__((section(".isr_vector"), used)) static void (*const g_vectors[16])(void) = {
    (void (*)(void))&__stack, Reset_Handler, Other_Handler, HardFault_Handler,
    MemManage_Handler, BusFault_Handler, UsageFault_Handler, 0, 0, 0, 0,
    Other_Handler, Other_Handler, 0, Other_Handler, SysTick_Handler,
};
