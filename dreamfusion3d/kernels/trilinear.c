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
/* One point's F values and Jacobian rows from its cell's 8 corners. */                               \
static inline void interp_point_##SUFFIX(const T *grid, int64_t F, int64_t D, int64_t H, int64_t W, const T *p, \
                                         T *val, T *jn) {                                             \
    int64_t base; T fr[3], sl[3];                                                                     \
    cell_##SUFFIX(p, D, H, W, &base, fr, sl);                                                         \
    int64_t off[8] = {0, 1, W, W + 1, H * W, H * W + 1, H * W + W, H * W + W + 1};                    \
    const T *c[8];                                                                                    \
    for (int k = 0; k < 8; ++k) c[k] = grid + (base + off[k]) * F;                                    \
    for (int64_t f = 0; f < F; ++f) {                                                                 \
        T cx[2][2], ex[2][2];                                                                         \
        for (int z = 0; z < 2; ++z)                                                                   \
            for (int y = 0; y < 2; ++y) {                                                             \
                T c0 = c[4 * z + 2 * y][f], c1 = c[4 * z + 2 * y + 1][f];                             \
                cx[z][y] = lerp_##SUFFIX(c0, c1, fr[0]);                                              \
                ex[z][y] = c1 - c0;                                                                   \
            }                                                                                         \
        T cxy[2], exy[2], ey[2];                                                                      \
        for (int z = 0; z < 2; ++z) {                                                                 \
            cxy[z] = lerp_##SUFFIX(cx[z][0], cx[z][1], fr[1]);                                        \
            exy[z] = lerp_##SUFFIX(ex[z][0], ex[z][1], fr[1]);                                        \
            ey[z] = cx[z][1] - cx[z][0];                                                              \
        }                                                                                             \
        val[f] = lerp_##SUFFIX(cxy[0], cxy[1], fr[2]);                                                \
        jn[3 * f + 0] = lerp_##SUFFIX(exy[0], exy[1], fr[2]) * sl[0];                                 \
        jn[3 * f + 1] = lerp_##SUFFIX(ey[0], ey[1], fr[2]) * sl[1];                                   \
        jn[3 * f + 2] = (cxy[1] - cxy[0]) * sl[2];                                                    \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* One point's gradient (gvn [F] on the values, gjn [F, 3] on the Jacobian; either may be NULL)      \
 * added into its cell's 8 corners of grad_grid. */                                                   \
static inline void scatter_point_##SUFFIX(int64_t F, int64_t D, int64_t H, int64_t W, const T *p,     \
                                          const T *gvn, const T *gjn, T *grad_grid) {                 \
    int64_t base; T fr[3], sl[3];                                                                     \
    cell_##SUFFIX(p, D, H, W, &base, fr, sl);                                                         \
    int64_t off[8] = {0, 1, W, W + 1, H * W, H * W + 1, H * W + W, H * W + W + 1};                    \
    T *c[8];                                                                                          \
    for (int k = 0; k < 8; ++k) c[k] = grad_grid + (base + off[k]) * F;                               \
    T zw[2] = {(T)1 - fr[2], fr[2]}, yw[2] = {(T)1 - fr[1], fr[1]}, xw[2] = {(T)1 - fr[0], fr[0]};    \
    for (int64_t f = 0; f < F; ++f) {                                                                 \
        T gv = gvn ? gvn[f] : (T)0;                                                                   \
        T gx = gjn ? gjn[3 * f + 0] * sl[0] : (T)0;                                                   \
        T gy = gjn ? gjn[3 * f + 1] * sl[1] : (T)0;                                                   \
        T gz = gjn ? gjn[3 * f + 2] * sl[2] : (T)0;                                                   \
        for (int z = 0; z < 2; ++z) {                                                                 \
            T g_cxy = gv * zw[z] + (z ? gz : -gz);                                                    \
            T g_exy = gx * zw[z], g_ey = gy * zw[z];                                                  \
            for (int y = 0; y < 2; ++y) {                                                             \
                T g_cx = g_cxy * yw[y] + (y ? g_ey : -g_ey);                                          \
                T g_ex = g_exy * yw[y];                                                               \
                c[4 * z + 2 * y][f] += g_cx * xw[0] - g_ex;                                           \
                c[4 * z + 2 * y + 1][f] += g_cx * xw[1] + g_ex;                                       \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
void trilinear_forward_##SUFFIX(const T *grid, int64_t F, int64_t D, int64_t H, int64_t W, const T *points, int64_t N, \
                                T *value, T *jac, int threads) {                                      \
    PARALLEL_FOR                                                                                      \
    for (int64_t n = 0; n < N; ++n)                                                                   \
        interp_point_##SUFFIX(grid, F, D, H, W, points + 3 * n, value + n * F, jac + n * F * 3);      \
}                                                                                                     \
                                                                                                      \
static void backward_range_##SUFFIX(int64_t F, int64_t D, int64_t H, int64_t W, const T *points, int64_t lo, int64_t hi, \
                                    const T *grad_value, const T *grad_jac, T *grad_grid) {          \
    for (int64_t n = lo; n < hi; ++n)                                                                 \
        scatter_point_##SUFFIX(F, D, H, W, points + 3 * n, grad_value ? grad_value + n * F : NULL,    \
                               grad_jac ? grad_jac + n * F * 3 : NULL, grad_grid);                    \
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

/* A dense grid followed by a one-hidden-layer ReLU MLP, stored as torch.nn.Linear stores it (w1
 * [Hd, F], b1 [Hd], w2 [O, Hd], b2 [O]): out [N, O] = w2 relu(w1 f(x) + b1) + b2 and gq [N, 3], the
 * gradient of out₀ in the point x through the grid's Jacobian, J(x)ᵀ w1ᵀ (w2₀ ⊙ [a > 0]). The
 * backward takes gradients on both and needs no second derivative of ReLU (zero almost everywhere):
 * a signed-distance field's normals and eikonal term reach the grid and the MLP in one first-order
 * pass, with no [N, Hd] arrays in memory.
 *
 * Points go in tiles of TILE, laid out lane-major ([unit][lane]): every loop of the MLP runs along
 * the tile's lanes with a weight broadcast, so it vectorises without horizontal sums; the sums over
 * points of the weight gradients are `omp simd` reductions (reassociated: within float rounding of
 * the eager path, which is MKL's order anyway). The grid's gather and scatter stay one point at a
 * time. Partial tiles are padded with zero lanes, which add nothing. */
#define TILE 32
#ifdef _OPENMP
#define PRAGMA(x) _Pragma(#x)
#define SIMD_SUM(s) PRAGMA(omp simd reduction(+:s))
#define SIMD _Pragma("omp simd")
#else
#define SIMD_SUM(s)
#define SIMD
#endif

#define DEFINE_HEAD(T, SUFFIX)                                                                        \
/* A point's 8 corner rows (idx, corner c = 4 bz + 2 by + bx) and the weights of its value (w) and  \
 * of its derivatives along x, y, z (wd): the same trilinear interpolant as interp_point, written as   \
 * sums over corners so that the loops over features vectorise. */                                   \
static inline void corners_##SUFFIX(const T *p, int64_t D, int64_t H, int64_t W, int64_t idx[8],      \
                                    T w[8], T wd[3][8]) {                                             \
    int64_t base; T fr[3], sl[3];                                                                     \
    cell_##SUFFIX(p, D, H, W, &base, fr, sl);                                                         \
    for (int c = 0; c < 8; ++c) {                                                                    \
        int bx = c & 1, by = (c >> 1) & 1, bz = c >> 2;                                               \
        T wx = bx ? fr[0] : (T)1 - fr[0], wy = by ? fr[1] : (T)1 - fr[1], wz = bz ? fr[2] : (T)1 - fr[2]; \
        idx[c] = base + bz * H * W + by * W + bx;                                                     \
        w[c] = wx * wy * wz;                                                                          \
        wd[0][c] = (bx ? sl[0] : -sl[0]) * wy * wz;                                                   \
        wd[1][c] = (by ? sl[1] : -sl[1]) * wx * wz;                                                   \
        wd[2][c] = (bz ? sl[2] : -sl[2]) * wx * wy;                                                   \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* The tile's grid values and Jacobian, lane-major; inlined with F a constant where it is 8. */       \
static inline __attribute__((always_inline)) void gather_tile_##SUFFIX(const T *grid, int64_t F,      \
        int64_t D, int64_t H, int64_t W, const T *points, int64_t np, T (*restrict val)[TILE],        \
        T (*restrict jac)[TILE]) {                                                                    \
    T v[4][F]; /* value, d/dx, d/dy, d/dz */                                                          \
    for (int64_t p = 0; p < TILE; ++p) {                                                              \
        for (int r = 0; r < 4; ++r)                                                                   \
            for (int64_t f = 0; f < F; ++f) v[r][f] = (T)0;                                           \
        if (p < np) {                                                                                 \
            int64_t idx[8]; T w[8], wd[3][8];                                                         \
            corners_##SUFFIX(points + 3 * p, D, H, W, idx, w, wd);                                    \
            for (int c = 0; c < 8; ++c) {                                                             \
                const T *row = grid + idx[c] * F;                                                     \
                SIMD                                                                                  \
                for (int64_t f = 0; f < F; ++f) {                                                     \
                    v[0][f] += w[c] * row[f];                                                         \
                    v[1][f] += wd[0][c] * row[f];                                                     \
                    v[2][f] += wd[1][c] * row[f];                                                     \
                    v[3][f] += wd[2][c] * row[f];                                                     \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
        for (int64_t f = 0; f < F; ++f) {                                                             \
            val[f][p] = v[0][f];                                                                      \
            for (int k = 0; k < 3; ++k) jac[k * F + f][p] = v[k + 1][f];                              \
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* The tile's grid values val [F][TILE], Jacobian jac [3][F][TILE], hidden h = relu(a) [Hd][TILE],    \
 * ReLU mask m [Hd][TILE] and q = ∂out₀/∂f [F][TILE], for the tile's np points (lanes past np: 0). */                \
static void head_tile_##SUFFIX(const T *grid, int64_t F, int64_t D, int64_t H, int64_t W,             \
                               const T *w1, const T *b1, const T *w2, int64_t Hd, const T *points,    \
                               int64_t np, T (*restrict val)[TILE], T (*restrict jac)[TILE],          \
                               T (*restrict h)[TILE], T (*restrict m)[TILE], T (*restrict q)[TILE]) { \
    if (F == 8) gather_tile_##SUFFIX(grid, 8, D, H, W, points, np, val, jac);                         \
    else gather_tile_##SUFFIX(grid, F, D, H, W, points, np, val, jac);                                \
    for (int64_t j = 0; j < Hd; ++j) { /* local accumulators: kept in vector registers */             \
        T a[TILE];                                                                                    \
        for (int p = 0; p < TILE; ++p) a[p] = b1[j];                                                  \
        for (int64_t f = 0; f < F; ++f) {                                                             \
            T w = w1[j * F + f];                                                                      \
            for (int p = 0; p < TILE; ++p) a[p] += w * val[f][p];                                     \
        }                                                                                             \
        for (int p = 0; p < TILE; ++p) {                                                              \
            m[j][p] = a[p] > (T)0 ? (T)1 : (T)0;                                                      \
            h[j][p] = a[p] > (T)0 ? a[p] : (T)0;                                                      \
        }                                                                                             \
    }                                                                                                 \
    for (int64_t f = 0; f < F; ++f) {                                                                 \
        T acc[TILE];                                                                                  \
        for (int p = 0; p < TILE; ++p) acc[p] = (T)0;                                                 \
        for (int64_t j = 0; j < Hd; ++j) {                                                            \
            T w = w1[j * F + f] * w2[j];                                                              \
            for (int p = 0; p < TILE; ++p) acc[p] += w * m[j][p];                                     \
        }                                                                                             \
        for (int p = 0; p < TILE; ++p) q[f][p] = acc[p];                                              \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
void dense_head_forward_##SUFFIX(const T *grid, int64_t F, int64_t D, int64_t H, int64_t W,           \
                                 const T *w1, const T *b1, const T *w2, const T *b2, int64_t Hd,      \
                                 int64_t O, const T *points, int64_t N, T *out, T *gq, int threads) { \
    int64_t tiles = (N + TILE - 1) / TILE;                                                            \
    PARALLEL_FOR                                                                                      \
    for (int64_t t = 0; t < tiles; ++t) {                                                             \
        int64_t n0 = t * TILE, np = N - n0 < TILE ? N - n0 : TILE;                                    \
        T val[F][TILE], jac[3 * F][TILE], h[Hd][TILE], m[Hd][TILE], q[F][TILE], acc[TILE];            \
        head_tile_##SUFFIX(grid, F, D, H, W, w1, b1, w2, Hd, points + 3 * n0, np, val, jac, h, m, q); \
        for (int64_t o = 0; o < O; ++o) {                                                             \
            for (int p = 0; p < TILE; ++p) acc[p] = b2[o];                                            \
            for (int64_t j = 0; j < Hd; ++j) {                                                        \
                T w = w2[o * Hd + j];                                                                 \
                for (int p = 0; p < TILE; ++p) acc[p] += w * h[j][p];                                 \
            }                                                                                         \
            for (int64_t p = 0; p < np; ++p) out[(n0 + p) * O + o] = acc[p];                          \
        }                                                                                             \
        for (int k = 0; k < 3; ++k) {                                                                 \
            for (int p = 0; p < TILE; ++p) acc[p] = (T)0;                                             \
            for (int64_t f = 0; f < F; ++f)                                                           \
                for (int p = 0; p < TILE; ++p) acc[p] += q[f][p] * jac[k * F + f][p];                 \
            for (int64_t p = 0; p < np; ++p) gq[(n0 + p) * 3 + k] = acc[p];                           \
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* The tile's gradient into the grid, one point at a time (inlined with F = 8 a constant). */         \
static inline __attribute__((always_inline)) void scatter_tile_##SUFFIX(int64_t F, int64_t D,         \
        int64_t H, int64_t W, const T *points, int64_t np, T (*restrict dv)[TILE],                    \
        T (*restrict q)[TILE], T (*restrict gk)[TILE], T *restrict gg) {                              \
    T dv1[F], dj1[3 * F];                                                                             \
    for (int64_t p = 0; p < np; ++p) { /* the grid's share: corner c gets w dv + wd · (q gk) */       \
        int64_t idx[8]; T w[8], wd[3][8];                                                             \
        corners_##SUFFIX(points + 3 * p, D, H, W, idx, w, wd);                                        \
        for (int64_t f = 0; f < F; ++f) {                                                             \
            dv1[f] = dv[f][p];                                                                        \
            for (int k = 0; k < 3; ++k) dj1[k * F + f] = q[f][p] * gk[k][p];                          \
        }                                                                                             \
        for (int c = 0; c < 8; ++c) {                                                                 \
            T *row = gg + idx[c] * F;                                                                 \
            SIMD                                                                                      \
            for (int64_t f = 0; f < F; ++f)                                                           \
                row[f] += w[c] * dv1[f] + wd[0][c] * dj1[f] + wd[1][c] * dj1[F + f]                   \
                          + wd[2][c] * dj1[2 * F + f];                                                \
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* Gradients g_out [N, O] and g_gq [N, 3] (either may be NULL) to grad_grid [D, H, W, F] and          \
 * grad_params [threads, P] (w1, b1, w2, b2 flattened, P = Hd F + Hd + O Hd + O), both zeroed by the  \
 * caller. Tiles split into `threads` contiguous ranges; range t adds into its own grid (grad_grid    \
 * or grid_scratch + (t - 1) V F) and parameter row t, which are added in order at the end. */      \
void dense_head_backward_##SUFFIX(const T *grid, int64_t F, int64_t D, int64_t H, int64_t W,          \
                                  const T *w1, const T *b1, const T *w2, const T *b2, int64_t Hd,     \
                                  int64_t O, const T *points, int64_t N, const T *g_out,              \
                                  const T *g_gq, T *grad_grid, T *grid_scratch, T *grad_params,       \
                                  int threads) {                                                      \
    (void)b2;                                                                                         \
    int64_t VF = D * H * W * F, P = Hd * F + Hd + O * Hd + O, tiles = (N + TILE - 1) / TILE;          \
    PARALLEL_FOR                                                                                      \
    for (int t = 0; t < threads; ++t) {                                                               \
        int64_t lo = tiles * t / threads, hi = tiles * (t + 1) / threads;                             \
        T *gg = t == 0 ? grad_grid : grid_scratch + (t - 1) * VF;                                     \
        T *dw1 = grad_params + t * P, *db1 = dw1 + Hd * F, *dw2 = db1 + Hd, *db2 = dw2 + O * Hd;      \
        T val[F][TILE], jac[3 * F][TILE], h[Hd][TILE], m[Hd][TILE], q[F][TILE];                       \
        T go[O][TILE], gk[3][TILE], dq[F][TILE], dv[F][TILE], du[TILE], dh[TILE], u[TILE];            \
        for (int64_t tile = lo; tile < hi; ++tile) {                                                  \
            int64_t n0 = tile * TILE, np = N - n0 < TILE ? N - n0 : TILE;                             \
            head_tile_##SUFFIX(grid, F, D, H, W, w1, b1, w2, Hd, points + 3 * n0, np, val, jac, h, m, q); \
            for (int p = 0; p < TILE; ++p) {                                                          \
                for (int64_t o = 0; o < O; ++o) go[o][p] = g_out && p < np ? g_out[(n0 + p) * O + o] : (T)0; \
                for (int k = 0; k < 3; ++k) gk[k][p] = g_gq && p < np ? g_gq[(n0 + p) * 3 + k] : (T)0; \
            }                                                                                         \
            for (int64_t f = 0; f < F; ++f)                                                           \
                for (int p = 0; p < TILE; ++p) {                                                      \
                    dq[f][p] = gk[0][p] * jac[f][p] + gk[1][p] * jac[F + f][p] + gk[2][p] * jac[2 * F + f][p]; \
                    dv[f][p] = (T)0;                                                                  \
                }                                                                                     \
            for (int64_t o = 0; o < O; ++o) {                                                         \
                T s = (T)0;                                                                           \
                SIMD_SUM(s)                                                                           \
                for (int p = 0; p < TILE; ++p) s += go[o][p];                                         \
                db2[o] += s;                                                                          \
            }                                                                                         \
            for (int64_t j = 0; j < Hd; ++j) {                                                        \
                for (int p = 0; p < TILE; ++p) { du[p] = (T)0; dh[p] = (T)0; }                        \
                for (int64_t f = 0; f < F; ++f) {                                                     \
                    T w = w1[j * F + f];                                                              \
                    for (int p = 0; p < TILE; ++p) du[p] += w * dq[f][p];                             \
                }                                                                                     \
                for (int64_t o = 0; o < O; ++o) {                                                     \
                    T w = w2[o * Hd + j], s = (T)0;                                                   \
                    SIMD_SUM(s)                                                                       \
                    for (int p = 0; p < TILE; ++p) { dh[p] += w * go[o][p]; s += go[o][p] * h[j][p]; } \
                    dw2[o * Hd + j] += s;                                                             \
                }                                                                                     \
                T s_w2 = (T)0, s_b1 = (T)0;                                                           \
                SIMD_SUM(s_w2)                                                                        \
                for (int p = 0; p < TILE; ++p) s_w2 += m[j][p] * du[p]; /* q's dependence on w2₀ */   \
                dw2[j] += s_w2;                                                                       \
                for (int p = 0; p < TILE; ++p) { dh[p] *= m[j][p]; u[p] = m[j][p] * w2[j]; }          \
                SIMD_SUM(s_b1)                                                                        \
                for (int p = 0; p < TILE; ++p) s_b1 += dh[p];                                         \
                db1[j] += s_b1;                                                                       \
                for (int64_t f = 0; f < F; ++f) {                                                     \
                    T w = w1[j * F + f], s = (T)0;                                                    \
                    SIMD_SUM(s)                                                                       \
                    for (int p = 0; p < TILE; ++p) {                                                  \
                        s += u[p] * dq[f][p] + dh[p] * val[f][p];                                     \
                        dv[f][p] += w * dh[p];                                                        \
                    }                                                                                 \
                    dw1[j * F + f] += s;                                                              \
                }                                                                                     \
            }                                                                                         \
            if (F == 8) scatter_tile_##SUFFIX(8, D, H, W, points + 3 * n0, np, dv, q, gk, gg);        \
            else scatter_tile_##SUFFIX(F, D, H, W, points + 3 * n0, np, dv, q, gk, gg);               \
        }                                                                                             \
    }                                                                                                 \
    for (int t = 1; t < threads; ++t) {                                                               \
        const T *src = grid_scratch + (t - 1) * VF, *prm = grad_params + t * P;                       \
        for (int64_t i = 0; i < VF; ++i) grad_grid[i] += src[i];                                      \
        for (int64_t i = 0; i < P; ++i) grad_params[i] += prm[i];                                     \
    }                                                                                                 \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)
DEFINE_HEAD(float, f32)
DEFINE_HEAD(double, f64)
