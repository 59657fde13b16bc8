/* nRF51 UART0 (micro:bit v1 pins P0.24 TX, P0.25 RX): polled transmit, interrupt receive. */
#ifndef EC_NRF51_UART_H
#define EC_NRF51_UART_H

void nrf51_uart_init(void);
void nrf51_uart_irq(void);

#endif
