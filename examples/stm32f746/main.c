/* tinydeploy example firmware for the STM32F746 (NUCLEO-F746ZG by default).
 *
 * Runs the generated model (tinydeploy compile MODEL.onnx -t stm32f746 -o model)
 * on a test pattern, over and over; after every inference it stores the
 * winning class in `g_class` (watch it with a debugger) and toggles the user
 * LED. The model is used only through its generated header, net.h:
 * NET_INPUT_SIZE, NET_OUTPUT_SIZE, the input/output scale and zero point, and
 * net_run().
 *
 * After reset the core runs from the 16 MHz internal oscillator; a product
 * configures the PLL (216 MHz) in its clock set-up before this loop.
 */
#include <stdint.h>

#include "net.h"

/* The user LED: NUCLEO-F746ZG LD1 is PB0; on the 32F746G-DISCO use port I (8), pin 1. */
#ifndef LED_PORT
#define LED_PORT 1 /* A = 0, B = 1, ... */
#endif
#ifndef LED_PIN
#define LED_PIN 0
#endif

#define RCC_AHB1ENR (*(volatile uint32_t *)0x40023830u)
#define GPIO_BASE(port) (0x40020000u + 0x400u * (port))
#define GPIO_MODER(port) (*(volatile uint32_t *)(GPIO_BASE(port) + 0x00u))
#define GPIO_ODR(port) (*(volatile uint32_t *)(GPIO_BASE(port) + 0x14u))

/* int8 models take and return int8_t (the header then defines the scales);
 * float models take and return float. */
#ifdef NET_INPUT_SCALE
typedef int8_t input_t;
#else
typedef float input_t;
#endif
#ifdef NET_OUTPUT_SCALE
typedef int8_t output_t;
#else
typedef float output_t;
#endif

static input_t input[NET_INPUT_SIZE];
static output_t output[NET_OUTPUT_SIZE];

/* Results, for a debugger (or the rest of a firmware). */
volatile int32_t g_class = -1;    /* argmax of the last output */
volatile int32_t g_status = -1;   /* net_run's return code (NET_OK = 0) */
volatile uint32_t g_inferences;   /* how many inferences ran */

/* A real-valued test pattern in [0, 1] (a ramp), converted to what the model
 * takes: real = scale * (q - zero_point) for int8 inputs. */
static void make_test_pattern(void)
{
    for (uint32_t i = 0; i < NET_INPUT_SIZE; i++) {
        float real = (float)(i % 256u) / 255.0f;
#ifdef NET_INPUT_SCALE
        float q = real / NET_INPUT_SCALE + (float)NET_INPUT_ZERO_POINT;
        int32_t r = (int32_t)(q + (q >= 0.0f ? 0.5f : -0.5f));
        input[i] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
#else
        input[i] = real;
#endif
    }
}

static int32_t argmax(const output_t *y, uint32_t n)
{
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (y[i] > y[best]) {
            best = (int32_t)i;
        }
    }
    return best;
}

static void led_init(void)
{
    RCC_AHB1ENR |= 1u << LED_PORT; /* clock the GPIO port */
    (void)RCC_AHB1ENR;             /* a read-back delays the first register access */
    GPIO_MODER(LED_PORT) = (GPIO_MODER(LED_PORT) & ~(3u << (2 * LED_PIN))) | (1u << (2 * LED_PIN));
}

int main(void)
{
    led_init();
    make_test_pattern();
    for (;;) {
        g_status = net_run(input, output);
        if (g_status == NET_OK) {
            g_class = argmax(output, NET_OUTPUT_SIZE);
        }
        g_inferences++;
        GPIO_ODR(LED_PORT) ^= 1u << LED_PIN;
    }
}
