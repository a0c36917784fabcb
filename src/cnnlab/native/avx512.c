/* cnnlab native CPU kernels with AVX-512: 16-float versions of kernels of conv.c and
 * kernels.c, called by their entry points and built only where the compiler targets
 * AVX-512 (the library is compiled with -march=native on the machine that runs it), so
 * the CPU's own report decides. Elsewhere, or with -DCNNLAB_NO_AVX512 (tests build such
 * a copy), each returns 1 and the AVX2 kernels run. Each was kept because it made
 * LeNet's training step faster here (benchmarks/results/lenet.md).
 *
 * First: stride-1 convolutions of ONE input channel (LeNet's first layer, book 7.6:
 * 1 -> 6 channels, 5x5, padding 2), for cnnlab_conv_fwd and cnnlab_conv_wgrad.
 * conv.c gives each output pixel's M channels one vector, so LeNet's 6 channels
 * fill 6 of 8 lanes (6 of 16 with AVX-512) and every multiply-add waits on a broadcast
 * load. Here one output row of the NHWC result -- Wo*M contiguous floats, lane j being
 * pixel j / M and channel j % M -- is cut into 16-float vectors as it lies. For tap
 * (ky, kx) every lane reads input pixel x + kx of row y + ky: stored once per image
 * "expanded" (each pixel repeated M times), that operand is one unaligned load at
 * offset kx*M of the expanded row. The weight operand is the tap's weights laid out in
 * the same lane pattern, one vector per output vector, prepared once per call. Every
 * lane computes exactly the products of its own output (the same as F.conv2d's), so
 * no lane's value spreads to another.
 * ------------------------------------------------------------------------- */
#define _POSIX_C_SOURCE 200112L  /* posix_memalign */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"

#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
#include <immintrin.h>
#define X1_INLINE static inline __attribute__((always_inline))
#define X1_NA 12  /* output vectors per forward chunk: accumulators (of 32 registers) */
#define X1_NW 4   /* output vectors per weight-gradient chunk: k*4 + 8 registers */

/* The geometry of one call: rows of the padded, expanded image are `erow` floats
 * (Wp*M, rounded up, and 16 spare floats that unaligned loads may read past a row's end);
 * an output row is L = Wo*M floats in nvec vectors, the last with `tail` lanes. */
typedef struct {
    int H, W, M, k, p, Hp, Ho, Wo, nvec, nexp;
    size_t erow, L;
    __mmask16 tail;
} x1_geom;

static x1_geom x1_geometry(int H, int W, int M, int k, int p)
{
    x1_geom g;
    g.H = H; g.W = W; g.M = M; g.k = k; g.p = p;
    g.Hp = H + 2 * p; g.Ho = H + 2 * p - k + 1; g.Wo = W + 2 * p - k + 1;
    g.L = (size_t)g.Wo * M;
    g.nvec = (int)((g.L + 15) / 16);
    g.erow = ((size_t)(W + 2 * p) * M + 15) / 16 * 16 + 16;
    g.nexp = (W * M + 15) / 16;  /* vectors of an expanded input row (W*M floats) */
    const int last = (int)(g.L - (size_t)(g.nvec - 1) * 16);
    g.tail = (__mmask16)((1u << last) - 1u);
    return g;
}

/* For the expansion: vector t of an expanded input row takes lanes from the 16 input
 * pixels starting at base[t] = 16t / M, lane l from pixel (16t + l) / M. */
static void x1_expand_tables(const x1_geom *g, int *base, int *idx)
{
    for (int t = 0; t < g->nexp; t++) {
        base[t] = 16 * t / g->M;
        for (int l = 0; l < 16; l++) {
            const int px = (16 * t + l) / g->M - base[t];
            idx[16 * t + l] = px < 16 ? px : 15;  /* lanes past the row: never stored */
        }
    }
}

/* image x (H, W) into the interior of xe (its zero border is written once, by the caller) */
static void x1_expand_image(const x1_geom *g, const float *x, float *xe, const int *base,
                            const int *idx)
{
    const size_t Lr = (size_t)g->W * g->M;
    const int lastn = (int)(Lr - (size_t)(g->nexp - 1) * 16);
    const __mmask16 last = (__mmask16)((1u << lastn) - 1u);
    for (int r = 0; r < g->H; r++) {
        const float *s = x + (size_t)r * g->W;
        float *e = xe + (size_t)(r + g->p) * g->erow + (size_t)g->p * g->M;
        for (int t = 0; t < g->nexp; t++) {
            const int n = g->W - base[t];  /* pixels left in the row from base[t] */
            const __mmask16 in = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
            const __m512 v = _mm512_permutexvar_ps(_mm512_loadu_si512(idx + 16 * t),
                                                   _mm512_maskz_loadu_ps(in, s + base[t]));
            _mm512_mask_storeu_ps(e + 16 * t, t == g->nexp - 1 ? last : (__mmask16)0xFFFF, v);
        }
    }
}

/* One thread's buffers: the expanded image (zero border set here, once) and `extra`
 * floats after it. NULL when memory ran out. */
static float *x1_buffers(const x1_geom *g, size_t extra)
{
    float *xe = NULL;
    const size_t n = (size_t)g->Hp * g->erow + extra;
    if (CNNLAB_MEMALIGN((void **)&xe, 64, sizeof(float) * n) != 0)
        return NULL;
    memset(xe, 0, sizeof(float) * n);
    return xe;
}

/* n output vectors (n <= X1_NA, a constant after inlining) of one output row. The lane
 * pattern of vector v repeats every P = M / gcd(M, 16) vectors; where P is 1 or 3 (M in
 * 1, 2, 3, 4, 6, 8, 12, 16: LeNet's 6 too) and chunks start at multiples of X1_NA, vector j
 * of a chunk has the weights of its first P vectors (j % P), held in registers for the
 * tap: one load per multiply-add instead of two. Other M (P = 0 here): a load each. */
X1_INLINE void x1_fwd_chunk(const float *xe, size_t erow, const float *wv, size_t wstride,
                            const float *bv, float *o, int k, int M, int n, int P,
                            __mmask16 last)
{
    __m512 a[X1_NA];
    for (int j = 0; j < n; j++) a[j] = _mm512_loadu_ps(bv + 16 * j);
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++) {
            const float *xr = xe + (size_t)ky * erow + (size_t)kx * M;
            const float *w = wv + (size_t)(ky * k + kx) * wstride;
            if (P == 0) {
                for (int j = 0; j < n; j++)
                    a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(xr + 16 * j),
                                           _mm512_loadu_ps(w + 16 * j), a[j]);
            } else {
                __m512 wp[3];
                for (int q = 0; q < P && q < n; q++) wp[q] = _mm512_loadu_ps(w + 16 * q);
                for (int j = 0; j < n; j++)
                    a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(xr + 16 * j), wp[j % P], a[j]);
            }
        }
    for (int j = 0; j + 1 < n; j++) _mm512_storeu_ps(o + 16 * j, a[j]);
    _mm512_mask_storeu_ps(o + 16 * (n - 1), last, a[n - 1]);
}

/* the weight and bias gradients of n output vectors (n <= X1_NW) of one kernel row: k
 * accumulators per vector stay in registers over the image's output rows, then are added
 * to the thread's sums g (tap kx at g + kx*wstride) and, for the bias, s (NULL: not this
 * kernel row) */
X1_INLINE void x1_wgrad_chunk(const float *xe, size_t erow, const float *dy, size_t L, int Ho,
                              float *g, size_t wstride, float *s, int M, int k, int n,
                              __mmask16 last)
{
    __m512 a[7][X1_NW], sa[X1_NW];
    for (int j = 0; j < n; j++) {
        sa[j] = _mm512_setzero_ps();
        for (int kx = 0; kx < k; kx++) a[kx][j] = _mm512_setzero_ps();
    }
    for (int y = 0; y < Ho; y++) {
        const float *gy = dy + (size_t)y * L, *xr = xe + (size_t)y * erow;
        __m512 d[X1_NW];
        /* the row's last vector: lanes past it are the next row's (or past the batch) */
        for (int j = 0; j < n; j++)
            d[j] = _mm512_maskz_loadu_ps(j == n - 1 ? last : (__mmask16)0xFFFF, gy + 16 * j);
        if (s != NULL)
            for (int j = 0; j < n; j++) sa[j] = _mm512_add_ps(sa[j], d[j]);
        for (int kx = 0; kx < k; kx++)
            for (int j = 0; j < n; j++)
                a[kx][j] = _mm512_fmadd_ps(d[j], _mm512_loadu_ps(xr + (size_t)kx * M + 16 * j),
                                           a[kx][j]);
    }
    for (int kx = 0; kx < k; kx++)
        for (int j = 0; j < n; j++) {
            float *gk = g + (size_t)kx * wstride + 16 * j;
            _mm512_store_ps(gk, _mm512_add_ps(_mm512_load_ps(gk), a[kx][j]));
        }
    if (s != NULL)
        for (int j = 0; j < n; j++)
            _mm512_store_ps(s + 16 * j, _mm512_add_ps(_mm512_load_ps(s + 16 * j), sa[j]));
}

#define X1_CASES(F) switch (n) { case 1: F(1); break; case 2: F(2); break; \
    case 3: F(3); break; case 4: F(4); break; case 5: F(5); break; case 6: F(6); break; \
    case 7: F(7); break; case 8: F(8); break; case 9: F(9); break; case 10: F(10); break; \
    case 11: F(11); break; default: F(12); break; }
#endif

/* 1 when this build has the AVX-512 kernels (cnnlab.native.status() says which ran) */
int cnnlab_native_avx512(void)
{
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
    return 1;
#else
    return 0;
#endif
}

/* Y (B, Ho, Wo, M) = conv(X (B, H, W), W) + bias, as cnnlab_conv_fwd with Cin = 1 (Wt:
 * (k*k, Mp) tap-major, bias: Mp floats). Returns 0, -1 when memory ran out, 1 when
 * this build has no AVX-512 path. */
int cnnlab_x1_fwd(const float *X, const float *Wt, const float *bias, float *Y, int64_t B,
                  int H, int W, int M, int Mp, int k, int p)
{
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
    const x1_geom g = x1_geometry(H, W, M, k, p);
    const size_t wstride = (size_t)g.nvec * 16;
    /* wv: tap t's weight for lane j of the output row; bv: the bias likewise */
    float *wv = NULL;
    int *tab = (int *)CNNLAB_MALLOC(sizeof(int) * (size_t)g.nexp * 17);
    if (tab == NULL) return -1;
    if (CNNLAB_MEMALIGN((void **)&wv, 64, sizeof(float) * (size_t)(k * k + 1) * wstride) != 0) {
        free(tab);
        return -1;
    }
    float *bv = wv + (size_t)k * k * wstride;
    for (size_t j = 0; j < wstride; j++) {
        const int m = (int)(j % (size_t)M), in = j < g.L;
        for (int t = 0; t < k * k; t++)
            wv[(size_t)t * wstride + j] = in ? Wt[(size_t)t * Mp + m] : 0.f;
        bv[j] = in ? bias[m] : 0.f;
    }
    int *base = tab, *idx = tab + g.nexp;
    x1_expand_tables(&g, base, idx);
    const int phases = 48 % M == 0 ? (16 % M == 0 ? 1 : 3) : 0;
    int failed = 0;
    #pragma omp parallel
    {
        float *xe = x1_buffers(&g, 0);
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            if (xe == NULL) {
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            x1_expand_image(&g, X + b * (int64_t)H * W, xe, base, idx);
            float *y0 = Y + b * (int64_t)g.Ho * (int64_t)g.L;
            for (int y = 0; y < g.Ho; y++)
                for (int v0 = 0; v0 < g.nvec; v0 += X1_NA) {
                    const int n = g.nvec - v0 < X1_NA ? g.nvec - v0 : X1_NA;
                    const __mmask16 last = v0 + n == g.nvec ? g.tail : (__mmask16)0xFFFF;
                    const float *xr = xe + (size_t)y * g.erow + (size_t)v0 * 16;
                    float *o = y0 + (size_t)y * g.L + (size_t)v0 * 16;
#define X1_FWD(N) x1_fwd_chunk(xr, g.erow, wv + (size_t)v0 * 16, wstride, bv + (size_t)v0 * 16, \
                               o, k, M, N, PH, last)
                    if (phases == 1) {
#define PH 1
                        X1_CASES(X1_FWD)
#undef PH
                    } else if (phases == 3) {
#define PH 3
                        X1_CASES(X1_FWD)
#undef PH
                    } else {
#define PH 0
                        X1_CASES(X1_FWD)
#undef PH
                    }
#undef X1_FWD
                }
        }
        free(xe);
    }
    free(wv);
    free(tab);
    return failed ? -1 : 0;
#else
    (void)X; (void)Wt; (void)bias; (void)Y; (void)B; (void)H; (void)W; (void)M; (void)Mp;
    (void)k; (void)p;
    return 1;
#endif
}

/* dWt (k*k, Mp) and db (Mp), overwritten: the weight and bias gradients of cnnlab_x1_fwd
 * for the output gradient dY (B, Ho, Wo, M). Returns as cnnlab_x1_fwd. */
int cnnlab_x1_wgrad(const float *X, const float *dY, float *dWt, float *db, int64_t B, int H,
                    int W, int M, int Mp, int k, int p)
{
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
    const x1_geom g = x1_geometry(H, W, M, k, p);
    const size_t wstride = (size_t)g.nvec * 16, taps = (size_t)k * k;
    int *tab = (int *)CNNLAB_MALLOC(sizeof(int) * (size_t)g.nexp * 17);
    if (tab == NULL) return -1;
    int *base = tab, *idx = tab + g.nexp;
    x1_expand_tables(&g, base, idx);
    memset(dWt, 0, sizeof(float) * taps * (size_t)Mp);
    memset(db, 0, sizeof(float) * (size_t)Mp);
    int failed = 0;
    #pragma omp parallel
    {
        /* after the expanded image: this thread's sums per tap and lane, then the bias's */
        float *xe = x1_buffers(&g, (taps + 1) * wstride);
        float *gs = xe ? xe + (size_t)g.Hp * g.erow : NULL, *ss = gs ? gs + taps * wstride : NULL;
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            if (xe == NULL) {  /* out of memory: the sums would be incomplete */
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            x1_expand_image(&g, X + b * (int64_t)H * W, xe, base, idx);
            const float *dy0 = dY + b * (int64_t)g.Ho * (int64_t)g.L;
            for (int ky = 0; ky < k; ky++)
                for (int v0 = 0; v0 < g.nvec; v0 += X1_NW) {
                    const int n = g.nvec - v0 < X1_NW ? g.nvec - v0 : X1_NW;
                    const __mmask16 last = v0 + n == g.nvec ? g.tail : (__mmask16)0xFFFF;
                    const float *xr = xe + (size_t)ky * g.erow + (size_t)v0 * 16;
                    float *gk = gs + (size_t)ky * k * wstride + (size_t)v0 * 16;
                    float *sk = ky == 0 ? ss + (size_t)v0 * 16 : NULL;
#define X1_WG(K, N) x1_wgrad_chunk(xr, g.erow, dy0 + (size_t)v0 * 16, g.L, g.Ho, gk, wstride, \
                                   sk, M, K, N, last)
#define X1_WGN(K) switch (n) { case 1: X1_WG(K, 1); break; case 2: X1_WG(K, 2); break; \
                               case 3: X1_WG(K, 3); break; default: X1_WG(K, 4); break; }
                    switch (k) {
                    case 1: X1_WGN(1); break; case 2: X1_WGN(2); break;
                    case 3: X1_WGN(3); break; case 4: X1_WGN(4); break;
                    case 5: X1_WGN(5); break; case 6: X1_WGN(6); break;
                    default: X1_WGN(7); break;
                    }
#undef X1_WGN
#undef X1_WG
                }
        }
        if (xe != NULL) {
            /* lane j of a row is channel j % M; lanes past the row (j >= L) hold nothing */
            #pragma omp critical
            {
                for (size_t t = 0; t < taps; t++)
                    for (size_t j = 0; j < g.L; j++)
                        dWt[t * (size_t)Mp + j % (size_t)M] += gs[t * wstride + j];
                for (size_t j = 0; j < g.L; j++) db[j % (size_t)M] += ss[j];
            }
        }
        free(xe);
    }
    free(tab);
    return failed ? -1 : 0;
#else
    (void)X; (void)dY; (void)dWt; (void)db; (void)B; (void)H; (void)W; (void)M; (void)Mp;
    (void)k; (void)p;
    return 1;
#endif
}

/* ---------------------------------------------------------------------------
 * The weight gradient of several input channels (LeNet's second layer: 6 -> 16, 5x5).
 * conv.c's AVX2 kernel broadcasts one input value per multiply-add of a pixel's M
 * gradient values. Here the other operand is the vector: for kernel row ky, the
 * k*Cin weights of output channel m meet the k*Cin contiguous floats of padded input
 * row y + ky that start at pixel x (kx*Cin + ci: the tap order of dWt's rows), so that
 * span is NT = ceil(k*Cin / 16) vector loads, and each of the pixel's MB gradient values
 * (a broadcast) multiplies all of them: NT*MB accumulators, NT + MB loads a pixel.
 * Lanes past the span read the next pixel's floats (or a spare 16 at the image's end);
 * they are summed but never read back.
 * ------------------------------------------------------------------------- */
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
/* image x (H, W, Cin) into the interior of the padded image xp (rows of prow floats);
 * the zero border is written once per thread, by the caller's memset */
static void fill_interior(const float *x, float *xp, size_t prow, int H, int W, int Cin, int p)
{
    for (int r = 0; r < H; r++)
        memcpy(xp + (size_t)(r + p) * prow + (size_t)p * Cin, x + (size_t)r * W * Cin,
               sizeof(float) * (size_t)W * Cin);
}

#define WG_MB 8   /* gradient values (output channels) per pass */
#define WG_NT 3   /* at most this many span vectors (k*Cin <= 48): NT*MB + NT + 1 registers */

/* one image, kernel row ky, output channels m0 .. m0+mb-1: adds to g[m][t*16 + lane] */
X1_INLINE void wg_pass(const float *xp, size_t prow, int Cin, const float *dy, int Ho, int Wo,
                       int M, float *g, size_t gstride, int nt, int mb)
{
    __m512 a[WG_MB][WG_NT];
    for (int m = 0; m < mb; m++)
        for (int t = 0; t < nt; t++) a[m][t] = _mm512_setzero_ps();
    for (int y = 0; y < Ho; y++) {
        const float *r = xp + (size_t)y * prow, *gy = dy + (size_t)y * Wo * M;
        for (int x = 0; x < Wo; x++) {
            __m512 s[WG_NT];
            for (int t = 0; t < nt; t++) s[t] = _mm512_loadu_ps(r + (size_t)x * Cin + 16 * t);
            for (int m = 0; m < mb; m++) {
                const __m512 d = _mm512_set1_ps(gy[(size_t)x * M + m]);
                for (int t = 0; t < nt; t++) a[m][t] = _mm512_fmadd_ps(s[t], d, a[m][t]);
            }
        }
    }
    for (int m = 0; m < mb; m++)
        for (int t = 0; t < nt; t++) {
            float *gm = g + (size_t)m * gstride + 16 * t;
            _mm512_store_ps(gm, _mm512_add_ps(_mm512_load_ps(gm), a[m][t]));
        }
}
#endif

/* dWt (k*k*Cin, Mp) and db (Mp), overwritten, as cnnlab_conv_wgrad, for k*Cin <= 48.
 * Returns 0, -1 when memory ran out, 1 when this build has no AVX-512 path or the span
 * is wider. */
int cnnlab_wgrad512(const float *X, const float *dY, float *dWt, float *db, int64_t B, int H,
                    int W, int Cin, int M, int Mp, int k, int p)
{
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
    const int Hp = H + 2 * p, Wp = W + 2 * p, Ho = Hp - k + 1, Wo = Wp - k + 1;
    const int span = k * Cin, nt = (span + 15) / 16;
    if (nt > WG_NT) return 1;
    const size_t prow = (size_t)Wp * Cin, gstride = (size_t)nt * 16;
    const size_t ng = (size_t)k * M * gstride;  /* sums g[ky][m][t*16 + lane] */
    const size_t nxp = ((size_t)Hp * prow + 16 + 15) / 16 * 16;
    memset(dWt, 0, sizeof(float) * (size_t)k * span * (size_t)Mp);
    memset(db, 0, sizeof(float) * (size_t)Mp);
    int failed = 0;
    #pragma omp parallel
    {
        float *xp = NULL;
        if (CNNLAB_MEMALIGN((void **)&xp, 64, sizeof(float) * (nxp + ng + 16)) != 0) xp = NULL;
        float *g = xp ? xp + nxp : NULL, *sb = g ? g + ng : NULL;
        if (xp != NULL) memset(xp, 0, sizeof(float) * (nxp + ng + 16));
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            if (xp == NULL) {  /* out of memory: the sums would be incomplete */
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            fill_interior(X + b * (int64_t)H * W * Cin, xp, prow, H, W, Cin, p);
            const float *dy = dY + b * (int64_t)Ho * Wo * M;
            for (int ky = 0; ky < k; ky++)
                for (int m0 = 0; m0 < M; m0 += WG_MB) {
                    const int mb = M - m0 < WG_MB ? M - m0 : WG_MB;
                    float *gk = g + ((size_t)ky * M + m0) * gstride;
                    const float *xr = xp + (size_t)ky * prow, *dm = dy + m0;
#define WG(NT, MB) wg_pass(xr, prow, Cin, dm, Ho, Wo, M, gk, gstride, NT, MB)
#define WG_M(NT) switch (mb) { case 1: WG(NT, 1); break; case 2: WG(NT, 2); break; \
    case 3: WG(NT, 3); break; case 4: WG(NT, 4); break; case 5: WG(NT, 5); break; \
    case 6: WG(NT, 6); break; case 7: WG(NT, 7); break; default: WG(NT, 8); break; }
                    if (nt == 1) WG_M(1) else if (nt == 2) WG_M(2) else WG_M(3)
#undef WG_M
#undef WG
                }
            const __mmask16 lanes = (__mmask16)((1u << M) - 1u);
            __m512 s = _mm512_load_ps(sb);
            for (size_t i = 0; i < (size_t)Ho * Wo; i++)
                s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(lanes, dy + i * M));
            _mm512_store_ps(sb, s);
        }
        if (xp != NULL) {
            #pragma omp critical
            {
                for (int ky = 0; ky < k; ky++)
                    for (int m = 0; m < M; m++)
                        for (int j = 0; j < span; j++)
                            dWt[((size_t)ky * span + j) * Mp + m] +=
                                g[((size_t)ky * M + m) * gstride + j];
                for (int m = 0; m < M; m++) db[m] += sb[m];
            }
        }
        free(xp);
    }
    return failed ? -1 : 0;
#else
    (void)X; (void)dY; (void)dWt; (void)db; (void)B; (void)H; (void)W; (void)Cin; (void)M;
    (void)Mp; (void)k; (void)p;
    return 1;
#endif
}

/* ---------------------------------------------------------------------------
 * The forward of several input channels into 9..16 output channels (LeNet's second
 * layer: 6 -> 16, 5x5). conv.c's AVX2 kernel holds a pixel's 16 channels in two 8-float
 * vectors and computes four pixels at once: six loads per eight multiply-adds. Here a
 * pixel's channels are one 16-float vector and up to FW_NP pixels of an output row are
 * computed at once: per tap and input channel, one weight-row load serves FW_NP
 * multiply-adds, each with its input value as a broadcast operand. Each output value
 * is the same sum of products as in conv.c, in the same tap order.
 * ------------------------------------------------------------------------- */
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
#define FW_NP 12  /* pixels per chunk: accumulators (of 32 registers), a row of LeNet's 10 */

/* n output pixels (n <= FW_NP, a constant after inlining) from the padded image rows at
 * xp (rows of prow floats); Wt rows of 16 floats (zero past M) */
X1_INLINE void fw_pixels(const float *xp, size_t prow, int Cin, const float *Wt, int k,
                         __m512 b, float *o, int M, __mmask16 lanes, int n)
{
    __m512 a[FW_NP];
    for (int i = 0; i < n; i++) a[i] = b;
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++) {
            const float *rx = xp + (size_t)ky * prow + (size_t)kx * Cin;
            const float *w = Wt + (size_t)(ky * k + kx) * Cin * 16;
            for (int ci = 0; ci < Cin; ci++) {
                const __m512 wv = _mm512_loadu_ps(w + (size_t)ci * 16);
                for (int i = 0; i < n; i++)
                    a[i] = _mm512_fmadd_ps(_mm512_set1_ps(rx[(size_t)i * Cin + ci]), wv, a[i]);
            }
        }
    /* M < 16: masked, so the store ends at this pixel's channels */
    for (int i = 0; i < n; i++) _mm512_mask_storeu_ps(o + (size_t)i * M, lanes, a[i]);
}
#endif

/* Y (B, Ho, Wo, M) = conv(X, W) + bias as cnnlab_conv_fwd, for Cin > 1 and 8 < M <= 16
 * (Mp = 16). Returns 0, -1 when memory ran out, 1 when this build has no AVX-512 path
 * or the sizes are others. */
int cnnlab_fwd512(const float *X, const float *Wt, const float *bias, float *Y, int64_t B,
                  int H, int W, int Cin, int M, int Mp, int k, int p)
{
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
    if (Cin < 2 || M <= 8 || Mp != 16) return 1;
    const int Hp = H + 2 * p, Wp = W + 2 * p, Ho = Hp - k + 1, Wo = Wp - k + 1;
    const size_t prow = (size_t)Wp * Cin;
    const __mmask16 lanes = (__mmask16)((1u << M) - 1u);
    const __m512 b = _mm512_maskz_loadu_ps(lanes, bias);
    int failed = 0;
    #pragma omp parallel
    {
        float *xp = (float *)CNNLAB_MALLOC(sizeof(float) * (size_t)Hp * prow);
        if (xp != NULL) memset(xp, 0, sizeof(float) * (size_t)Hp * prow);
        #pragma omp for schedule(static)
        for (int64_t i = 0; i < B; i++) {
            if (xp == NULL) {  /* out of memory: this thread's images are left undone */
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            fill_interior(X + i * (int64_t)H * W * Cin, xp, prow, H, W, Cin, p);
            float *y0 = Y + i * (int64_t)Ho * Wo * M;
            for (int y = 0; y < Ho; y++)
                for (int x0 = 0; x0 < Wo; x0 += FW_NP) {
                    const float *r = xp + (size_t)y * prow + (size_t)x0 * Cin;
                    float *o = y0 + ((size_t)y * Wo + x0) * M;
                    const int n = Wo - x0 < FW_NP ? Wo - x0 : FW_NP;
#define FW(N) case N: fw_pixels(r, prow, Cin, Wt, k, b, o, M, lanes, N); break;
                    switch (n) {
                    FW(1) FW(2) FW(3) FW(4) FW(5) FW(6) FW(7) FW(8) FW(9) FW(10) FW(11)
                    default: fw_pixels(r, prow, Cin, Wt, k, b, o, M, lanes, FW_NP); break;
                    }
#undef FW
                }
        }
        free(xp);
    }
    return failed ? -1 : 0;
#else
    (void)X; (void)Wt; (void)bias; (void)Y; (void)B; (void)H; (void)W; (void)Cin; (void)M;
    (void)Mp; (void)k; (void)p;
    return 1;
#endif
}

/* ---------------------------------------------------------------------------
 * Sigmoid + 2x2 average pooling, forward (kernels.c's cnnlab_sigmoid_avgpool_fwd for
 * k = 2, the book's pool): the sigmoid on 16 lanes (same steps as kernels.c's, whose
 * comments say why; the reciprocal estimate has 14 bits instead of 12 before its Newton
 * step), and the pooling of an NHWC row pair as vectors: the two rows' sum, then each
 * output vector gathers its windows' two columns from it (LeNet's 6 channels made the
 * scalar per-channel loop of kernels.c the larger part of this op). Same sums in the
 * same order as kernels.c: ((a + b) + (a' + b')) / 4.
 * ------------------------------------------------------------------------- */
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
#define SG_GROUP 4

X1_INLINE void sg_vecs(const float *z, float *s, int nv, __mmask16 last)
{
    __m512 v[SG_GROUP], x[SG_GROUP], n[SG_GROUP], r[SG_GROUP], p[SG_GROUP];
    static const float poly[5] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
                                  1.6666665459e-1f, 5.0000001201e-1f};
    for (int i = 0; i < nv; i++) {
        v[i] = _mm512_maskz_loadu_ps(i == nv - 1 ? last : (__mmask16)0xFFFF, z + 16 * i);
        x[i] = _mm512_sub_ps(_mm512_setzero_ps(), v[i]);
        x[i] = _mm512_min_ps(_mm512_max_ps(x[i], _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
        n[i] = _mm512_roundscale_ps(_mm512_mul_ps(x[i], _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r[i] = _mm512_fnmadd_ps(n[i], _mm512_set1_ps(0.693359375f), x[i]);
        r[i] = _mm512_fnmadd_ps(n[i], _mm512_set1_ps(-2.12194440e-4f), r[i]);
        p[i] = _mm512_set1_ps(1.9875691500e-4f);
    }
    for (int c = 0; c < 5; c++)
        for (int i = 0; i < nv; i++) p[i] = _mm512_fmadd_ps(p[i], r[i], _mm512_set1_ps(poly[c]));
    for (int i = 0; i < nv; i++) {
        const __m512 one = _mm512_set1_ps(1.f);
        p[i] = _mm512_fmadd_ps(p[i], _mm512_mul_ps(r[i], r[i]), _mm512_add_ps(r[i], one));
        const __m512i e = _mm512_slli_epi32(
            _mm512_add_epi32(_mm512_cvtps_epi32(n[i]), _mm512_set1_epi32(127)), 23);
        const __m512 d = _mm512_add_ps(one, _mm512_mul_ps(p[i], _mm512_castsi512_ps(e)));
        __m512 q = _mm512_rcp14_ps(d);
        q = _mm512_mul_ps(q, _mm512_fnmadd_ps(d, q, _mm512_set1_ps(2.f)));
        /* d overflows to +inf for z < -88: 0 then, sigmoid's limit; NaN stays NaN */
        q = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, _mm512_set1_ps(3.0e38f), _CMP_LT_OQ), q);
        q = _mm512_mask_mov_ps(q, _mm512_cmp_ps_mask(v[i], v[i], _CMP_UNORD_Q), v[i]);
        _mm512_mask_storeu_ps(s + 16 * i, i == nv - 1 ? last : (__mmask16)0xFFFF, q);
    }
}

/* s = sigmoid(z) over n floats */
static void sg_row(const float *z, float *s, int n)
{
    int i = 0;
    for (; i + 16 * SG_GROUP <= n; i += 16 * SG_GROUP) sg_vecs(z + i, s + i, SG_GROUP, 0xFFFF);
    for (; i < n; i += 16) {
        const int left = n - i;
        sg_vecs(z + i, s + i, 1, left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u));
    }
}
#endif

/* As cnnlab_sigmoid_avgpool_fwd (kernels.c) for k = 2. Returns 0, -1 when memory ran out,
 * 1 when this build has no AVX-512 path or k is not 2. */
int cnnlab_sap512_fwd(const float *Z, float *S, float *P, int64_t planes, int H, int W, int C,
                      int k)
{
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
    if (k != 2) return 1;
    const int Ho = H / 2, Wo = W / 2, row = W * C, orow = Wo * C, nvo = (orow + 15) / 16;
    /* output lane q (pixel q / C, channel q % C) takes the window columns at i0, i0 + C */
    int *idx = (int *)CNNLAB_MALLOC(sizeof(int) * (size_t)(nvo * 16 > 0 ? nvo * 16 : 1));
    if (idx == NULL) return -1;
    for (int q = 0; q < nvo * 16; q++)
        idx[q] = q < orow ? 2 * (q / C) * C + q % C : 0;
    const __mmask16 last = (__mmask16)((1u << (orow - (nvo - 1) * 16)) - 1u);
    const __m512 inv = _mm512_set1_ps(0.25f);
    int failed = 0;
    #pragma omp parallel
    {
        float *cs = NULL;  /* the two rows' sum */
        if (CNNLAB_MEMALIGN((void **)&cs, 64, sizeof(float) * ((size_t)row + 16)) != 0)
            cs = NULL;
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < planes * Ho; t++) {
            if (cs == NULL) {
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            const int64_t plane = t / Ho, oh = t % Ho;
            const int64_t off = (plane * H + oh * 2) * (int64_t)row;
            const float *a = S + off, *b = a + row;
            sg_row(Z + off, S + off, row);
            sg_row(Z + off + row, S + off + row, row);
            for (int i = 0; i < row; i += 16) {
                const int left = row - i;
                const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
                _mm512_store_ps(cs + i, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i),
                                                      _mm512_maskz_loadu_ps(m, b + i)));
            }
            float *out = P + t * (int64_t)orow;
            for (int u = 0; u < nvo; u++) {
                const __m512i i0 = _mm512_loadu_si512(idx + 16 * u);
                const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(C));
                const __mmask16 m = u == nvo - 1 ? last : (__mmask16)0xFFFF;
                const __m512 w0 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, i0, cs, 4);
                const __m512 w1 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, i1, cs, 4);
                _mm512_mask_storeu_ps(out + 16 * u, m, _mm512_mul_ps(_mm512_add_ps(w0, w1), inv));
            }
        }
        /* rows past Ho*2 (floor mode): the sigmoid only */
        #pragma omp for schedule(static)
        for (int64_t pl = 0; pl < planes; pl++)
            for (int h = Ho * 2; h < H; h++) {
                const int64_t off = (pl * H + h) * (int64_t)row;
                sg_row(Z + off, S + off, row);
            }
        free(cs);
    }
    free(idx);
    return failed ? -1 : 0;
#else
    (void)Z; (void)S; (void)P; (void)planes; (void)H; (void)W; (void)C; (void)k;
    return 1;
#endif
}

/* The backward for k = 2: dZ = (dP / 4 spread over each window) * S * (1 - S), the window
 * gradient of a row's pixels gathered from dP's row (zero for a last odd column). */
int cnnlab_sap512_bwd(const float *S, const float *dP, float *dZ, int64_t planes, int H, int W,
                      int C, int k)
{
#if defined(__AVX512F__) && !defined(CNNLAB_NO_AVX512)
    if (k != 2) return 1;
    const int Ho = H / 2, Wo = W / 2, row = W * C, orow = Wo * C, nv = (row + 15) / 16;
    int *idx = (int *)CNNLAB_MALLOC(sizeof(int) * (size_t)nv * 16);
    if (idx == NULL) return -1;
    for (int i = 0; i < nv * 16; i++)  /* -1: no window (past the row, or past Wo*2) */
        idx[i] = i < row && i / C < 2 * Wo ? (i / C / 2) * C + i % C : -1;
    const __m512 inv = _mm512_set1_ps(0.25f), one = _mm512_set1_ps(1.f);
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < planes * Ho; t++) {
        const int64_t plane = t / Ho, oh = t % Ho;
        const float *g = dP + t * (int64_t)orow;
        for (int u = 0; u < nv; u++) {
            const __m512i iu = _mm512_loadu_si512(idx + 16 * u);
            const __mmask16 has = _mm512_cmpge_epi32_mask(iu, _mm512_setzero_si512());
            const __m512 ge = _mm512_mul_ps(
                _mm512_mask_i32gather_ps(_mm512_setzero_ps(), has, iu, g, 4), inv);
            const int left = row - 16 * u;
            const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
            for (int r = 0; r < 2; r++) {
                const int64_t off = (plane * H + oh * 2 + r) * (int64_t)row + 16 * u;
                const __m512 sv = _mm512_maskz_loadu_ps(m, S + off);
                _mm512_mask_storeu_ps(dZ + off, m,
                                      _mm512_mul_ps(_mm512_mul_ps(ge, sv), _mm512_sub_ps(one, sv)));
            }
        }
    }
    /* rows past Ho*2 (floor mode) get no gradient: 0 * S * (1 - S), as kernels.c */
    for (int64_t pl = 0; pl < planes; pl++)
        for (int h = Ho * 2; h < H; h++) {
            const int64_t off = (pl * H + h) * (int64_t)row;
            for (int i = 0; i < row; i++) dZ[off + i] = 0.f * S[off + i] * (1.f - S[off + i]);
        }
    free(idx);
    return 0;
#else
    (void)S; (void)dP; (void)dZ; (void)planes; (void)H; (void)W; (void)C; (void)k;
    return 1;
#endif
}
