#include "nrf51_uart.h"

#include "cortexm.h"
#include "ec_board.h"
#include "rx_ring.h"

#define UART_BASE 0x40002000u
#define TASKS_STARTRX EC_REG(UART_BASE + 0x000u)
#define TASKS_STARTTX EC_REG(UART_BASE + 0x008u)
#define EVENTS_RXDRDY EC_REG(UART_BASE + 0x108u)
#define EVENTS_TXDRDY EC_REG(UART_BASE + 0x11Cu)
#define INTENSET EC_REG(UART_BASE + 0x304u)
#define ENABLE EC_REG(UART_BASE + 0x500u)
#define PSELTXD EC_REG(UART_BASE + 0x50Cu)
#define PSELRXD EC_REG(UART_BASE + 0x514u)
#define RXD EC_REG(UART_BASE + 0x518u)
#define TXD EC_REG(UART_BASE + 0x51Cu)
#define BAUDRATE EC_REG(UART_BASE + 0x524u)
#define INT_RXDRDY (1u << 2)

void nrf51_uart_init(void)
{
    PSELTXD = 24u;
    PSELRXD = 25u;
    BAUDRATE = 0x01D7E000u; /* 115200 Bd */
    ENABLE = 4u;
    TASKS_STARTTX = 1u; /* without both tasks QEMU drops transmitted bytes */
    TASKS_STARTRX = 1u;
    INTENSET = INT_RXDRDY;
    NVIC_ISER(EC_UART_IRQ) = NVIC_BIT(EC_UART_IRQ);
}

void nrf51_uart_irq(void)
{
    while (EVENTS_RXDRDY) {
        if (!ec_rx_space()) {
            ec_rx_pause();
            return;
        }
        EVENTS_RXDRDY = 0; /* before reading RXD, which may raise it again */
        ec_rx_put((uint8_t)RXD);
    }
}

void board_write(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        EVENTS_TXDRDY = 0;
        TXD = p[i];
        while (!EVENTS_TXDRDY)
            ;
    }
}
