/* cnnlab native CPU kernels, compiled on first use by cnnlab/native/__init__.py.
 *
 * Plain C99 + OpenMP, no PyTorch headers: the Python side passes pointers to
 * contiguous tensors (ctypes), so this builds in about a second with the system
 * compiler. OpenMP resolves to the libgomp that torch has already loaded, so
 * these loops share torch's thread pool and its torch.set_num_threads setting.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

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

int cnnlab_native_version(void) { return 1; }

/* Separable resampling of n uint8 images (h, w) to float (H, W).
 *
 * Output pixel (y, x) = scale * sum_i sum_j wy[y, i] wx[x, j] src[ys[y] + i, xs[x] + j] + shift,
 * where each output row/column has ky/kx taps starting at ys[y]/xs[x] (the nonzero
 * band of cnnlab.data.transforms.interpolation_matrix, padded with zero weights).
 * Horizontal pass into a per-thread (h, W) buffer, then the vertical pass, whose
 * inner loop over x is contiguous: the output is written once.
 */
void cnnlab_resample_u8(const uint8_t *src, float *dst, int64_t n, int h, int w, int H, int W,
                        const int32_t *ys, const float *wy, int ky,
                        const int32_t *xs, const float *wx, int kx,
                        float scale, float shift)
{
    #pragma omp parallel
    {
        /* per thread: the image as float (h, w), the horizontal pass (h, W), one output row */
        float *buf = (float *)malloc(sizeof(float) * ((size_t)h * w + ((size_t)h + 1) * W));
        float *img = buf, *tmp = buf + (size_t)h * w, *o = tmp + (size_t)h * W;
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < n; b++) {
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
/* exp on 8 floats: 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 (split in two
 * constants), p a degree-6 polynomial (Cephes' expf coefficients): ~1 ulp. */
static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif

#ifdef __AVX2__
/* 1 / (1 + exp(-v)) on 8 floats; a reciprocal estimate and one Newton step
 * (~1e-7 relative) instead of a division, which is slow on this CPU class. */
static inline __m256 sigmoid8(__m256 v)
{
    const __m256 one = _mm256_set1_ps(1.f);
    __m256 d = _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v)));
    __m256 r = _mm256_rcp_ps(d);
    r = _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.f)));
    /* d may overflow to +inf for v < -88: r = 0 then, as sigmoid's limit */
    r = _mm256_and_ps(r, _mm256_cmp_ps(d, _mm256_set1_ps(3.0e38f), _CMP_LT_OQ));
    return _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));  /* NaN stays NaN */
}
#endif

static inline float sigmoid1(float z) { return 1.f / (1.f + expf(-z)); }

/* s[i] = sigmoid(z[i]) for one row */
static void sigmoid_row(const float *z, float *s, int n)
{
    int i = 0;
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(s + i, sigmoid8(_mm256_loadu_ps(z + i)));
#endif
    for (; i < n; i++) s[i] = sigmoid1(z[i]);
}

/* P = avgpool_k(sigmoid(Z)), and S = sigmoid(Z) (what the backward needs, as
 * torch's sigmoid keeps its output). S has Z's layout; rows past Ho*k are written too. */
void cnnlab_sigmoid_avgpool_fwd(const float *Z, float *S, float *P, int64_t planes, int H,
                                int W, int C, int k)
{
    const int Ho = H / k, Wo = W / k, row = W * C, orow = Wo * C;
    const float inv = 1.f / (float)(k * k);
    #pragma omp parallel
    {
        float *acc = (float *)malloc(sizeof(float) * (size_t)row);
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < planes * Ho; t++) {
            const int64_t plane = t / Ho, oh = t % Ho;
            const int64_t off = (plane * H + oh * k) * (int64_t)row;
            for (int r = 0; r < k; r++) sigmoid_row(Z + off + (int64_t)r * row,
                                                    S + off + (int64_t)r * row, row);
            /* vertical sums of the window's k rows (in cache), then horizontal ones */
            const float *s0 = S + off;
            for (int i = 0; i < row; i++) acc[i] = s0[i];
            for (int r = 1; r < k; r++) {
                const float *sr = s0 + (int64_t)r * row;
                for (int i = 0; i < row; i++) acc[i] += sr[i];
            }
            float *out = P + t * (int64_t)orow;
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
}

void cnnlab_sigmoid_avgpool_bwd(const float *S, const float *dP, float *dZ, int64_t planes,
                                int H, int W, int C, int k)
{
    const int Ho = H / k, Wo = W / k, row = W * C, orow = Wo * C;
    const float inv = 1.f / (float)(k * k);
    #pragma omp parallel
    {
        float *ge = (float *)malloc(sizeof(float) * (size_t)row);
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < planes * Ho; t++) {
            const int64_t plane = t / Ho, oh = t % Ho;
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
        /* rows past Ho*k (floor mode) get no gradient */
        #pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; p++)
            for (int h = Ho * k; h < H; h++) {
                float *d = dZ + (p * H + h) * (int64_t)row;
                for (int i = 0; i < row; i++) d[i] = 0.f;
            }
        free(ge);
    }
}

/* ---------------------------------------------------------------------------
 * Small stride-1 convolutions in NHWC memory (torch.channels_last): X (B, H, W, Cin)
 * -> Y (B, Ho, Wo, M), zero padding p, k x k kernel (k <= 7), Cin <= 16 and M <= 16.
 * LeNet's layers (1 -> 6, 6 -> 16) and fastnet's stem (1 -> 16) are such; a
 * one-channel NCHW image is already NHWC. The weights come tap-major,
 * Wt (k*k*Cin, Mp): row (ky*k + kx)*Cin + ci holds the M output channels, zero-padded
 * to Mp = 8 or 16. oneDNN's kernels for these channel counts run far below this
 * CPU's rate (benchmarks/results/lenet.md); here an output pixel's M channels are
 * one or two AVX vectors and four pixels are computed at once, so each weight load
 * serves four multiply-adds. The input gradient is this same forward kernel applied
 * to the zero-padded output gradient with the flipped, transposed weights.
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
 * this build or these sizes are not supported (the caller then uses PyTorch). */
int cnnlab_conv_fwd(const float *X, const float *Wt, const float *bias, float *Y,
                    int64_t B, int H, int W, int Cin, int M, int k, int p)
{
#ifdef __AVX2__
    const int Ho = H + 2 * p - k + 1, Wo = W + 2 * p - k + 1, Wp = W + 2 * p, Hp = H + 2 * p;
    const int nv = (M + 7) / 8;
    if (!conv_sizes_ok(Cin, M, k, p, Ho, Wo)) return -1;
    #pragma omp parallel
    {
        float *xp = (float *)malloc(sizeof(float) * (size_t)Hp * Wp * Cin);
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
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
    return 0;
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
 * cnnlab_conv_fwd for the output gradient dY (NHWC). Returns 0 or -1. */
int cnnlab_conv_wgrad(const float *X, const float *dY, float *dWt, float *db, int64_t B,
                      int H, int W, int Cin, int M, int k, int p)
{
#ifdef __AVX2__
    const int Ho = H + 2 * p - k + 1, Wo = W + 2 * p - k + 1, Wp = W + 2 * p, Hp = H + 2 * p;
    const int nv = (M + 7) / 8, Mp = nv * 8;
    const size_t nw = (size_t)k * k * Cin * Mp;
    if (!conv_sizes_ok(Cin, M, k, p, Ho, Wo)) return -1;
    memset(dWt, 0, sizeof(float) * nw);
    memset(db, 0, sizeof(float) * (size_t)Mp);
    #pragma omp parallel
    {
        float *xp = (float *)malloc(sizeof(float) * ((size_t)Hp * Wp * Cin + nw + (size_t)Mp));
        float *dw = xp + (size_t)Hp * Wp * Cin, *dbl = dw + nw;
        memset(dw, 0, sizeof(float) * (nw + (size_t)Mp));
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            pad_image(X + b * (int64_t)H * W * Cin, xp, H, W, Cin, p);
            const float *dy = dY + b * (int64_t)Ho * Wo * M;
#define CNNLAB_WG(K, NV) wgrad_image(xp, Wp, Cin, dy, dw, dbl, Ho, Wo, M, K, NV)
            CNNLAB_DISPATCH(CNNLAB_WG);
#undef CNNLAB_WG
        }
        #pragma omp critical
        {
            for (size_t i = 0; i < nw; i++) dWt[i] += dw[i];
            for (int i = 0; i < Mp; i++) db[i] += dbl[i];
        }
        free(xp);
    }
    return 0;
#else
    (void)X; (void)dY; (void)dWt; (void)db; (void)B; (void)H; (void)W; (void)Cin; (void)M;
    (void)k; (void)p;
    return -1;
#endif
}
