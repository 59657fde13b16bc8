#include "rx_ring.h"

#include "cortexm.h"
#include "ec_board.h"
#include "ec_harness.h"

#ifndef EC_RX_RING
#error "EC_RX_RING (ring size, a power of two) must be defined"
#endif
#ifndef EC_UART_IRQ
#error "EC_UART_IRQ (the UART's receive interrupt number) must be defined"
#endif
#if (EC_RX_RING & (EC_RX_RING - 1)) != 0 || EC_RX_RING < EC_MAX_WIRE_FRAME + 1
#error "EC_RX_RING must be a power of two holding the largest request and its leading 0x00"
#endif

static volatile uint8_t ring[EC_RX_RING];
static volatile uint32_t head, tail; /* free-running; head written by the handler only */
static volatile int paused;

int ec_rx_space(void) { return head - tail < EC_RX_RING; }

void ec_rx_put(uint8_t c)
{
    ring[head % EC_RX_RING] = c;
    head++;
}

void ec_rx_pause(void)
{
    paused = 1;
    NVIC_ICER(EC_UART_IRQ) = NVIC_BIT(EC_UART_IRQ);
}

int ec_rx_wait_polled(uint32_t polls)
{
    for (uint32_t i = 0; i < polls && head == tail; i++)
        ec_vectors[16 + EC_UART_IRQ]();
    return head != tail;
}

uint8_t board_getc(void)
{
    for (;;) {
        ec_irq_disable();
        if (head != tail) {
            uint8_t c = ring[tail % EC_RX_RING];
            tail++;
            if (paused) {
                paused = 0;
                NVIC_ISPR(EC_UART_IRQ) = NVIC_BIT(EC_UART_IRQ);
                NVIC_ISER(EC_UART_IRQ) = NVIC_BIT(EC_UART_IRQ);
            }
            ec_irq_enable();
            return c;
        }
        ec_wfi(); /* wakes on a pending interrupt even with PRIMASK set */
        ec_irq_enable();
    }
}
