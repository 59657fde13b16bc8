/* Arm CMSDK APB UART (MPS2/MPS3 FPGA images): polled transmit, interrupt receive. */
#ifndef EC_CMSDK_UART_H
#define EC_CMSDK_UART_H

void cmsdk_uart_init(void);
void cmsdk_uart_irq(void);

#endif
