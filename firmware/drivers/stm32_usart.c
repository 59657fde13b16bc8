#include "stm32_usart.h"

#include "cortexm.h"
#include "ec_board.h"
#include "rx_ring.h"

#define RCC_AHB1ENR EC_REG(0x40023830u)
#define RCC_APB2ENR EC_REG(0x40023844u)
#define GPIOA_MODER EC_REG(0x40020000u)
#define GPIOA_AFRH EC_REG(0x40020024u)
#define USART_SR EC_REG(0x40011000u)
#define USART_DR EC_REG(0x40011004u)
#define USART_BRR EC_REG(0x40011008u)
#define USART_CR1 EC_REG(0x4001100Cu)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_UE (1u << 13)
#define CR1_RXNEIE (1u << 5)
#define CR1_TE (1u << 3)
#define CR1_RE (1u << 2)

void stm32_usart_init(void)
{
    /* Silicon needs the clocks and pin muxing; QEMU ignores these writes. */
    RCC_AHB1ENR |= 1u;      /* GPIOA */
    RCC_APB2ENR |= 1u << 4; /* USART1 */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18); /* PA9, PA10: AF */
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);   /* AF7 = USART1 */
    USART_BRR = 0x8Bu; /* 115200 Bd from the 16 MHz HSI reset clock */
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
    NVIC_ISER(EC_UART_IRQ) = NVIC_BIT(EC_UART_IRQ);
}

void stm32_usart_irq(void)
{
    while (USART_SR & SR_RXNE) { /* reading DR clears RXNE (and an overrun flag) */
        if (!ec_rx_space()) {
            ec_rx_pause();
            return;
        }
        ec_rx_put((uint8_t)USART_DR);
    }
}

void board_write(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (!(USART_SR & SR_TXE))
            ;
        USART_DR = p[i];
    }
}
