/* cnnlab native CPU kernels, compiled on first use by cnnlab/native/__init__.py.
 *
 * Plain C99 + OpenMP, no PyTorch headers: the Python side passes pointers to
 * contiguous CPU tensors (ctypes, only from the custom ops of cnnlab/native/ops.py,
 * after one check of device, dtype, contiguity and sizes), so this builds in about a
 * second with the system compiler. Every entry point that allocates returns 0, or -1
 * when an allocation failed (the caller then computes the result with PyTorch). OpenMP resolves to the libgomp that torch has already loaded, so
 * these loops share torch's thread pool and its torch.set_num_threads setting.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif
#include "alloc.h"

/* Copy a finished row (in L1) to its place in a large output with non-temporal
 * stores where the CPU has them and the row is 32-byte aligned: the output of a
 * batch (25 MB at 224x224) is far larger than the cache, and plain stores would
 * first read every line they write. */
static void store_row(float *dst, const float *row, int n)
{
#ifdef __AVX__
    if (((uintptr_t)dst & 31) == 0 && n % 8 == 0) {
        for (int x = 0; x < n; x += 8) _mm256_stream_ps(dst + x, _mm256_loadu_ps(row + x));
        return;
    }
#endif
    memcpy(dst, row, sizeof(float) * (size_t)n);
}

int cnnlab_native_version(void) { return 2; }

/* Separable resampling of n uint8 images (h, w) to float (H, W).
 *
 * Output pixel (y, x) = scale * sum_i sum_j wy[y, i] wx[x, j] src[ys[y] + i, xs[x] + j] + shift,
 * where each output row/column has ky/kx taps starting at ys[y]/xs[x] (the nonzero
 * band of cnnlab.data.transforms.interpolation_matrix, padded with zero weights).
 * Horizontal pass into a per-thread (h, W) buffer, then the vertical pass, whose
 * inner loop over x is contiguous: the output is written once.
 */
int cnnlab_resample_u8(const uint8_t *src, float *dst, int64_t n, int h, int w, int H, int W,
                       const int32_t *ys, const float *wy, int ky,
                       const int32_t *xs, const float *wx, int kx,
                       float scale, float shift)
{
    int failed = 0;
    #pragma omp parallel
    {
        /* per thread: the image as float (h, w), the horizontal pass (h, W), one output row */
        float *buf = (float *)CNNLAB_MALLOC(sizeof(float)
                                            * ((size_t)h * w + ((size_t)h + 1) * W));
        float *img = buf, *tmp = buf + (size_t)h * w, *o = tmp + (size_t)h * W;
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < n; b++) {
            if (buf == NULL) {  /* out of memory: this thread's images are left undone */
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            const uint8_t *s = src + b * (int64_t)h * w;
            float *d = dst + b * (int64_t)H * W;
            for (int64_t i = 0; i < (int64_t)h * w; i++) img[i] = (float)s[i] * scale;
            for (int r = 0; r < h; r++) {
                const float *row = img + (int64_t)r * w;
                float *t = tmp + (int64_t)r * W;
                if (kx == 2) {  /* enlarging: two taps per output pixel */
                    for (int x = 0; x < W; x++)
                        t[x] = wx[2 * x] * row[xs[x]] + wx[2 * x + 1] * row[xs[x] + 1];
                } else {
                    for (int x = 0; x < W; x++) {
                        const float *p = row + xs[x], *c = wx + (int64_t)x * kx;
                        float acc = 0.f;
                        for (int j = 0; j < kx; j++) acc += c[j] * p[j];
                        t[x] = acc;
                    }
                }
            }
            for (int y = 0; y < H; y++) {
                const float *c = wy + (int64_t)y * ky;
                const float *t0 = tmp + (int64_t)ys[y] * W;
                float *drow = d + (int64_t)y * W;
                if (ky == 2) {
                    const float c0 = c[0], c1 = c[1];
                    const float *t1 = t0 + W;
#ifdef __AVX__
                    if (((uintptr_t)drow & 31) == 0 && W % 8 == 0) {  /* straight to memory */
                        const __m256 v0 = _mm256_set1_ps(c0), v1 = _mm256_set1_ps(c1);
                        const __m256 vs = _mm256_set1_ps(shift);
                        for (int x = 0; x < W; x += 8) {
                            __m256 v = _mm256_add_ps(_mm256_mul_ps(v0, _mm256_loadu_ps(t0 + x)),
                                                     _mm256_mul_ps(v1, _mm256_loadu_ps(t1 + x)));
                            _mm256_stream_ps(drow + x, _mm256_add_ps(v, vs));
                        }
                        continue;
                    }
#endif
                    for (int x = 0; x < W; x++) o[x] = c0 * t0[x] + c1 * t1[x] + shift;
                } else {
                    for (int x = 0; x < W; x++) o[x] = c[0] * t0[x] + shift;
                    for (int i = 1; i < ky; i++) {
                        const float ci = c[i], *ti = t0 + (int64_t)i * W;
                        for (int x = 0; x < W; x++) o[x] += ci * ti[x];
                    }
                }
                store_row(drow, o, W);
            }
        }
#ifdef __AVX__
        _mm_sfence();  /* this thread's streamed stores are visible before it returns */
#endif
        free(buf);
    }
    return failed ? -1 : 0;
}

/* ---------------------------------------------------------------------------
 * Sigmoid followed by k x k average pooling with stride k (LeNet's act + pool,
 * book 7.6), fused: the forward reads Z once and writes only the pooled output;
 * the backward recomputes sigmoid(Z) instead of keeping a second activation.
 *
 * Layout: `planes` planes of H rows; a row holds W pixels of C contiguous floats
 * (NCHW: planes = B*C, C = 1; NHWC: planes = B, C = channels). Floor mode: the
 * rows/columns past Ho*k, Wo*k are not pooled and get zero gradient.
 * ------------------------------------------------------------------------- */
#include <math.h>

#ifdef __AVX2__
#define CNNLAB_SIGMOID_GROUP 4

/* s = 1 / (1 + exp(-z)) on nv vectors of 8 floats (nv a compile-time constant), each
 * step applied to all nv before the next: one vector's exp is a ~70-cycle chain of
 * dependent operations, more than Zen 1's scheduler overlaps across loop iterations,
 * so stepping 4 vectors in lockstep hides most of that latency (benchmarks/results/lenet.md).
 * exp(x) = 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 (split in two constants),
 * p a degree-6 polynomial (Cephes' expf coefficients): ~1 ulp. The reciprocal is an
 * estimate and one Newton step (~1e-7 relative) instead of a division, which is slow
 * on this CPU class. */
static inline __attribute__((always_inline)) void sigmoid_vecs(const float *z, float *s,
                                                               const int nv)
{
    __m256 v[CNNLAB_SIGMOID_GROUP], x[CNNLAB_SIGMOID_GROUP], n[CNNLAB_SIGMOID_GROUP];
    __m256 r[CNNLAB_SIGMOID_GROUP], p[CNNLAB_SIGMOID_GROUP];
    static const float poly[5] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
                                  1.6666665459e-1f, 5.0000001201e-1f};
    for (int i = 0; i < nv; i++) {
        v[i] = _mm256_loadu_ps(z + 8 * i);
        x[i] = _mm256_sub_ps(_mm256_setzero_ps(), v[i]);
        x[i] = _mm256_min_ps(_mm256_max_ps(x[i], _mm256_set1_ps(-87.3f)),
                             _mm256_set1_ps(88.3f));
        n[i] = _mm256_round_ps(_mm256_mul_ps(x[i], _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r[i] = _mm256_fnmadd_ps(n[i], _mm256_set1_ps(0.693359375f), x[i]);
        r[i] = _mm256_fnmadd_ps(n[i], _mm256_set1_ps(-2.12194440e-4f), r[i]);
        p[i] = _mm256_set1_ps(1.9875691500e-4f);
    }
    for (int c = 0; c < 5; c++)
        for (int i = 0; i < nv; i++)
            p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(poly[c]));
    for (int i = 0; i < nv; i++) {
        const __m256 one = _mm256_set1_ps(1.f);
        p[i] = _mm256_fmadd_ps(p[i], _mm256_mul_ps(r[i], r[i]), _mm256_add_ps(r[i], one));
        const __m256i e = _mm256_slli_epi32(
            _mm256_add_epi32(_mm256_cvtps_epi32(n[i]), _mm256_set1_epi32(127)), 23);
        const __m256 d = _mm256_add_ps(one, _mm256_mul_ps(p[i], _mm256_castsi256_ps(e)));
        __m256 q = _mm256_rcp_ps(d);
        q = _mm256_mul_ps(q, _mm256_fnmadd_ps(d, q, _mm256_set1_ps(2.f)));
        /* d may overflow to +inf for z < -88: 0 then, as sigmoid's limit */
        q = _mm256_and_ps(q, _mm256_cmp_ps(d, _mm256_set1_ps(3.0e38f), _CMP_LT_OQ));
        /* NaN stays NaN */
        q = _mm256_blendv_ps(q, v[i], _mm256_cmp_ps(v[i], v[i], _CMP_UNORD_Q));
        _mm256_storeu_ps(s + 8 * i, q);
    }
}
#endif

static inline float sigmoid1(float z) { return 1.f / (1.f + expf(-z)); }

/* s[i] = sigmoid(z[i]) for one row */
static void sigmoid_row(const float *z, float *s, int n)
{
    int i = 0;
#ifdef __AVX2__
    for (; i + 8 * CNNLAB_SIGMOID_GROUP <= n; i += 8 * CNNLAB_SIGMOID_GROUP)
        sigmoid_vecs(z + i, s + i, CNNLAB_SIGMOID_GROUP);
    for (; i + 8 <= n; i += 8) sigmoid_vecs(z + i, s + i, 1);
#endif
    for (; i < n; i++) s[i] = sigmoid1(z[i]);
}

/* P = avgpool_k(sigmoid(Z)), and S = sigmoid(Z) (what the backward needs, as
 * torch's sigmoid keeps its output). S has Z's layout; rows past Ho*k are written too. */
int cnnlab_sap512_fwd(const float *Z, float *S, float *P, int64_t planes, int H, int W, int C,
                      int k);  /* avx512.c: 0 done, -1 out of memory, 1 not taken */

int cnnlab_sigmoid_avgpool_fwd(const float *Z, float *S, float *P, int64_t planes, int H,
                               int W, int C, int k)
{
    {
        const int rc = cnnlab_sap512_fwd(Z, S, P, planes, H, W, C, k);
        if (rc <= 0) return rc;
    }
    const int Ho = H / k, Wo = W / k, row = W * C, orow = Wo * C;
    const float inv = 1.f / (float)(k * k);
    int failed = 0;
    #pragma omp parallel
    {
        /* the vertical window sums (k > 2 only) */
        float *acc = k == 2 ? NULL : (float *)CNNLAB_MALLOC(sizeof(float) * (size_t)row);
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < planes * Ho; t++) {
            const int64_t plane = t / Ho, oh = t % Ho;
            if (k != 2 && acc == NULL) {  /* out of memory */
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            const int64_t off = (plane * H + oh * k) * (int64_t)row;
            for (int r = 0; r < k; r++) sigmoid_row(Z + off + (int64_t)r * row,
                                                    S + off + (int64_t)r * row, row);
            float *out = P + t * (int64_t)orow;
            if (k == 2) {  /* the book's pool: each window's four values, no passes over acc */
                const float *a = S + off, *b = a + row;
                for (int ow = 0; ow < Wo; ow++, a += 2 * C, b += 2 * C)
                    for (int c = 0; c < C; c++)
                        out[ow * C + c] = ((a[c] + b[c]) + (a[C + c] + b[C + c])) * inv;
                continue;
            }
            /* vertical sums of the window's k rows (in cache), then horizontal ones */
            const float *s0 = S + off;
            for (int i = 0; i < row; i++) acc[i] = s0[i];
            for (int r = 1; r < k; r++) {
                const float *sr = s0 + (int64_t)r * row;
                for (int i = 0; i < row; i++) acc[i] += sr[i];
            }
            for (int ow = 0; ow < Wo; ow++)
                for (int c = 0; c < C; c++) {
                    float v = 0.f;
                    for (int j = 0; j < k; j++) v += acc[(ow * k + j) * C + c];
                    out[ow * C + c] = v * inv;
                }
        }
        /* rows past Ho*k (floor mode): S only */
        #pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; p++)
            for (int h = Ho * k; h < H; h++) {
                const int64_t off = (p * H + h) * (int64_t)row;
                sigmoid_row(Z + off, S + off, row);
            }
        free(acc);
    }
    return failed ? -1 : 0;
}

int cnnlab_sap512_bwd(const float *S, const float *dP, float *dZ, int64_t planes, int H, int W,
                      int C, int k);  /* avx512.c, as cnnlab_sap512_fwd */

int cnnlab_sigmoid_avgpool_bwd(const float *S, const float *dP, float *dZ, int64_t planes,
                               int H, int W, int C, int k)
{
    {
        const int rc = cnnlab_sap512_bwd(S, dP, dZ, planes, H, W, C, k);
        if (rc <= 0) return rc;
    }
    const int Ho = H / k, Wo = W / k, row = W * C, orow = Wo * C;
    const float inv = 1.f / (float)(k * k);
    int failed = 0;
    #pragma omp parallel
    {
        float *ge = (float *)CNNLAB_MALLOC(sizeof(float) * (size_t)row);
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < planes * Ho; t++) {
            const int64_t plane = t / Ho, oh = t % Ho;
            if (ge == NULL) {  /* out of memory */
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            /* the window gradient spread over its k pixels (zero past Wo*k), / k^2 */
            const float *g = dP + t * (int64_t)orow;
            for (int ow = 0; ow < Wo; ow++)
                for (int j = 0; j < k; j++)
                    for (int c = 0; c < C; c++) ge[(ow * k + j) * C + c] = g[ow * C + c] * inv;
            for (int i = Wo * k * C; i < row; i++) ge[i] = 0.f;
            for (int r = 0; r < k; r++) {
                const int64_t off = (plane * H + oh * k + r) * (int64_t)row;
                const float *sr = S + off;
                float *d = dZ + off;
                for (int i = 0; i < row; i++) d[i] = ge[i] * sr[i] * (1.f - sr[i]);
            }
        }
        /* rows past Ho*k (floor mode) get no gradient: 0 * S * (1 - S), as torch's
         * sigmoid backward computes it (NaN where S is NaN) */
        #pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; p++)
            for (int h = Ho * k; h < H; h++) {
                const int64_t off = (p * H + h) * (int64_t)row;
                const float *sr = S + off;
                float *d = dZ + off;
                for (int i = 0; i < row; i++) d[i] = 0.f * sr[i] * (1.f - sr[i]);
            }
        free(ge);
    }
    return failed ? -1 : 0;
}
