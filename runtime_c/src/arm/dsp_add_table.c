/* An int8 Add's two rescale tables at run time: TFLite's arithmetic, entry by
 * entry the tables tinydeploy/backends/arm.py (_add_tables) would store. */
#include "td_arm_add_table.h"
#include "td_kernels_s8.h"

void td_arm_add_tables(int32_t *t, const td_arm_add_rescale *rescale)
{
    int32_t i, v;
    for (i = 0; i < 2; ++i, t += 256) {
        const td_arm_add_rescale *r = &rescale[i];
        const int32_t offset = r->offset, left = r->left_shift, m = r->multiplier;
        const int32_t shift = r->shift, bits = r->scale_bits;
        for (v = -128; v < 128; ++v) {
            const int32_t x = td_mbqm(td_shl_wrap(v + offset, (int)left), m, shift);
            t[v + 128] = td_shl_wrap(x, (int)bits);
        }
    }
}
