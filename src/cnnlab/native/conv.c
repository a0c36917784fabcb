/* cnnlab native CPU kernels: small stride-1 convolutions (see kernels.c for how
 * these files are built and loaded). */
#define _POSIX_C_SOURCE 200112L  /* posix_memalign */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif
#include "alloc.h"

/* AVX-512 (avx512.c): 0 done, -1 out of memory, 1 not in this build */
int cnnlab_x1_fwd(const float *X, const float *Wt, const float *bias, float *Y, int64_t B,
                  int H, int W, int M, int Mp, int k, int p);
int cnnlab_x1_wgrad(const float *X, const float *dY, float *dWt, float *db, int64_t B, int H,
                    int W, int M, int Mp, int k, int p);
int cnnlab_wgrad512(const float *X, const float *dY, float *dWt, float *db, int64_t B, int H,
                    int W, int Cin, int M, int Mp, int k, int p);
int cnnlab_fwd512(const float *X, const float *Wt, const float *bias, float *Y, int64_t B,
                  int H, int W, int Cin, int M, int Mp, int k, int p);

/* ---------------------------------------------------------------------------
 * Small stride-1 convolutions in NHWC memory (torch.channels_last): X (B, H, W, Cin)
 * -> Y (B, Ho, Wo, M), zero padding p, k x k kernel (k <= 7), Cin <= 16 and M <= 16.
 * LeNet's layers (1 -> 6, 6 -> 16) and fastnet's stem (1 -> 16) are such; a
 * one-channel NCHW image is already NHWC. The weights come tap-major,
 * Wt (k*k*Cin, Mp): row (ky*k + kx)*Cin + ci holds the M output channels, zero-padded
 * to Mp = 8 or 16. oneDNN's kernels for these channel counts run far below this
 * CPU's rate (benchmarks/results/lenet.md); here an output pixel's M channels are
 * one or two AVX vectors and four pixels are computed at once, so each weight load
 * serves four multiply-adds. The input gradient (cnnlab_conv_dgrad, at the end)
 * scatters each output pixel's gradient into the input rows it came from.
 * ------------------------------------------------------------------------- */
#ifdef __AVX2__
#define CNNLAB_INLINE static inline __attribute__((always_inline))

CNNLAB_INLINE __m256i lanes_below(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Store/load one pixel's M channels. Lanes past M spill into the next pixels of the
 * same image, which this thread writes (or reads) next anyway; only pixels within
 * Mp floats of the image's end (`exact`) take the slower masked access, so that
 * nothing outside the image is touched. */
CNNLAB_INLINE void store_px(float *o, __m256 a0, __m256 a1, int M, __m256i m0, __m256i m1,
                            int exact)
{
    if (M == 8 || M == 16 || !exact) {
        _mm256_storeu_ps(o, a0);
        if (M > 8) _mm256_storeu_ps(o + 8, a1);
    } else if (M > 8) {
        _mm256_storeu_ps(o, a0);
        _mm256_maskstore_ps(o + 8, m1, a1);
    } else {
        _mm256_maskstore_ps(o, m0, a0);
    }
}

CNNLAB_INLINE void load_px(const float *g, __m256 *g0, __m256 *g1, int M, __m256i m0, __m256i m1,
                           int exact)
{
    if (M == 8 || M == 16 || !exact) {
        *g0 = _mm256_loadu_ps(g);
        *g1 = M > 8 ? _mm256_loadu_ps(g + 8) : _mm256_setzero_ps();
    } else if (M > 8) {
        *g0 = _mm256_loadu_ps(g);
        *g1 = _mm256_maskload_ps(g + 8, m1);
    } else {
        *g0 = _mm256_maskload_ps(g, m0);
        *g1 = _mm256_setzero_ps();
    }
}

/* call F(k, nv) with both as compile-time constants (k in 1..7, nv in 1..2) */
#define CNNLAB_DISPATCH_NV(F, K) do { if (nv == 1) F(K, 1); else F(K, 2); } while (0)
#define CNNLAB_DISPATCH(F) do { switch (k) { \
    case 1: CNNLAB_DISPATCH_NV(F, 1); break; case 2: CNNLAB_DISPATCH_NV(F, 2); break; \
    case 3: CNNLAB_DISPATCH_NV(F, 3); break; case 4: CNNLAB_DISPATCH_NV(F, 4); break; \
    case 5: CNNLAB_DISPATCH_NV(F, 5); break; case 6: CNNLAB_DISPATCH_NV(F, 6); break; \
    default: CNNLAB_DISPATCH_NV(F, 7); break; } } while (0)

/* the image with a zero border of p pixels: (H + 2p, W + 2p, C) */
static void pad_image(const float *x, float *xp, int H, int W, int C, int p)
{
    const size_t row = (size_t)(W + 2 * p) * C;
    memset(xp, 0, sizeof(float) * (size_t)(H + 2 * p) * row);
    for (int r = 0; r < H; r++)
        memcpy(xp + (size_t)(r + p) * row + (size_t)p * C, x + (size_t)r * W * C,
               sizeof(float) * (size_t)W * C);
}

/* P output pixels of one row (P = 8, 4 or 1: independent accumulators hide the
 * multiply-add latency; 8 only for one vector per pixel, to stay in 16 registers) */
CNNLAB_INLINE void conv_px(const float *xp, size_t prow, int Cin, const float *Wt, int Mp, int k,
                           __m256 b0, __m256 b1, int nv, int P, float *o, int M,
                           __m256i m0, __m256i m1, const float *end)
{
    __m256 a0[8], a1[8];
    for (int i = 0; i < P; i++) { a0[i] = b0; a1[i] = b1; }
    for (int ky = 0; ky < k; ky++) {
        const float *r = xp + (size_t)ky * prow;
        for (int kx = 0; kx < k; kx++) {
            const float *w = Wt + (size_t)(ky * k + kx) * Cin * Mp;
            const float *rx = r + (size_t)kx * Cin;
            for (int ci = 0; ci < Cin; ci++) {
                const __m256 w0 = _mm256_loadu_ps(w + (size_t)ci * Mp);
                const __m256 w1 = nv > 1 ? _mm256_loadu_ps(w + (size_t)ci * Mp + 8)
                                         : _mm256_setzero_ps();
                for (int i = 0; i < P; i++) {
                    const __m256 s = _mm256_broadcast_ss(rx + (size_t)i * Cin + ci);
                    a0[i] = _mm256_fmadd_ps(s, w0, a0[i]);
                    if (nv > 1) a1[i] = _mm256_fmadd_ps(s, w1, a1[i]);
                }
            }
        }
    }
    for (int i = 0; i < P; i++) {
        float *oi = o + (size_t)i * M;
        store_px(oi, a0[i], a1[i], M, m0, m1, end - oi < Mp);
    }
}

CNNLAB_INLINE void conv_image(const float *xp, int Wp, int Cin, const float *Wt,
                              const float *bias, float *y0, int Ho, int Wo, int M, int k, int nv)
{
    const int Mp = nv * 8;
    const size_t prow = (size_t)Wp * Cin;
    const __m256i m0 = lanes_below(M), m1 = lanes_below(M - 8);
    const __m256 b0 = _mm256_loadu_ps(bias), b1 = nv > 1 ? _mm256_loadu_ps(bias + 8)
                                                          : _mm256_setzero_ps();
    const float *end = y0 + (size_t)Ho * Wo * M;
    for (int y = 0; y < Ho; y++) {
        const float *row = xp + (size_t)y * prow;
        float *o = y0 + (size_t)y * Wo * M;
        int x = 0;
        if (nv == 1)
            for (; x + 8 <= Wo; x += 8)
                conv_px(row + (size_t)x * Cin, prow, Cin, Wt, Mp, k, b0, b1, nv, 8,
                        o + (size_t)x * M, M, m0, m1, end);
        for (; x + 4 <= Wo; x += 4)
            conv_px(row + (size_t)x * Cin, prow, Cin, Wt, Mp, k, b0, b1, nv, 4,
                    o + (size_t)x * M, M, m0, m1, end);
        for (; x < Wo; x++)
            conv_px(row + (size_t)x * Cin, prow, Cin, Wt, Mp, k, b0, b1, nv, 1,
                    o + (size_t)x * M, M, m0, m1, end);
    }
}
#endif

static inline int conv_sizes_ok(int Cin, int M, int k, int p, int Ho, int Wo)
{
    return Cin >= 1 && Cin <= 16 && M >= 1 && M <= 16 && k >= 1 && k <= 7 && p >= 0
           && Ho >= 1 && Wo >= 1;
}

/* Y = conv(X, W) + bias; bias holds Mp floats (zeros for none). Returns 0, or -1 when
 * this build or these sizes are not supported or memory ran out (the caller then uses
 * PyTorch). */
int cnnlab_conv_fwd(const float *X, const float *Wt, const float *bias, float *Y,
                    int64_t B, int H, int W, int Cin, int M, int k, int p)
{
#ifdef __AVX2__
    const int Ho = H + 2 * p - k + 1, Wo = W + 2 * p - k + 1, Wp = W + 2 * p, Hp = H + 2 * p;
    const int nv = (M + 7) / 8;
    if (!conv_sizes_ok(Cin, M, k, p, Ho, Wo)) return -1;
    {
        const int rc = Cin == 1 ? cnnlab_x1_fwd(X, Wt, bias, Y, B, H, W, M, nv * 8, k, p)
                                : cnnlab_fwd512(X, Wt, bias, Y, B, H, W, Cin, M, nv * 8, k, p);
        if (rc <= 0) return rc;
    }
    int failed = 0;
    #pragma omp parallel
    {
        float *xp = (float *)CNNLAB_MALLOC(sizeof(float) * (size_t)Hp * Wp * Cin);
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            if (xp == NULL) {  /* out of memory: this thread's images are left undone */
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            pad_image(X + b * (int64_t)H * W * Cin, xp, H, W, Cin, p);
            float *y0 = Y + b * (int64_t)Ho * Wo * M;
            /* k and nv as constants, so that the loops unroll and the
             * accumulators stay in registers */
#define CNNLAB_FWD(K, NV) conv_image(xp, Wp, Cin, Wt, bias, y0, Ho, Wo, M, K, NV)
            CNNLAB_DISPATCH(CNNLAB_FWD);
#undef CNNLAB_FWD
        }
        free(xp);
    }
    return failed ? -1 : 0;
#else
    (void)X; (void)Wt; (void)bias; (void)Y; (void)B; (void)H; (void)W; (void)Cin; (void)M;
    (void)k; (void)p;
    return -1;
#endif
}

#ifdef __AVX2__
/* one image's contribution to dWt (k*k*Cin, Mp) and db (Mp): for each kernel row ky
 * and input channel, k accumulators per channel vector stay in registers over all
 * output pixels. */
CNNLAB_INLINE void wgrad_image(const float *xp, int Wp, int Cin, const float *dy, float *dw,
                               float *db, int Ho, int Wo, int M, int k, int nv)
{
    const int Mp = nv * 8;
    const size_t prow = (size_t)Wp * Cin;
    const __m256i m0 = lanes_below(M), m1 = lanes_below(M - 8);
    const float *end = dy + (size_t)Ho * Wo * M;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (int ky = 0; ky < k; ky++)
        for (int ci = 0; ci < Cin; ci++) {
            __m256 a0[7], a1[7];
            for (int kx = 0; kx < k; kx++) {
                a0[kx] = _mm256_setzero_ps();
                a1[kx] = _mm256_setzero_ps();
            }
            const int sums = ky == 0 && ci == 0;  /* the bias gradient, once */
            for (int y = 0; y < Ho; y++) {
                const float *r = xp + (size_t)(y + ky) * prow + ci;
                const float *g = dy + (size_t)y * Wo * M;
                for (int x = 0; x < Wo; x++) {
                    __m256 g0, g1;
                    const float *gx = g + (size_t)x * M;
                    load_px(gx, &g0, &g1, M, m0, m1, end - gx < Mp);
                    if (sums) {
                        s0 = _mm256_add_ps(s0, g0);
                        if (nv > 1) s1 = _mm256_add_ps(s1, g1);
                    }
                    for (int kx = 0; kx < k; kx++) {
                        const __m256 s = _mm256_broadcast_ss(r + (size_t)(x + kx) * Cin);
                        a0[kx] = _mm256_fmadd_ps(s, g0, a0[kx]);
                        if (nv > 1) a1[kx] = _mm256_fmadd_ps(s, g1, a1[kx]);
                    }
                }
            }
            for (int kx = 0; kx < k; kx++) {
                float *w = dw + ((size_t)(ky * k + kx) * Cin + ci) * Mp;
                _mm256_storeu_ps(w, _mm256_add_ps(_mm256_loadu_ps(w), a0[kx]));
                if (nv > 1)
                    _mm256_storeu_ps(w + 8, _mm256_add_ps(_mm256_loadu_ps(w + 8), a1[kx]));
            }
        }
    _mm256_storeu_ps(db, _mm256_add_ps(_mm256_loadu_ps(db), s0));
    if (nv > 1) _mm256_storeu_ps(db + 8, _mm256_add_ps(_mm256_loadu_ps(db + 8), s1));
}
#endif

/* dWt (k*k*Cin, Mp) and db (Mp), overwritten: the weight and bias gradients of
 * cnnlab_conv_fwd for the output gradient dY (NHWC). Returns 0, or -1 (as
 * cnnlab_conv_fwd). */
int cnnlab_conv_wgrad(const float *X, const float *dY, float *dWt, float *db, int64_t B,
                      int H, int W, int Cin, int M, int k, int p)
{
#ifdef __AVX2__
    const int Ho = H + 2 * p - k + 1, Wo = W + 2 * p - k + 1, Wp = W + 2 * p, Hp = H + 2 * p;
    const int nv = (M + 7) / 8, Mp = nv * 8;
    const size_t nw = (size_t)k * k * Cin * Mp;
    if (!conv_sizes_ok(Cin, M, k, p, Ho, Wo)) return -1;
    {
        const int rc = Cin == 1 ? cnnlab_x1_wgrad(X, dY, dWt, db, B, H, W, M, Mp, k, p)
                                : cnnlab_wgrad512(X, dY, dWt, db, B, H, W, Cin, M, Mp, k, p);
        if (rc <= 0) return rc;
    }
    memset(dWt, 0, sizeof(float) * nw);
    memset(db, 0, sizeof(float) * (size_t)Mp);
    int failed = 0;
    #pragma omp parallel
    {
        float *xp = (float *)CNNLAB_MALLOC(sizeof(float)
                                           * ((size_t)Hp * Wp * Cin + nw + (size_t)Mp));
        float *dw = xp ? xp + (size_t)Hp * Wp * Cin : NULL, *dbl = dw ? dw + nw : NULL;
        if (xp != NULL) memset(dw, 0, sizeof(float) * (nw + (size_t)Mp));
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            if (xp == NULL) {  /* out of memory: the sums would be incomplete */
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            pad_image(X + b * (int64_t)H * W * Cin, xp, H, W, Cin, p);
            const float *dy = dY + b * (int64_t)Ho * Wo * M;
#define CNNLAB_WG(K, NV) wgrad_image(xp, Wp, Cin, dy, dw, dbl, Ho, Wo, M, K, NV)
            CNNLAB_DISPATCH(CNNLAB_WG);
#undef CNNLAB_WG
        }
        if (xp != NULL) {
            #pragma omp critical
            {
                for (size_t i = 0; i < nw; i++) dWt[i] += dw[i];
                for (int i = 0; i < Mp; i++) db[i] += dbl[i];
            }
        }
        free(xp);
    }
    return failed ? -1 : 0;
#else
    (void)X; (void)dY; (void)dWt; (void)db; (void)B; (void)H; (void)W; (void)Cin; (void)M;
    (void)k; (void)p;
    return -1;
#endif
}

/* ---------------------------------------------------------------------------
 * Input gradient: dX = the transposed convolution of dY (NHWC, as above), computed
 * as a scatter. For an output pixel (oh, ow) and kernel row ky, the input pixels it
 * read are k*Cin contiguous floats of padded input row oh + ky, starting at float
 * ow*Cin. That span, rounded out to whole 8-float vectors (it starts `ph` = ow*Cin
 * mod 8 floats into its first vector), takes the multiply-add of each of the M
 * gradient values with a copy of the weights shifted by ph lanes (zeros around
 * them): nv vector FMAs per (pixel, ky, output channel), k*Cin of nv*8 lanes doing
 * work (30 of 40 for LeNet's 6 -> 16 layer). A transposed convolution computed as a
 * forward over the zero-bordered output gradient (oneDNN's way) instead multiplies
 * all the border's zeros: for LeNet's layer (10x10 -> 14x14, k = 5) 196 output
 * positions against the 100 that carry gradient. Per image, the padded input
 * gradient and the output gradient stay in L1/L2; each thread owns whole images.
 *
 * Zero weight lanes meet every gradient value, so a non-finite value in dY would
 * spread NaN (0 * inf) to neighbouring pixels: such a dY returns 1 and the caller
 * uses PyTorch (as it does for -1: unsupported sizes, no AVX2, out of memory).
 * ------------------------------------------------------------------------- */
#define CNNLAB_DGRAD_MAX_NV 6

#ifdef __AVX2__
/* one output pixel's span: NV vectors of row r take the M gradient values gm times
 * the shifted weights w (consecutive channels 8*NVS floats apart) */
CNNLAB_INLINE void dgrad_px(const float *gm, const float *w, float *r, int M, int NVS, int NV)
{
    /* two accumulator sets (even and odd channels): independent multiply-add chains
     * hide the FMA latency */
    __m256 a[CNNLAB_DGRAD_MAX_NV], c[CNNLAB_DGRAD_MAX_NV];
    for (int j = 0; j < NV; j++) {
        a[j] = _mm256_load_ps(r + 8 * j);
        c[j] = _mm256_setzero_ps();
    }
    int m = 0;
    for (; m + 2 <= M; m += 2) {
        const __m256 s0 = _mm256_broadcast_ss(gm + m), s1 = _mm256_broadcast_ss(gm + m + 1);
        const float *w0 = w + (size_t)m * 64 * NVS, *w1 = w0 + 64 * NVS;
        for (int j = 0; j < NV; j++) {
            a[j] = _mm256_fmadd_ps(s0, _mm256_load_ps(w0 + 8 * j), a[j]);
            c[j] = _mm256_fmadd_ps(s1, _mm256_load_ps(w1 + 8 * j), c[j]);
        }
    }
    if (m < M) {
        const __m256 s0 = _mm256_broadcast_ss(gm + m);
        const float *w0 = w + (size_t)m * 64 * NVS;
        for (int j = 0; j < NV; j++) a[j] = _mm256_fmadd_ps(s0, _mm256_load_ps(w0 + 8 * j), a[j]);
    }
    for (int j = 0; j < NV; j++) _mm256_store_ps(r + 8 * j, _mm256_add_ps(a[j], c[j]));
}

/* one padded image's gradient gx (rows of `stride` floats, zeroed) from dy (Ho, Wo, M);
 * the shifted weights wph[((ky*M + m)*8 + ph)*NV*8 + lane] */
CNNLAB_INLINE void dgrad_image(const float *dy, const float *wph, float *gx, size_t stride,
                               int Cin, int Ho, int Wo, int M, int k, int NV)
{
    const int span = k * Cin;
    /* column by column: the pixels one after another touch different rows (a pixel's
     * read-modify-write of its span does not wait on the previous pixel's store to an
     * overlapping span) and share one phase's weights */
    for (int ky = 0; ky < k; ky++)
        for (int x = 0; x < Wo; x++) {
            const int off = x * Cin, ph = off & 7;
            const float *w = wph + ((size_t)ky * M * 8 + ph) * NV * 8;
            /* spans that start early in their first vector need one vector less */
            const int nv = (ph + span + 7) / 8 < NV ? NV - 1 : NV;
            for (int y = 0; y < Ho; y++) {
                float *r = gx + (size_t)(y + ky) * stride + (off - ph);
                const float *gm = dy + ((size_t)y * Wo + x) * M;
                if (nv < NV)
                    dgrad_px(gm, w, r, M, NV, NV - 1);
                else
                    dgrad_px(gm, w, r, M, NV, NV);
            }
        }
}

static int all_finite(const float *v, size_t n)
{
    __m256 bad = _mm256_setzero_ps();
    size_t i = 0;
    /* x - x is 0 for finite x and NaN for inf or NaN */
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(v + i);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(x, x), x, _CMP_UNORD_Q));
    }
    int ok = _mm256_movemask_ps(bad) == 0;
    for (; i < n; i++) ok &= (v[i] - v[i]) == 0.f;
    return ok;
}
#endif

/* dX (B, H, W, Cin), overwritten: the input gradient of cnnlab_conv_fwd for the output
 * gradient dY (B, Ho, Wo, M) and weights Wc (M, Cin, k, k), PyTorch's layout. Returns 0;
 * 1 when dY holds inf or NaN (dX is then incomplete); -1 when this build or these
 * sizes are not supported. */
int cnnlab_conv_dgrad(const float *dY, const float *Wc, float *dX, int64_t B, int H, int W,
                      int Cin, int M, int k, int p)
{
#ifdef __AVX2__
    const int Ho = H + 2 * p - k + 1, Wo = W + 2 * p - k + 1, Wp = W + 2 * p, Hp = H + 2 * p;
    /* the span's first vector starts up to 7 floats before it */
    const int NV = (7 + k * Cin + 7) / 8;
    if (!conv_sizes_ok(Cin, M, k, p, Ho, Wo) || p >= k || NV > CNNLAB_DGRAD_MAX_NV) return -1;
    /* rows padded to whole vectors, plus room for the last span's overhang */
    const size_t stride = (size_t)(Wp * Cin + 7) / 8 * 8 + (size_t)NV * 8;
    const size_t nw = (size_t)k * M * 8 * NV * 8;
    float *wph = NULL;
    if (CNNLAB_MEMALIGN((void **)&wph, 32, sizeof(float) * nw) != 0) return -1;
    memset(wph, 0, sizeof(float) * nw);
    for (int ky = 0; ky < k; ky++)
        for (int m = 0; m < M; m++)
            for (int ph = 0; ph < 8; ph++) {
                float *w = wph + ((size_t)(ky * M + m) * 8 + ph) * NV * 8 + ph;
                for (int kx = 0; kx < k; kx++)
                    for (int ci = 0; ci < Cin; ci++)
                        w[kx * Cin + ci] = Wc[(((size_t)m * Cin + ci) * k + ky) * k + kx];
            }
    int finite = 1, failed = 0;
    #pragma omp parallel
    {
        float *gx = NULL;  /* 32-byte aligned rows: aligned vector loads and stores */
        if (CNNLAB_MEMALIGN((void **)&gx, 32, sizeof(float) * (size_t)Hp * stride) != 0)
            gx = NULL;
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            const float *dy = dY + b * (int64_t)Ho * Wo * M;
            if (gx == NULL) {
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            if (!all_finite(dy, (size_t)Ho * Wo * M)) {
                #pragma omp atomic write
                finite = 0;
                continue;
            }
            memset(gx, 0, sizeof(float) * (size_t)Hp * stride);
            switch (NV) {
            case 1: dgrad_image(dy, wph, gx, stride, Cin, Ho, Wo, M, k, 1); break;
            case 2: dgrad_image(dy, wph, gx, stride, Cin, Ho, Wo, M, k, 2); break;
            case 3: dgrad_image(dy, wph, gx, stride, Cin, Ho, Wo, M, k, 3); break;
            case 4: dgrad_image(dy, wph, gx, stride, Cin, Ho, Wo, M, k, 4); break;
            case 5: dgrad_image(dy, wph, gx, stride, Cin, Ho, Wo, M, k, 5); break;
            default: dgrad_image(dy, wph, gx, stride, Cin, Ho, Wo, M, k, 6); break;
            }
            float *dx = dX + b * (int64_t)H * W * Cin;
            for (int r = 0; r < H; r++)
                memcpy(dx + (size_t)r * W * Cin, gx + (size_t)(r + p) * stride + (size_t)p * Cin,
                       sizeof(float) * (size_t)W * Cin);
        }
        free(gx);
    }
    free(wph);
    return failed ? -1 : finite ? 0 : 1;
#else
    (void)dY; (void)Wc; (void)dX; (void)B; (void)H; (void)W; (void)Cin; (void)M; (void)k;
    (void)p;
    return -1;
#endif
}
