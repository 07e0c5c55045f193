/* int8 Add of two same-shape tensors with the Arm DSP extension: two table
 * lookups, an SMMLA and a saturating shift per element (td_arm_epi_add's
 * arithmetic with its parameters at run time).
 * Element i is read before it is written, so the output may be either input. */
#include "td_arm_add.h"
#include "td_arm_requant.h"

#if defined(__ARM_FEATURE_DSP)

void td_arm_add_s8(const td_arm_add_params *p, const int8_t *a, const int8_t *b,
                   int8_t *output)
{
    const int32_t *t1 = p->t1, *t2 = p->t2;
    const int32_t am = p->add_mult, ac = p->add_c, mask = p->add_fix_mask;
    const int32_t e = p->add_shift, lo = p->add_min, hi = p->add_max;
    const int32_t n = p->size;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t sum = t1[a[i]] + t2[b[i]];
        int32_t o = td_arm_ssat8(td_arm_smmla(sum, am, ac + ((sum >> 31) & mask)) >> e);
        if (p->add_clamp) {
            o = o < lo ? lo : (o > hi ? hi : o);
        }
        output[i] = (int8_t)o;
    }
}

#endif /* __ARM_FEATURE_DSP */
