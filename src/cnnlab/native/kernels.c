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
