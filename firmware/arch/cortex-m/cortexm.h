/* Cortex-M core registers and helpers used by the boards (no CMSIS). */
#ifndef EC_CORTEXM_H
#define EC_CORTEXM_H

#include <stdint.h>

#define EC_REG(addr) (*(volatile uint32_t *)(addr))

#define SCB_CPACR EC_REG(0xE000ED88u)
#define SCB_AIRCR EC_REG(0xE000ED0Cu)
#define SCB_CFSR EC_REG(0xE000ED28u)
#define SCB_HFSR EC_REG(0xE000ED2Cu)
#define SCB_MMFAR EC_REG(0xE000ED34u)
#define SCB_BFAR EC_REG(0xE000ED38u)
#define SYST_CSR EC_REG(0xE000E010u)
#define SYST_RVR EC_REG(0xE000E014u)
#define SYST_CVR EC_REG(0xE000E018u)
#define DEMCR EC_REG(0xE000EDFCu)
#define DWT_CTRL EC_REG(0xE0001000u)
#define DWT_CYCCNT EC_REG(0xE0001004u)
#define NVIC_ISER(n) EC_REG(0xE000E100u + 4u * ((n) / 32u))
#define NVIC_ICER(n) EC_REG(0xE000E180u + 4u * ((n) / 32u))
#define NVIC_ISPR(n) EC_REG(0xE000E200u + 4u * ((n) / 32u))
#define NVIC_BIT(n) (1u << ((n) % 32u))

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || \
    defined(__ARM_ARCH_8_1M_MAIN__)
#define EC_HAS_FAULT_STATUS 1 /* CFSR/HFSR/MMFAR/BFAR and DWT exist (not ARMv6-M/v8-M base) */
#else
#define EC_HAS_FAULT_STATUS 0
#endif

static inline void ec_irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void ec_irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void ec_wfi(void) { __asm volatile("wfi" ::: "memory"); }

typedef void (*ec_vector_t)(void);
extern const ec_vector_t ec_vectors[]; /* the board's vector table */
extern uint32_t __stack_top__;
void Reset_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);

/* The 16 core entries of a vector table; a board appends its IRQ handlers after them. */
#define EC_CORE_VECTORS                                                                      \
    (ec_vector_t)(uintptr_t)&__stack_top__, Reset_Handler, HardFault_Handler,                \
        HardFault_Handler, HardFault_Handler, HardFault_Handler, HardFault_Handler, 0, 0, 0, \
        0, HardFault_Handler, HardFault_Handler, 0, HardFault_Handler, SysTick_Handler

#endif
