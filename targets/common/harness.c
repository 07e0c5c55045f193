/* Firmware harness: runs the model on every linked-in input sample and
 * reports outputs, instruction counts and per-layer data on stdout.
 *
 * Protocol (one record per line, fields separated by single spaces):
 *   BEGIN key=value...          build configuration
 *   CAL <run_ovh> <hook_ovh>    measurement overheads subtracted (instructions)
 *   DUMP <sample> <layer> <hex> a layer's output bytes (dump mode)
 *   LAYER <sample> <layer> <n>  instructions spent in a layer (profile, dump)
 *   OUT <sample> <hex>          the output tensor's bytes (several outputs: all of
 *                               them, concatenated in the model's order)
 *   CYC <sample> <n>            instructions of one inference
 * Counts are emulated instructions (QEMU -icount shift=0) with the cost of
 * timing and of the hooks themselves removed; no CAL/LAYER/CYC lines
 * without a counter (host).
 *   ERR <sample> <rc>           the model returned rc != 0 (then exit 1)
 *   STACK <used> <size>         stack high-water mark and stack size (bytes)
 *   DONE
 */
#include <stddef.h>
#include <stdint.h>
#include "td_glue.h"
#include "tdh_hook.h"
#include "tdh_platform.h"

#define TD_MODE_RUN 0
#define TD_MODE_PROFILE 1
#define TD_MODE_DUMP 2
#ifndef TD_MODE
#define TD_MODE TD_MODE_PROFILE
#endif

#if TD_NUM_LAYERS > 0
#define TDH_LAYER_CAP TD_NUM_LAYERS
#else
#define TDH_LAYER_CAP 1
#endif
#define TDH_CAL_REPS 32u

#if defined(TDH_COUNTER_CMSDK_TIMER)
#define TDH_COUNTER_NAME "cmsdk_timer"
#elif defined(TDH_COUNTER_SYSTICK)
#define TDH_COUNTER_NAME "systick"
#elif defined(TDH_COUNTER_MINSTRET)
#define TDH_COUNTER_NAME "minstret"
#else
#define TDH_COUNTER_NAME "none"
#endif
#define TDH_HAS_COUNTER (TDH_COUNTER_NAME[0] != 'n')

extern const TD_INPUT_T td_inputs[][TD_INPUT_SIZE];
extern const unsigned td_num_samples;

static TD_OUTPUT_T tdh_output[TD_OUTPUT_SIZE] __attribute__((aligned(16)));

/* ---- line-buffered output ---------------------------------------------- */

static char tdh_line[256];
static unsigned tdh_len;

static void tdh_flush(void)
{
    tdh_line[tdh_len] = '\0';
    tdh_puts(tdh_line);
    tdh_len = 0;
}

static void tdh_putc(char c)
{
    if (tdh_len == sizeof tdh_line - 1)
        tdh_flush();
    tdh_line[tdh_len++] = c;
}

static void tdh_put_str(const char *s)
{
    while (*s)
        tdh_putc(*s++);
}

static void tdh_put_u64(uint64_t v)
{
    char digits[21];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n)
        tdh_putc(digits[--n]);
}

static void tdh_put_int(long v)
{
    if (v < 0) {
        tdh_putc('-');
        tdh_put_u64((uint64_t)(-(v + 1)) + 1u);
    } else {
        tdh_put_u64((uint64_t)v);
    }
}

static void tdh_put_hex(const void *data, size_t bytes)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < bytes; ++i) {
        tdh_putc(digits[p[i] >> 4]);
        tdh_putc(digits[p[i] & 0xFu]);
    }
}

/* "TAG a[ b] " prefix of a record (b omitted when negative) */
static void tdh_record(const char *tag, long a, long b)
{
    tdh_put_str(tag);
    tdh_putc(' ');
    tdh_put_int(a);
    if (b >= 0) {
        tdh_putc(' ');
        tdh_put_int(b);
    }
    tdh_putc(' ');
}

static void tdh_end_line(void)
{
    tdh_putc('\n');
    tdh_flush();
}

/* ---- timing ------------------------------------------------------------ */

/* Timing is paused inside the hook: each layer gets the counter delta from
 * the end of the previous hook (or the start) to the start of its own. */
static uint64_t tdh_resume;
static uint64_t tdh_layer_time[TDH_LAYER_CAP];
static uint16_t tdh_layer_calls[TDH_LAYER_CAP];
static uint64_t tdh_hook_time;
static unsigned tdh_hook_calls;
static int tdh_layers_seen;
static int tdh_sample = -1; /* -1 while calibrating */

static uint64_t tdh_minus(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0u;
}

void td_layer_done(int index, const void *data, unsigned long bytes)
{
    uint64_t gap = tdh_time_end() - tdh_resume;
    tdh_hook_time += gap;
    ++tdh_hook_calls;
    if (index >= 0 && index < TDH_LAYER_CAP) {
        tdh_layer_time[index] += gap;
        ++tdh_layer_calls[index];
        if (index >= tdh_layers_seen)
            tdh_layers_seen = index + 1;
    }
#if TD_MODE == TD_MODE_DUMP
    if (tdh_sample >= 0 && index >= 0 && data) {
        tdh_record("DUMP", tdh_sample, index);
        tdh_put_hex(data, bytes);
        tdh_end_line();
    }
#else
    (void)data;
    (void)bytes;
#endif
    tdh_resume = tdh_time_begin();
}

static void tdh_reset_layers(void)
{
    for (int i = 0; i < TDH_LAYER_CAP; ++i) {
        tdh_layer_time[i] = 0;
        tdh_layer_calls[i] = 0;
    }
    tdh_hook_time = 0;
    tdh_hook_calls = 0;
    tdh_layers_seen = 0;
}

typedef int (*tdh_run_fn)(const TD_INPUT_T *, TD_OUTPUT_T *);
typedef void (*tdh_hook_fn)(int, const void *, unsigned long);

static int tdh_empty_run(const TD_INPUT_T *in, TD_OUTPUT_T *out)
{
    (void)in;
    (void)out;
    return 0;
}

/* Instructions of one call of `run`, hook time excluded. Not inlined, so
 * that the calibration and the real measurement run the same instructions. */
__attribute__((noinline)) static uint64_t tdh_time_run(tdh_run_fn run, const TD_INPUT_T *in,
                                                       int *rc)
{
    tdh_reset_layers();
    tdh_resume = tdh_time_begin();
    *rc = run(in, tdh_output);
    uint64_t tail = tdh_time_end() - tdh_resume;
    return tdh_hook_time + tail;
}

static uint64_t tdh_run_overhead;  /* instructions of timing an empty call */
static uint64_t tdh_hook_overhead; /* instructions a hook adds to a layer */

/* The constant cost of timing an interval and of a hook call, averaged over
 * repetitions (a timer reading is exact only to a few instructions). */
static void tdh_calibrate(void)
{
    tdh_run_fn volatile empty = tdh_empty_run;
    tdh_hook_fn volatile hook_ptr = td_layer_done;
    tdh_hook_fn hook = hook_ptr; /* opaque to the compiler, loaded once */
    uint64_t run_time = 0;
    uint64_t hook_time = 0;
    int rc;
    for (unsigned k = 0; k < TDH_CAL_REPS; ++k)
        run_time += tdh_time_run(empty, 0, &rc);
    tdh_reset_layers();
    tdh_resume = tdh_time_begin();
    for (unsigned k = 0; k < TDH_CAL_REPS / 8u; ++k) {
        /* unrolled: back-to-back calls, as in generated code */
        hook(-1, 0, 0);
        hook(-1, 0, 0);
        hook(-1, 0, 0);
        hook(-1, 0, 0);
        hook(-1, 0, 0);
        hook(-1, 0, 0);
        hook(-1, 0, 0);
        hook(-1, 0, 0);
    }
    hook_time = tdh_hook_time;
    tdh_run_overhead = run_time / TDH_CAL_REPS;
    tdh_hook_overhead = hook_time / TDH_CAL_REPS;
}

/* ---- stack high-water mark --------------------------------------------- */

__attribute__((noinline)) static void tdh_paint_stack(void)
{
    volatile uint32_t marker = 0;
    uintptr_t lo = tdh_stack_limit();
    uintptr_t hi = ((uintptr_t)&marker - 256u) & ~(uintptr_t)3u;
    for (volatile uint32_t *p = (uint32_t *)lo; lo && (uintptr_t)p < hi; ++p)
        *p = TDH_STACK_PAINT;
}

static uintptr_t tdh_stack_used(void)
{
    uintptr_t lo = tdh_stack_limit();
    const volatile uint32_t *p = (const uint32_t *)lo;
    while ((uintptr_t)p < tdh_stack_top() && *p == TDH_STACK_PAINT)
        ++p;
    return tdh_stack_top() - (uintptr_t)p;
}

/* ---- main -------------------------------------------------------------- */

static const char *tdh_mode_name(void)
{
    static const char *const names[] = {"run", "profile", "dump"};
    return names[TD_MODE];
}

static void tdh_begin(void)
{
    tdh_put_str("BEGIN mode=");
    tdh_put_str(tdh_mode_name());
    tdh_put_str(" counter=" TDH_COUNTER_NAME " samples=");
    tdh_put_u64(td_num_samples);
    tdh_put_str(" in=" TD_INPUT_TYPE_NAME " out=" TD_OUTPUT_TYPE_NAME " out_size=");
    tdh_put_u64(TD_OUTPUT_SIZE);
    tdh_put_str(" layers=");
    tdh_put_u64(TD_NUM_LAYERS);
    tdh_end_line();
    if (!TDH_HAS_COUNTER)
        return;
    tdh_put_str("CAL ");
    tdh_put_u64(tdh_run_overhead);
    tdh_putc(' ');
    tdh_put_u64(tdh_hook_overhead);
    tdh_end_line();
}

static void tdh_report_counts(int sample, uint64_t total)
{
    if (!TDH_HAS_COUNTER)
        return;
    for (int i = 0; i < tdh_layers_seen; ++i) {
        uint64_t ovh = tdh_hook_overhead * tdh_layer_calls[i];
        tdh_record("LAYER", sample, i);
        tdh_put_u64(tdh_minus(tdh_layer_time[i], ovh));
        tdh_end_line();
    }
    uint64_t ovh = tdh_run_overhead + tdh_hook_overhead * tdh_hook_calls;
    tdh_record("CYC", sample, -1);
    tdh_put_u64(tdh_minus(total, ovh));
    tdh_end_line();
}

static int tdh_run_sample(int sample)
{
    int rc;
    tdh_sample = sample;
    uint64_t total = tdh_time_run(TD_RUN, td_inputs[sample], &rc);
    if (rc != 0) {
        tdh_record("ERR", sample, -1);
        tdh_put_int(rc);
        tdh_end_line();
        return rc;
    }
    tdh_report_counts(sample, total);
    tdh_record("OUT", sample, -1);
    tdh_put_hex(tdh_output, sizeof tdh_output);
    tdh_end_line();
    return 0;
}

int main(void)
{
    tdh_paint_stack();
    tdh_counter_init();
    tdh_calibrate();
    tdh_begin();
    for (unsigned s = 0; s < td_num_samples; ++s) {
        if (tdh_run_sample((int)s) != 0)
            return 1;
    }
    if (tdh_stack_limit()) {
        tdh_put_str("STACK ");
        tdh_put_u64(tdh_stack_used());
        tdh_putc(' ');
        tdh_put_u64(tdh_stack_top() - tdh_stack_limit());
        tdh_end_line();
    }
    tdh_put_str("DONE");
    tdh_end_line();
    return 0;
}
