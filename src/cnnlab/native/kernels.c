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
        float *tmp = (float *)malloc(sizeof(float) * (size_t)h * (size_t)W);
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < n; b++) {
            const uint8_t *s = src + b * (int64_t)h * w;
            float *d = dst + b * (int64_t)H * W;
            for (int r = 0; r < h; r++) {
                const uint8_t *row = s + (int64_t)r * w;
                float *t = tmp + (int64_t)r * W;
                for (int x = 0; x < W; x++) {
                    const uint8_t *p = row + xs[x];
                    const float *c = wx + (int64_t)x * kx;
                    float acc = 0.f;
                    for (int j = 0; j < kx; j++) acc += c[j] * (float)p[j];
                    t[x] = acc;
                }
            }
            for (int y = 0; y < H; y++) {
                float *o = d + (int64_t)y * W;
                const float *c = wy + (int64_t)y * ky;
                const float *t0 = tmp + (int64_t)ys[y] * W;
                const float c0 = c[0] * scale;
                for (int x = 0; x < W; x++) o[x] = c0 * t0[x] + shift;
                for (int i = 1; i < ky; i++) {
                    const float ci = c[i] * scale;
                    const float *ti = t0 + (int64_t)i * W;
                    if (ci == 0.f) continue;
                    for (int x = 0; x < W; x++) o[x] += ci * ti[x];
                }
            }
        }
        free(tmp);
    }
}
