/* GroupNorm of a channels-last bfloat16 tensor, inference only.
 *
 * oneDNN's bfloat16 convolutions hand out channels-last tensors, and torch's CPU GroupNorm on that
 * layout takes 2-4x its time on a contiguous one (docs/RESULTS.md, Speed); a small UNet spends a
 * sixth of its call there. Here each image is one task: a pass along its rows (pixels) summing
 * every channel and its square (shifted by the channel's first value; in float over 64 rows, then
 * in double), the groups' mean and variance from those, and a pass
 * that writes (x - mean) / sqrt(var + eps) * weight[c] + bias[c], rounded to bfloat16 (nearest,
 * ties to even, as torch rounds). Both passes run along the contiguous channels, so they vectorise.
 *
 * Layout: x and y [B, HW, C] (a channels-last [B, C, H, W] in memory), C = G * (C / G) channels,
 * group g = channels g C/G ... (g + 1) C/G - 1 (torch's grouping); weight and bias [C] in float32.
 */
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

#define CHUNK 64 /* rows summed in float before their sums join the double totals */

void group_norm_channels_last_bf16(const uint16_t *x, int64_t B, int64_t HW, int64_t C, int64_t G,
                                   const float *weight, const float *bias, double eps, uint16_t *y,
                                   int threads) {
    int64_t cg = C / G;
    PARALLEL_FOR
    for (int64_t b = 0; b < B; ++b) {
        const uint16_t *xb = x + b * HW * C;
        uint16_t *yb = y + b * HW * C;
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
            for (int64_t c = 0; c < C; ++c)
                out[c] = float_to_bf16((bf16_to_float(row[c]) - centre[c]) * scale[c] + bias[c]);
        }
    }
}
