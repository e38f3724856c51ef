/* A dense grid's trilinear value and spatial Jacobian, forward and backward, one point at a time.
 *
 * The same arithmetic as the eager path of trilinear.py (torch's lerp formula, the same clamping
 * and cell choice), but each point's 8 corners stay in registers: no [F, 8N] intermediate arrays,
 * which is what makes the eager version memory-bound. Compiled on first use by
 * dreamfusion3d/kernels/__init__.py with the system's C compiler and loaded with ctypes; nothing
 * here is needed when no compiler is present (the eager path runs instead).
 *
 * Layouts (all contiguous): the grid point-major, [D, H, W, F] (voxel (z, y, x) at row
 * (z H + y) W + x), so that a corner's F features are adjacent; points [N, 3] (x, y, z) in [-1, 1]
 * (outside: clamped, zero derivative along that axis); value [N, F]; jac [N, F, 3].
 * Backward: grad_value [N, F] and grad_jac [N, F, 3] (either may be NULL), grad_grid [D, H, W, F]
 * accumulated in place (zeroed by the caller); points in order, corners in order, so the sums are
 * the same on every run.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* With OpenMP (-fopenmp) the points are shared out over `threads` (a parameter of each function);
 * without it the loops run serially. */
#ifdef _OPENMP
#define PARALLEL_FOR _Pragma("omp parallel for num_threads(threads) schedule(static)")
#else
#define PARALLEL_FOR
#endif

#define DEFINE_KERNELS(T, SUFFIX)                                                                     \
static inline T lerp_##SUFFIX(T a, T b, T w) {                                                        \
    /* torch.lerp: a + w (b - a) for |w| < 0.5, else b - (b - a)(1 - w) */                            \
    T d = b - a;                                                                                      \
    return (fabs((double)w) < 0.5) ? a + w * d : b - d * ((T)1 - w);                                  \
}                                                                                                     \
                                                                                                      \
static inline void cell_##SUFFIX(const T *p, int64_t D, int64_t H, int64_t W, int64_t *base, T frac[3], T slope[3]) { \
    int64_t sides[3] = {W, H, D};                                                                        \
    int64_t c[3];                                                                                        \
    for (int k = 0; k < 3; ++k) {                                                                     \
        T scale = (T)(sides[k] - 1) * (T)0.5;                                                         \
        T x = p[k];                                                                                   \
        T xc = x < (T)-1 ? (T)-1 : (x > (T)1 ? (T)1 : x);                                             \
        T pos = (xc + (T)1) * scale;                                                                  \
        T cf = floor(pos);                                                                            \
        if (cf > (T)(sides[k] - 2)) cf = (T)(sides[k] - 2);                                           \
        if (cf < (T)0) cf = (T)0;                                                                     \
        c[k] = (int64_t)cf;                                                                              \
        frac[k] = pos - cf;                                                                           \
        slope[k] = (fabs((double)x) <= 1.0) ? scale : (T)0;                                           \
    }                                                                                                 \
    *base = c[2] * H * W + c[1] * W + c[0];                                                           \
}                                                                                                     \
                                                                                                      \
void trilinear_forward_##SUFFIX(const T *grid, int64_t F, int64_t D, int64_t H, int64_t W, const T *points, int64_t N, \
                                T *value, T *jac, int threads) {                                      \
    PARALLEL_FOR                                                                                      \
    for (int64_t n = 0; n < N; ++n) {                                                                    \
        int64_t base; T fr[3], sl[3];                                                                    \
        cell_##SUFFIX(points + 3 * n, D, H, W, &base, fr, sl);                                        \
        int64_t off[8] = {0, 1, W, W + 1, H * W, H * W + 1, H * W + W, H * W + W + 1};                   \
        const T *c[8];                                                                                \
        for (int k = 0; k < 8; ++k) c[k] = grid + (base + off[k]) * F;                                \
        T *val = value + n * F, *jn = jac + n * F * 3;                                                \
        for (int64_t f = 0; f < F; ++f) {                                                                \
            T cx[2][2], ex[2][2];                                                                     \
            for (int z = 0; z < 2; ++z)                                                               \
                for (int y = 0; y < 2; ++y) {                                                         \
                    T c0 = c[4 * z + 2 * y][f], c1 = c[4 * z + 2 * y + 1][f];                         \
                    cx[z][y] = lerp_##SUFFIX(c0, c1, fr[0]);                                          \
                    ex[z][y] = c1 - c0;                                                               \
                }                                                                                     \
            T cxy[2], exy[2], ey[2];                                                                  \
            for (int z = 0; z < 2; ++z) {                                                             \
                cxy[z] = lerp_##SUFFIX(cx[z][0], cx[z][1], fr[1]);                                    \
                exy[z] = lerp_##SUFFIX(ex[z][0], ex[z][1], fr[1]);                                    \
                ey[z] = cx[z][1] - cx[z][0];                                                          \
            }                                                                                         \
            val[f] = lerp_##SUFFIX(cxy[0], cxy[1], fr[2]);                                            \
            jn[3 * f + 0] = lerp_##SUFFIX(exy[0], exy[1], fr[2]) * sl[0];                             \
            jn[3 * f + 1] = lerp_##SUFFIX(ey[0], ey[1], fr[2]) * sl[1];                               \
            jn[3 * f + 2] = (cxy[1] - cxy[0]) * sl[2];                                                \
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
static void backward_range_##SUFFIX(int64_t F, int64_t D, int64_t H, int64_t W, const T *points, int64_t lo, int64_t hi, \
                                    const T *grad_value, const T *grad_jac, T *grad_grid) {          \
    for (int64_t n = lo; n < hi; ++n) {                                                                  \
        int64_t base; T fr[3], sl[3];                                                                    \
        cell_##SUFFIX(points + 3 * n, D, H, W, &base, fr, sl);                                        \
        int64_t off[8] = {0, 1, W, W + 1, H * W, H * W + 1, H * W + W, H * W + W + 1};                   \
        T *c[8];                                                                                      \
        for (int k = 0; k < 8; ++k) c[k] = grad_grid + (base + off[k]) * F;                           \
        T zw[2] = {(T)1 - fr[2], fr[2]}, yw[2] = {(T)1 - fr[1], fr[1]}, xw[2] = {(T)1 - fr[0], fr[0]}; \
        const T *gvn = grad_value ? grad_value + n * F : NULL, *gjn = grad_jac ? grad_jac + n * F * 3 : NULL; \
        for (int64_t f = 0; f < F; ++f) {                                                                \
            T gv = gvn ? gvn[f] : (T)0;                                                               \
            T gx = gjn ? gjn[3 * f + 0] * sl[0] : (T)0;                                               \
            T gy = gjn ? gjn[3 * f + 1] * sl[1] : (T)0;                                               \
            T gz = gjn ? gjn[3 * f + 2] * sl[2] : (T)0;                                               \
            for (int z = 0; z < 2; ++z) {                                                             \
                T g_cxy = gv * zw[z] + (z ? gz : -gz);                                                \
                T g_exy = gx * zw[z], g_ey = gy * zw[z];                                              \
                for (int y = 0; y < 2; ++y) {                                                         \
                    T g_cx = g_cxy * yw[y] + (y ? g_ey : -g_ey);                                      \
                    T g_ex = g_exy * yw[y];                                                           \
                    c[4 * z + 2 * y][f] += g_cx * xw[0] - g_ex;                                       \
                    c[4 * z + 2 * y + 1][f] += g_cx * xw[1] + g_ex;                                   \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* Points split into `threads` contiguous ranges; range 0 adds into grad_grid, range p > 0 into        \
 * scratch + (p - 1) V F (zeroed by the caller), which are then added in order: the same sums        \
 * whatever the thread timing. */                                                                     \
void trilinear_backward_##SUFFIX(int64_t F, int64_t D, int64_t H, int64_t W, const T *points, int64_t N,            \
                                 const T *grad_value, const T *grad_jac, T *grad_grid, T *scratch,    \
                                 int threads) {                                                       \
    int64_t VF = D * H * W * F;                                                                          \
    PARALLEL_FOR                                                                                      \
    for (int p = 0; p < threads; ++p) {                                                               \
        int64_t lo = N * p / threads, hi = N * (p + 1) / threads;                                        \
        backward_range_##SUFFIX(F, D, H, W, points, lo, hi, grad_value, grad_jac,                     \
                                p == 0 ? grad_grid : scratch + (p - 1) * VF);                         \
    }                                                                                                 \
    for (int p = 1; p < threads; ++p) {                                                               \
        const T *src = scratch + (p - 1) * VF;                                                        \
        for (int64_t i = 0; i < VF; ++i) grad_grid[i] += src[i];                                         \
    }                                                                                                 \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)
