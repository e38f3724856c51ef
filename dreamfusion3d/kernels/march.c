/* The CPU ray march through the occupancy grid (rendering/sampler.py's march_cpu), one ray at a time.
 *
 * The same arithmetic as the eager march: sample k of ray r sits at
 * t = t_near[r] + (k + jitter[r]) * step and at p = o + t d (float32, no fused multiply-adds), it
 * is valid while t < t_far[r] on a ray that hits the box, and it is kept when its cell of the
 * occupancy grid (binaries [X, Y, Z], over the box aabb[6]) is set. Only the steps
 * first[r] .. first[r] + count[r] - 1 are looked at (the caller's bounding box of the occupied
 * cells); num_dense counts the valid steps of the whole march. march_count_f32 counts the kept
 * samples per ray, march_fill_f32 writes them from offset[r] on, in order along each ray.
 * Compiled and loaded by dreamfusion3d/kernels/__init__.py.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _OPENMP
#define PARALLEL_FOR _Pragma("omp parallel for num_threads(threads) schedule(static)")
#else
#define PARALLEL_FOR
#endif

static inline int occupied_at(const float p[3], const unsigned char *bin, int64_t X, int64_t Y, int64_t Z,
                              const float *aabb) {
    int64_t res[3] = {X, Y, Z}, c[3];
    for (int k = 0; k < 3; ++k) {
        float v = (p[k] - aabb[k]) / (aabb[3 + k] - aabb[k]) * (float)res[k];
        int64_t ci = (int64_t)floorf(v);
        if (ci < 0) ci = 0;
        if (ci > res[k] - 1) ci = res[k] - 1;
        c[k] = ci;
    }
    return bin[(c[0] * Y + c[1]) * Z + c[2]] != 0;
}

/* Sample k of ray r: its t, its point, whether it is valid and kept. */
static inline int sample_at(const float *o, const float *d, float t_near, float t_far, int hit, float jit,
                            float step, int64_t k, const unsigned char *bin, int64_t X, int64_t Y, int64_t Z,
                            const float *aabb, float *t_out, float p[3]) {
    float t = t_near + ((float)k + jit) * step;
    *t_out = t;
    if (!hit || !(t < t_far)) return 0;
    for (int i = 0; i < 3; ++i) p[i] = o[i] + t * d[i];
    return bin == NULL || occupied_at(p, bin, X, Y, Z, aabb);
}

void march_count_f32(const float *origins, const float *dirs, int64_t R, const float *t_near, const float *t_far,
                     const unsigned char *hit, const float *jitter, float step, int64_t steps, const int64_t *first,
                     const int64_t *count, const unsigned char *bin, int64_t X, int64_t Y, int64_t Z, const float *aabb,
                     int64_t *kept, int64_t *dense, int threads) {
    PARALLEL_FOR
    for (int64_t r = 0; r < R; ++r) {
        int64_t n_kept = 0, n_dense = 0;
        float t, p[3];
        for (int64_t k = 0; k < steps; ++k)  /* the whole march's valid steps */
            n_dense += hit[r] && (t_near[r] + ((float)k + jitter[r]) * step < t_far[r]);
        for (int64_t m = 0; m < count[r]; ++m)
            n_kept += sample_at(origins + 3 * r, dirs + 3 * r, t_near[r], t_far[r], hit[r], jitter[r], step,
                                first[r] + m, bin, X, Y, Z, aabb, &t, p);
        kept[r] = n_kept;
        dense[r] = n_dense;
    }
}

void march_fill_f32(const float *origins, const float *dirs, int64_t R, const float *t_near, const float *t_far,
                    const unsigned char *hit, const float *jitter, float step, const int64_t *first,
                    const int64_t *count, const unsigned char *bin, int64_t X, int64_t Y, int64_t Z, const float *aabb,
                    const int64_t *offset, int64_t *ray_out, float *t_out, float *pos_out, int64_t *slot_out, int threads) {
    PARALLEL_FOR
    for (int64_t r = 0; r < R; ++r) {
        int64_t i = offset[r], slot = 0;
        float t, p[3];
        for (int64_t m = 0; m < count[r]; ++m) {
            if (!sample_at(origins + 3 * r, dirs + 3 * r, t_near[r], t_far[r], hit[r], jitter[r], step,
                           first[r] + m, bin, X, Y, Z, aabb, &t, p))
                continue;
            ray_out[i] = r;
            t_out[i] = t;
            pos_out[3 * i] = p[0], pos_out[3 * i + 1] = p[1], pos_out[3 * i + 2] = p[2];
            slot_out[i] = slot++;
            ++i;
        }
    }
}
