/* GroupNorm of a channels-last bfloat16 tensor, inference only, optionally followed by SiLU.
 *
 * oneDNN's bfloat16 convolutions hand out channels-last tensors, and torch's CPU GroupNorm on that
 * layout takes 2-4x its time on a contiguous one (docs/RESULTS.md, Speed); a small UNet spends a
 * sixth of its call there. Here each image is one task: a pass along its rows (pixels) summing
 * every channel and its square (shifted by the channel's first value; in float over 64 rows, then
 * in double), the groups' mean and variance from those, and a pass
 * that writes (x - mean) / sqrt(var + eps) * weight[c] + bias[c], rounded to bfloat16 (nearest,
 * ties to even, as torch rounds). Both passes run along the contiguous channels, so they vectorise.
 * With act = 1 the second pass also applies SiLU, y / (1 + exp(-y)), to the rounded y and rounds
 * again — torch's GroupNorm then SiLU, without a third pass over the tensor.
 *
 * Layout: x and y [B, HW, C] (a channels-last [B, C, H, W] in memory), C = G * (C / G) channels,
 * group g = channels g C/G ... (g + 1) C/G - 1 (torch's grouping); weight and bias [C] in float32.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* 512-bit vectors where the CPU has them (GCC's default stops at 256): the passes are short and
 * per channel, so each lane sums the same values in the same order either way (the same result
 * bit for bit); the UNet call at 32 px takes 5-12 % less (docs/RESULTS.md, Speed). */
#pragma GCC target("prefer-vector-width=512")
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#define PARALLEL_FOR _Pragma("omp parallel for num_threads(threads) schedule(static)")
#else
#define PARALLEL_FOR
#endif

static inline float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t float_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* bfloat16 rounding of a float, as a float */
static inline float round_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

/* a * b + c, fused where the CPU has FMA (elsewhere fmaf would be a slow library call) */
#ifdef __FMA__
#define MADD(a, b, c) fmaf(a, b, c)
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* exp(v) within a few float ulps for v in [-87, 88] (clamped outside), written so that the loops
 * calling it vectorise (libm's expf does not under -std=c99): 2^n by the exponent bits, e^r by a
 * degree-6 polynomial on |r| <= ln 2 / 2 (Horner). */
static inline float exp_approx(float v) {
    v = v < -87.0f ? -87.0f : (v > 88.0f ? 88.0f : v);
    float n = (v * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = MADD(n, 2.12194440e-4f, MADD(n, -0.693359375f, v));    /* v - n ln 2, in two parts */
    float p = MADD(MADD(MADD(MADD(MADD(1.39605457e-3f, r, 8.33336823e-3f), r, 4.16664593e-2f), r, 1.66666672e-1f),
                        r, 0.5f), r, 1.0f);
    p = MADD(p, r, 1.0f);
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#define CHUNK 64 /* rows summed in float before their sums join the double totals */

/* One image; ACT is a constant at each call below, so each case gets its own loops. */
static inline __attribute__((always_inline)) void image_(const uint16_t *xb, int64_t HW, int64_t C, int64_t G,
                                                         const float *weight, const float *bias, double eps,
                                                         uint16_t *yb, const int ACT) {
    int64_t cg = C / G;
    /* Per channel, along the rows (contiguous: the loops vectorise), of v - k[c] with k[c] the
     * channel's first value: shifted sums keep the variance exact when the mean is large. */
    double sum[C], sq[C];
    float k[C], s[C], q[C], scale[C], centre[C];
    for (int64_t c = 0; c < C; ++c) {
        k[c] = bf16_to_float(xb[c]);
        sum[c] = sq[c] = 0.0;
    }
    for (int64_t i0 = 0; i0 < HW; i0 += CHUNK) {
        int64_t i1 = i0 + CHUNK < HW ? i0 + CHUNK : HW;
        for (int64_t c = 0; c < C; ++c) s[c] = q[c] = 0.0f;
        for (int64_t i = i0; i < i1; ++i) {
            const uint16_t *row = xb + i * C;
            for (int64_t c = 0; c < C; ++c) {
                float v = bf16_to_float(row[c]) - k[c];
                s[c] += v;
                q[c] += v * v;
            }
        }
        for (int64_t c = 0; c < C; ++c) {
            sum[c] += s[c];
            sq[c] += q[c];
        }
    }
    double n = (double)HW;
    for (int64_t g = 0; g < G; ++g) { /* the group's mean and variance from its channels' */
        double mean = 0.0, var = 0.0;
        for (int64_t c = g * cg; c < (g + 1) * cg; ++c) mean += k[c] + sum[c] / n;
        mean /= (double)cg;
        for (int64_t c = g * cg; c < (g + 1) * cg; ++c) {
            double d = sum[c] / n, vc = sq[c] / n - d * d, off = k[c] + d - mean;
            var += (vc > 0.0 ? vc : 0.0) + off * off;
        }
        var /= (double)cg;
        float rstd = (float)(1.0 / sqrt(var + eps));
        for (int64_t c = g * cg; c < (g + 1) * cg; ++c) {
            scale[c] = rstd * weight[c];
            centre[c] = (float)mean;
        }
    }
    for (int64_t i = 0; i < HW; ++i) {
        const uint16_t *row = xb + i * C;
        uint16_t *out = yb + i * C;
        for (int64_t c = 0; c < C; ++c) {
            float u = (bf16_to_float(row[c]) - centre[c]) * scale[c] + bias[c];
            if (ACT) {
                u = round_bf16(u);
                u = u / (1.0f + exp_approx(-u));
            }
            out[c] = float_to_bf16(u);
        }
    }
}

void group_norm_channels_last_bf16(const uint16_t *x, int64_t B, int64_t HW, int64_t C, int64_t G,
                                   const float *weight, const float *bias, double eps, int act, uint16_t *y,
                                   int threads) {
    PARALLEL_FOR
    for (int64_t b = 0; b < B; ++b) {
        if (act)
            image_(x + b * HW * C, HW, C, G, weight, bias, eps, y + b * HW * C, 1);
        else
            image_(x + b * HW * C, HW, C, G, weight, bias, eps, y + b * HW * C, 0);
    }
}
