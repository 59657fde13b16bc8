/* STM32F4 USART1 on PA9/PA10 (AF7): polled transmit, interrupt receive. */
#ifndef EC_STM32_USART_H
#define EC_STM32_USART_H

void stm32_usart_init(void);
void stm32_usart_irq(void);

#endif
