/* Host platform layer: plain stdio, no instruction counter. */
#include <stdio.h>
#include <stdlib.h>
#include "tdh_platform.h"

void tdh_puts(const char *s)
{
    fputs(s, stdout);
}

void tdh_exit(int code)
{
    fflush(stdout);
    exit(code);
}

void tdh_counter_init(void)
{
}

uint64_t tdh_time_begin(void)
{
    return 0;
}

uint64_t tdh_time_end(void)
{
    return 0;
}

uintptr_t tdh_stack_limit(void)
{
    return 0;
}

uintptr_t tdh_stack_top(void)
{
    return 0;
}
