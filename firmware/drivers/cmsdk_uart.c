#include "cmsdk_uart.h"

#include "cortexm.h"
#include "ec_board.h"
#include "rx_ring.h"

#ifndef CMSDK_UART_BASE
#error "CMSDK_UART_BASE must be defined by the board"
#endif

#define UART_DATA EC_REG(CMSDK_UART_BASE + 0x00u)
#define UART_STATE EC_REG(CMSDK_UART_BASE + 0x04u)
#define UART_CTRL EC_REG(CMSDK_UART_BASE + 0x08u)
#define UART_INTCLEAR EC_REG(CMSDK_UART_BASE + 0x0Cu)
#define UART_BAUDDIV EC_REG(CMSDK_UART_BASE + 0x10u)
#define STATE_TXFULL 1u
#define STATE_RXFULL 2u
#define CTRL_TX_EN 1u
#define CTRL_RX_EN 2u
#define CTRL_RX_INTEN 8u
#define INT_RX 2u

#ifndef CMSDK_UART_BAUDDIV
#define CMSDK_UART_BAUDDIV 217u /* 25 MHz / 115200 */
#endif

void cmsdk_uart_init(void)
{
    UART_BAUDDIV = CMSDK_UART_BAUDDIV; /* must be >= 16 before enabling */
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN;
    NVIC_ISER(EC_UART_IRQ) = NVIC_BIT(EC_UART_IRQ);
}

void cmsdk_uart_irq(void)
{
    UART_INTCLEAR = INT_RX; /* write-1-to-clear; reading DATA does not clear it */
    while (UART_STATE & STATE_RXFULL) {
        if (!ec_rx_space()) {
            ec_rx_pause();
            return;
        }
        ec_rx_put((uint8_t)UART_DATA);
    }
}

void board_write(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (UART_STATE & STATE_TXFULL)
            ;
        UART_DATA = p[i];
    }
}
