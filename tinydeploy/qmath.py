"""Fixed-point arithmetic of the TFLite int8 specification, bit-exact with the
TensorFlow Lite Micro reference kernels (double-rounding build, which is the
default and what CMSIS-NN matches).

Two kinds of functions live here:

* integer primitives (``srdhm``, ``rdbpot``, ``multiply_by_quantized_multiplier``
  and gemmlowp's fixed-point exp / reciprocal / logistic / tanh), vectorized
  over numpy int64 arrays holding int32 values, exact;
* ``*_params`` helpers that turn float scales and zero points into the integer
  parameters of each kernel, exactly as TFLite Micro's Prepare() functions do:
  effective scales in double from the float32 scales; fused-activation bounds
  with TFLite's float32 round(f / scale).  They
  are the single source of those parameters: the code generator passes their
  results, unchanged, to the golden kernels and to the C kernels.  Returned
  dict keys equal the C struct field names of ``td_kernels_s8.h``.
"""

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT16_MIN, INT16_MAX = -32768, 32767
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# --------------------------------------------------------------------------
# Multiplier quantization
# --------------------------------------------------------------------------

def _round_half_away(v):
    """std::round for doubles (half away from zero)."""
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def quantize_multiplier(real):
    """TFLite QuantizeMultiplier: real ~= multiplier * 2^(shift - 31).

    multiplier is a Q31 value in [2^30, 2^31) (negative for negative reals),
    shift the power-of-two exponent (positive = left shift).  Zero gives
    (0, 0); magnitudes below ~2^-32 flush to (0, 0) as in TFLite.
    """
    real = float(real)
    if not math.isfinite(real):
        raise ValueError(f"multiplier must be finite, got {real}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


# Requantization applies real ~= multiplier * 2^(shift - 31) to an integer (an accumulator,
# an input minus its zero point) and adds the output zero point: kernels shift left by at
# most 30 bits. At 256 or more every nonzero integer saturates the int8 output (|zp| <= 128,
# and 256 steps cover the whole range), so any larger multiplier gives the same results.
# Multipliers of 2^30 or more (shift > 30, an output scale far below its inputs', e.g. a
# calibrated range that is almost a single value) become 256 - 2^-23 ((2^31 - 1, 8)), which
# also maps x to exactly 256 x for |x| < 2^22: exact, with an 8-bit left shift the overflow
# check bounds. (TFLite saturates them to (2^31 - 1, 30), whose left shift overflows int32
# for any |x| > 1.) Multipliers below 2^-32 flush to 0: the output is the zero point, exactly
# while |x| < 2^31.
MAX_SHIFT = 30
SATURATING = ((1 << 31) - 1, 8)


def saturating_multiplier(multiplier, shift):
    """(multiplier, shift) with a shift beyond MAX_SHIFT replaced by SATURATING (same sign)."""
    multiplier, shift = int(multiplier), int(shift)
    if shift > MAX_SHIFT and multiplier != 0:
        return (SATURATING[0] if multiplier > 0 else -SATURATING[0]), SATURATING[1]
    return multiplier, shift


def requant_multiplier(real):
    """quantize_multiplier for requantizing an integer to an int8 output (saturating_multiplier)."""
    return saturating_multiplier(*quantize_multiplier(real))


def quantize_multiplier_array(reals, requant=False):
    """Per-channel form: two int32 arrays (multipliers, shifts)."""
    fn = requant_multiplier if requant else quantize_multiplier
    pairs = [fn(r) for r in np.asarray(reals, np.float64).ravel()]
    mult = np.array([m for m, _ in pairs], dtype=np.int32)
    shift = np.array([s for _, s in pairs], dtype=np.int32)
    return mult, shift


def _quantize_multiplier_smaller_than_one(real):
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} must be in (0, 1) for this op")
    return quantize_multiplier(real)


# --------------------------------------------------------------------------
# Integer primitives (numpy int64 arrays holding int32 values)
# --------------------------------------------------------------------------

def _i64(x):
    return np.asarray(x, dtype=np.int64)


def wrap32(x):
    """Two's-complement wrap to int32 (what int32 arithmetic does on overflow)."""
    x = _i64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap16(x):
    x = _i64(x)
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _trunc_div_pow2(v, n):
    """C division v / 2^n (rounds toward zero)."""
    return np.where(v >= 0, v >> n, -((-v) >> n))


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul for int32 (VQRDMULH)."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    res = _trunc_div_pow2(ab + nudge, 31)
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, res)


def srdhm16(a, b):
    """The int16 SaturatingRoundingDoublingHighMul (HardSwish)."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    res = wrap16(_trunc_div_pow2(ab + nudge, 15))
    return np.where((a == b) & (a == INT16_MIN), INT16_MAX, res)


def sdhm16(a, b):
    """Saturating doubling high mul, int16, rounding toward zero (SQDMULH)."""
    a, b = _i64(a), _i64(b)
    res = wrap16(_trunc_div_pow2(a * b, 15))
    return np.where((a == b) & (a == INT16_MIN), INT16_MAX, res)


def rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT: round to nearest, ties away from zero."""
    x, e = _i64(x), _i64(exponent)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite MultiplyByQuantizedMultiplier (int32, double rounding).

    The left shift wraps in int32 like the C code does when it overflows.
    """
    x, m, s = _i64(x), _i64(multiplier), _i64(shift)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    return rdbpot(srdhm(wrap32(x << left), m), right)


mbqm = multiply_by_quantized_multiplier


def saturating_left_shift32(x, n):
    """gemmlowp SaturatingRoundingMultiplyByPOT<+n> for int32."""
    x = _i64(x)
    if n <= 0:
        return rdbpot(x, -n) if n < 0 else x
    thr = (1 << (31 - n)) - 1
    return np.where(x > thr, INT32_MAX, np.where(x < -thr, INT32_MIN, x << n))


def rescale(x, src_bits, dst_bits):
    """gemmlowp Rescale between fixed-point formats Q(src).(31-src) -> Q(dst)."""
    return saturating_left_shift32(x, src_bits - dst_bits)


def clz32(x):
    """Count leading zeros of int32 values seen as uint32 (32 for 0)."""
    u = _i64(x) & 0xFFFFFFFF
    n = np.zeros(u.shape, np.int64)
    for bit in (16, 8, 4, 2, 1):
        small = u < (np.int64(1) << (32 - bit))
        n = n + np.where(small, bit, 0)
        u = np.where(small, u << bit, u)
    return np.where(_i64(x) & 0xFFFFFFFF == 0, 32, n)


def rounding_half_sum(a, b):
    s = _i64(a) + _i64(b)
    return _trunc_div_pow2(s + np.where(s >= 0, 1, -1), 1)


# gemmlowp constants (raw Q0.31 / Q2.29 values)
_EXP_M1_8 = 1895147668          # exp(-1/8)
_ONE_THIRD = 715827883          # 1/3
_C48_17 = 1515870810            # 48/17 in Q2.29
_CNEG32_17 = -1010580540        # -32/17 in Q2.29
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
               (1, 290630308), (2, 39332535), (3, 720401), (4, 242))


def _exp_on_interval_quarter(a):
    """exp(x) for x in [-1/4, 0), Q0.31 in and out."""
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(wrap32(srdhm(wrap32(x4_over_4 + x3), _ONE_THIRD) + x2), 1)
    return wrap32(_EXP_M1_8 + srdhm(_EXP_M1_8, wrap32(x + poly)))


def exp_on_negative_values(a, integer_bits):
    """gemmlowp exp_on_negative_values: Q(integer_bits) input <= 0, Q0.31 out."""
    a = _i64(a)
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    a_mod = wrap32((a & (quarter - 1)) - quarter)
    result = _exp_on_interval_quarter(rescale(a_mod, integer_bits, 0))
    remainder = wrap32(a_mod - a)
    for exponent, mult in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (frac_bits + exponent)
            result = np.where(remainder & bit, srdhm(result, mult), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_half(a):
    """Shared Newton-Raphson core: returns x ~= 1/half_denominator in Q2.29."""
    half_den = rounding_half_sum(a, INT32_MAX)
    x = wrap32(_C48_17 + srdhm(half_den, _CNEG32_17))
    for _ in range(3):
        one_minus = wrap32((1 << 29) - srdhm(half_den, x))
        x = wrap32(x + rescale(srdhm(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a):
    return rescale(_newton_reciprocal_half(a), 1, 0)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    return rescale(wrap32(_newton_reciprocal_half(a) - (1 << 29)), 2, 0)


def fixed_logistic(a, integer_bits):
    """gemmlowp logistic: Q(integer_bits) in, Q0.31 out."""
    a = _i64(a)
    abs_a = np.where(a > 0, a, -a)
    pos = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(-abs_a, integer_bits))
    neg = wrap32(INT32_MAX - pos)
    return np.where(a == 0, 1 << 30, np.where(a > 0, pos, neg))


def fixed_tanh(a, integer_bits):
    """gemmlowp tanh: Q(integer_bits) in, Q0.31 out."""
    a = _i64(a)
    n = np.where(a < 0, a, -a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(a < 0, -t, t))


def get_reciprocal(x, x_integer_digits):
    """TFLite GetReciprocal: (Q0.31 reciprocal, num_bits_over_unit)."""
    x = _i64(x)
    hp1 = clz32(x)
    shifted = wrap32(((x & 0xFFFFFFFF) << hp1) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted), x_integer_digits - hp1


# --------------------------------------------------------------------------
# Parameter helpers (float scales -> integer kernel parameters)
# --------------------------------------------------------------------------

def _f32(v):
    return np.float32(v)


def _quantize_f32(scale, zero_point, f):
    """TFLite kernel_util Quantize(): zp + round(f / scale) in float32."""
    tmp = np.float32(f) / np.float32(scale)
    if np.isinf(tmp):  # beyond float32 (a tiny scale): beyond every int8 code too
        return int(zero_point) + (1 << 31 if tmp > 0 else -(1 << 31))
    return int(zero_point) + _round_half_away(float(tmp))


def activation_range(output_scale, output_zero_point, lo=None, hi=None):
    """Clamp bounds for a fused activation given as a real interval [lo, hi]
    (None = unbounded): ReLU is (0, None), ReLU6 (0, 6), ReluN1To1 (-1, 1).
    Same float32 rounding as TFLite's CalculateActivationRangeQuantized."""
    act_min, act_max = INT8_MIN, INT8_MAX
    if lo is not None:
        act_min = max(act_min, _quantize_f32(output_scale, output_zero_point, lo))
    if hi is not None:
        act_max = min(act_max, _quantize_f32(output_scale, output_zero_point, hi))
    return act_min, act_max


FUSED_ACTIVATIONS = {None: (None, None), "none": (None, None), "relu": (0.0, None),
                     "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}


def fused_activation_range(activation, output_scale, output_zero_point):
    lo, hi = FUSED_ACTIVATIONS[activation]
    return activation_range(output_scale, output_zero_point, lo, hi)


def _act(activation, output_scale, output_zp, act_range):
    if act_range is not None:
        return tuple(int(v) for v in act_range)
    return fused_activation_range(activation, output_scale, output_zp)


def conv_params(input_scale, input_zero_point, weight_scales, output_scale,
                output_zero_point, activation=None, act_range=None):
    """Conv2D / DepthwiseConv2D (TFLite PopulateConvolutionQuantizationParams).

    weight_scales: per output channel (or one value: per-tensor).  Effective
    scale = double(input_scale) * double(w_scale) / double(output_scale).
    act_range=(min, max) overrides the fused activation when given.
    """
    ws = np.atleast_1d(np.asarray(weight_scales, np.float32))
    reals = [float(_f32(input_scale)) * float(w) / float(_f32(output_scale)) for w in ws]
    mult, shift = quantize_multiplier_array(reals, requant=True)
    act_min, act_max = _act(activation, output_scale, output_zero_point, act_range)
    return {"input_offset": -int(input_zero_point),
            "output_offset": int(output_zero_point),
            "act_min": act_min, "act_max": act_max,
            "per_channel": int(ws.size > 1),
            "multiplier": mult, "shift": shift}


def fc_params(input_scale, input_zero_point, weight_scales, output_scale,
              output_zero_point, activation=None, act_range=None):
    """FullyConnected, per-tensor or per-channel weights; same derivation as
    convolution.  (TFLite Micro's source rounds the per-tensor product
    input_scale * weight_scale to float32, but the tflite-micro build that
    produced the reference outputs computes it in double, as here; checked by
    tests/test_tflite_oracle.py.)"""
    return conv_params(input_scale, input_zero_point, weight_scales, output_scale,
                       output_zero_point, activation, act_range)


def add_params(input1_scale, input1_zero_point, input2_scale, input2_zero_point,
               output_scale, output_zero_point, activation=None, act_range=None):
    """Add (TFLite CalculateOpDataAdd, int8: left_shift 20)."""
    left_shift = 20
    twice_max = 2.0 * float(max(_f32(input1_scale), _f32(input2_scale)))
    m1, s1 = _quantize_multiplier_smaller_than_one(float(_f32(input1_scale)) / twice_max)
    m2, s2 = _quantize_multiplier_smaller_than_one(float(_f32(input2_scale)) / twice_max)
    mo, so = requant_multiplier(twice_max / ((1 << left_shift) * float(_f32(output_scale))))
    act_min, act_max = _act(activation, output_scale, output_zero_point, act_range)
    return {"input1_offset": -int(input1_zero_point),
            "input2_offset": -int(input2_zero_point),
            "output_offset": int(output_zero_point), "left_shift": left_shift,
            "input1_multiplier": m1, "input1_shift": s1,
            "input2_multiplier": m2, "input2_shift": s2,
            "output_multiplier": mo, "output_shift": so,
            "act_min": act_min, "act_max": act_max}


def mul_params(input1_scale, input1_zero_point, input2_scale, input2_zero_point,
               output_scale, output_zero_point, activation=None, act_range=None):
    """Mul (TFLite CalculateOpDataMul)."""
    real = float(_f32(input1_scale)) * float(_f32(input2_scale)) / float(_f32(output_scale))
    m, s = requant_multiplier(real)
    act_min, act_max = _act(activation, output_scale, output_zero_point, act_range)
    return {"input1_offset": -int(input1_zero_point),
            "input2_offset": -int(input2_zero_point),
            "output_offset": int(output_zero_point),
            "output_multiplier": m, "output_shift": s,
            "act_min": act_min, "act_max": act_max}


def pool_params(activation=None, output_scale=1.0, output_zero_point=0, act_range=None):
    """MaxPool / AvgPool: TFLite requires equal input and output quantization;
    only the clamp bounds are derived."""
    act_min, act_max = _act(activation, output_scale, output_zero_point, act_range)
    return {"act_min": act_min, "act_max": act_max}


def mean_params(input_scale, input_zero_point, output_scale, output_zero_point, count):
    """Mean over `count` elements (TFLite QuantizedMeanOrSum): the 1/count
    factor is folded into the multiplier exactly as TFLite does."""
    m, s = quantize_multiplier(float(_f32(input_scale)) / float(_f32(output_scale)))
    count = int(count)
    k = min(count.bit_length() - 1, 32, 31 + s)
    m = int((m << k) // count) if k >= 0 else int(m // count)
    m, s = saturating_multiplier(m, s - k)
    return {"input_offset": -int(input_zero_point),
            "output_offset": int(output_zero_point),
            "multiplier": m, "shift": s}


def softmax_params(input_scale, beta=1.0):
    """Softmax int8 -> int8 (output scale 1/256, zero point -128), TFLite
    CalculateSoftmaxParams with kScaledDiffIntegerBits = 5."""
    scaled_diff_bits = 5
    real = min(float(beta) * float(_f32(input_scale)) * float(1 << (31 - scaled_diff_bits)),
               float((1 << 31) - 1))
    if not real > 1.0:
        raise ValueError("softmax: beta * input_scale too small for TFLite's int8 softmax")
    m, left_shift = quantize_multiplier(real)
    radius = math.floor(float((1 << scaled_diff_bits) - 1)
                        * float(1 << (31 - scaled_diff_bits)) / 2.0 ** left_shift)
    return {"input_multiplier": m, "input_left_shift": left_shift,
            "diff_min": -int(radius)}


def _q4_input_params(input_scale, input_zero_point):
    """Shared by Logistic and Tanh int8 (4 integer bits, TFLite Prepare)."""
    real = float(_f32(input_scale)) * float(1 << 27)
    q, left_shift = math.frexp(real)
    # TFLite stores round(q * 2^31) without the QuantizeMultiplier fix-up;
    # the cast wraps if the rounding reaches 2^31.
    mult = int(wrap32(_round_half_away(q * (1 << 31))))
    radius = math.floor(15.0 * float(1 << 27) / 2.0 ** left_shift)
    return {"input_zero_point": int(input_zero_point), "input_range_radius": int(radius),
            "input_multiplier": mult, "input_left_shift": int(left_shift)}


def sigmoid_params(input_scale, input_zero_point):
    """Logistic int8; output is scale 1/256, zero point -128 (TFLite)."""
    return _q4_input_params(input_scale, input_zero_point)


def tanh_params(input_scale, input_zero_point):
    """Tanh int8; output is scale 1/128, zero point 0 (TFLite)."""
    return _q4_input_params(input_scale, input_zero_point)


def _downscale_to_int16(m):
    if m >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (m + (1 << 15)) >> 16


def hardswish_params(input_scale, input_zero_point, output_scale, output_zero_point):
    """HardSwish int8 (TFLite HardSwishPrepare): hires scale = input_scale / 128,
    multipliers hires / output_scale and hires / (3 / 32768) in double (as the
    reference tflite-micro build computes them), downscaled to int16."""
    hires = float(_f32(input_scale)) / 128.0
    om, oe = quantize_multiplier(hires / float(_f32(output_scale)))
    rm, re_ = quantize_multiplier(hires / (3.0 / 32768.0))
    if oe > 0:
        raise ValueError("hardswish: output scale too small relative to input scale")
    return {"input_zero_point": int(input_zero_point),
            "output_zero_point": int(output_zero_point),
            "reluish_multiplier_fixedpoint_int16": _downscale_to_int16(rm),
            "reluish_multiplier_exponent": re_,
            "output_multiplier_fixedpoint_int16": _downscale_to_int16(om),
            "output_multiplier_exponent": oe}


def leaky_relu_params(input_scale, input_zero_point, output_scale, output_zero_point, alpha):
    """LeakyRelu int8 (TFLite CalculateOpDataLeakyRelu); alpha is a float32
    attribute; the multipliers are computed in double like every other op."""
    ma, sa = requant_multiplier(
        float(_f32(input_scale)) * float(_f32(alpha)) / float(_f32(output_scale)))
    mi, si = requant_multiplier(float(_f32(input_scale)) / float(_f32(output_scale)))
    return {"input_zero_point": int(input_zero_point),
            "output_zero_point": int(output_zero_point),
            "output_multiplier_alpha": ma, "output_shift_alpha": sa,
            "output_multiplier_identity": mi, "output_shift_identity": si}


def requantize_params(input_scale, input_zero_point, output_scale, output_zero_point):
    """int8 -> int8 Quantize (TFLite Requantize)."""
    m, s = requant_multiplier(float(_f32(input_scale)) / float(_f32(output_scale)))
    return {"input_zero_point": int(input_zero_point),
            "output_zero_point": int(output_zero_point),
            "multiplier": m, "shift": s}


def concat_input_params(inner, input_scale, input_zero_point, output_scale, output_zero_point):
    """One input of Concat: copied when its quantization equals the output's,
    otherwise requantized like TFLite's int8 Quantize op."""
    same = (_f32(input_scale) == _f32(output_scale)
            and int(input_zero_point) == int(output_zero_point))
    rq = requantize_params(input_scale, input_zero_point, output_scale, output_zero_point)
    return {"inner": int(inner), "requantize": int(not same),
            "input_zero_point": rq["input_zero_point"],
            "multiplier": rq["multiplier"], "shift": rq["shift"]}
