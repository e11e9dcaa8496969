/* cuda_backend.cu: the CUDA backend's tables (gpt_backend_cuda_dtypes: float16 or bfloat16
 * storage, 16-bit or f32 weight gradients; gpt_backend_cuda is float16's), its one-time
 * initialisation (device, context, cuBLASLt and cuBLAS handles), the sticky error record, the
 * workspace hand-over, and the memory entries of the table (memset, copies, f32 <-> f16/bf16
 * conversion, synchronize).
 *
 * Copies to and from the host are synchronous on return (the host buffer may be reused or
 * freed right after), done with cudaMemcpyAsync on the given stream plus a stream sync.
 * f32 <-> f16/bf16 parameter conversion is done on the host in fixed-size chunks of a stack buffer,
 * so no device scratch is needed.
 *
 * Not here: kernels (cuda_layers.cu, cuda_matmul.cu, cuda_attention.cu, cuda_flash.cu,
 * cuda_loss.cu, cuda_optim.cu); device allocation (the arena). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cuda_common.cuh"
extern "C" {
#include "cudnn_sdpa.h"
}

/* ---------------------------------------------------------------------------------------- */
/* sticky error                                                                              */

static char g_error_msg[1024];
static int g_error_set = 0;
static long g_error_count = 0;

void cuda_error_record(const char *call, const char *msg, const char *file, int line) {
    g_error_count++;
    if (g_error_set)
        return;
    g_error_set = 1;
    snprintf(g_error_msg, sizeof(g_error_msg), "%s failed: %s at %s:%d", call, msg, file, line);
    fprintf(stderr, "arenagpt cuda: %s\n", g_error_msg);
}

extern "C" void gpt_cuda_error_record(const char *call, const char *msg, const char *file,
                                      int line) {
    cuda_error_record(call, msg, file, line);
}

extern "C" int gpt_cuda_last_error(char *msg, size_t len) {
    if (msg && len > 0) {
        if (g_error_set)
            snprintf(msg, len, "%s (%ld failed calls in all)", g_error_msg, g_error_count);
        else
            msg[0] = '\0';
    }
    return g_error_set ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* handles and workspace                                                                     */

static int g_init_state = 0; /* 0 not tried, 1 ready, -1 failed */
static int g_device = -1;
static int g_rank_device = -1; /* gpt_cuda_select_device (model/nccl_comm.h): a rank's GPU */
static cublasLtHandle_t g_lt = NULL;
static cublasHandle_t g_blas = NULL;
static void *g_ws = NULL;
static size_t g_ws_bytes = 0;
static size_t g_ws_reserved = 0; /* carved off the top by cuda_workspace_reserve */

cublasLtHandle_t cuda_cublaslt(void) { return g_lt; }
cublasHandle_t cuda_cublas(void) { return g_blas; }

void *cuda_workspace(size_t *bytes) {
    *bytes = g_ws_bytes - g_ws_reserved;
    return *bytes ? g_ws : NULL;
}

void *cuda_workspace_reserve(size_t bytes) {
    bytes = (bytes + 255) / 256 * 256;
    if (!g_ws || g_ws_reserved || bytes == 0 || 2 * bytes > g_ws_bytes)
        return NULL;
    g_ws_reserved = bytes;
    cuda_cublas_workspace_apply();
    return (char *)g_ws + (g_ws_bytes - bytes);
}

void cuda_workspace_unreserve(void) {
    g_ws_reserved = 0;
    cuda_cublas_workspace_apply();
}

extern "C" int gpt_cuda_device(void) { return g_init_state == 1 ? g_device : -1; }
extern "C" void gpt_cuda_select_device(int local_rank) { g_rank_device = local_rank; }

void cuda_cublas_workspace_apply(void) {
    if (!g_blas)
        return;
    if (g_ws) {
        CUBLAS_CHECK(cublasSetWorkspace(g_blas, g_ws, g_ws_bytes - g_ws_reserved));
        return;
    }
    /* "no workspace": if this cuBLAS version refuses NULL / 0, it keeps its own small pool;
     * that is not an error of the run (the reconciliation then shows it as unaccounted) */
    (void)cublasSetWorkspace(g_blas, NULL, 0);
}

extern "C" void gpt_cuda_workspace_set(void *ws, size_t bytes) {
    if (g_init_state != 1)
        return;
    CUDA_CHECK(cudaDeviceSynchronize());
    g_ws = bytes ? ws : NULL;
    g_ws_bytes = ws ? bytes : 0;
    g_ws_reserved = 0;
    /* cuBLAS would otherwise allocate its own workspace with cudaMalloc on first use */
    cuda_cublas_workspace_apply();
}

/* "13.0" from CUDA's 13000 (major * 1000 + minor * 10); "none" for 0 */
static void cuda_version_text(int v, char *buf, size_t len) {
    if (v <= 0)
        snprintf(buf, len, "none");
    else
        snprintf(buf, len, "%d.%d", v / 1000, (v % 1000) / 10);
}

/* Why there is no usable GPU, kept as the sticky error (gpt_cuda_last_error): the runtime's
 * reason, and when the driver is older than this build's runtime, both versions. Printed once
 * to stderr when a driver is there (a driver too old, a device it cannot use): a machine
 * without a driver or a GPU is an ordinary CPU machine, where device=auto falls back quietly.
 * The record is only read by callers that asked for the CUDA backend. */
static void cuda_init_failed(cudaError_t e) {
    int drv = 0, rt = 0;
    if (cudaDriverGetVersion(&drv) != cudaSuccess)
        drv = 0;
    if (cudaRuntimeGetVersion(&rt) != cudaSuccess)
        rt = 0;
    cudaGetLastError();
    char sd[16], sr[16], why[512];
    cuda_version_text(drv, sd, sizeof(sd));
    cuda_version_text(rt, sr, sizeof(sr));
    if (drv > 0 && rt > 0 && drv < rt)
        snprintf(why, sizeof(why),
                 "the NVIDIA driver supports CUDA %s, older than this build's CUDA runtime %s "
                 "(%s): update the driver (CUDA 13 needs driver 580 or newer)",
                 sd, sr, e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0");
    else if (drv == 0)
        snprintf(why, sizeof(why), "no NVIDIA driver found (%s; CUDA runtime %s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0", sr);
    else
        snprintf(why, sizeof(why), "%s (driver supports CUDA %s, runtime %s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0", sd, sr);
    g_error_count++;
    if (g_error_set)
        return;
    g_error_set = 1;
    snprintf(g_error_msg, sizeof(g_error_msg), "no usable CUDA device: %s", why);
    if (drv > 0 && e != cudaSuccess && e != cudaErrorNoDevice)
        fprintf(stderr, "arenagpt cuda: %s\n", g_error_msg);
}

static int cuda_backend_init(void) {
    if (g_init_state != 0)
        return g_init_state;
    g_init_state = -1;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cuda_init_failed(e);
        return -1;
    }
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    if (g_rank_device >= count) { /* one GPU per rank: NCCL refuses two ranks on one GPU */
        g_error_set = 1;
        snprintf(g_error_msg, sizeof(g_error_msg),
                 "this rank is rank %d of the ranks on its host, which has %d CUDA device(s): "
                 "start at most %d rank(s) per host",
                 g_rank_device, count, count);
        fprintf(stderr, "arenagpt cuda: %s\n", g_error_msg);
        return -1;
    }
    if (g_rank_device >= 0)
        dev = g_rank_device;
    CUDA_CHECK(cudaSetDevice(dev));
    CUDA_CHECK(cudaFree(NULL)); /* creates the primary context now, not inside a kernel call */
    CUBLAS_CHECK(cublasLtCreate(&g_lt));
    CUBLAS_CHECK(cublasCreate(&g_blas));
    if (g_blas) {
        /* no workspace until the arena's is handed over: cuBLAS must not cudaMalloc one */
        cuda_cublas_workspace_apply();
        CUBLAS_CHECK(cublasSetMathMode(g_blas, CUBLAS_DEFAULT_MATH));
    }
    if (g_error_set || !g_lt || !g_blas)
        return -1;
    g_device = dev;
    g_init_state = 1;
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* memory entries                                                                            */

static void cu_memset_zero(void *dst, size_t bytes, void *stream) {
    if (bytes == 0)
        return;
    CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, cuda_stream(stream)));
}

static void cu_copy_to_host(void *dst_host, const void *src, size_t bytes, void *stream) {
    if (bytes == 0)
        return;
    CUDA_CHECK(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, cuda_stream(stream)));
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream(stream)));
}

static void cu_copy_from_host(void *dst, const void *src_host, size_t bytes, void *stream) {
    if (bytes == 0)
        return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, cuda_stream(stream)));
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream(stream)));
}

/* elements converted per chunk through a stack buffer */
#define CUDA_CONVERT_CHUNK 8192

template <class X>
static void params_from_host_x(X *dst, const float *src_host, int64_t n, void *stream) {
    X buf[CUDA_CONVERT_CHUNK];
    for (int64_t i = 0; i < n; i += CUDA_CONVERT_CHUNK) {
        int64_t k = n - i < CUDA_CONVERT_CHUNK ? n - i : CUDA_CONVERT_CHUNK;
        for (int64_t j = 0; j < k; j++)
            buf[j] = f2x<X>(src_host[i + j]);
        cu_copy_from_host(dst + i, buf, (size_t)k * sizeof(X), stream);
    }
}

template <class X>
static void params_to_host_x(float *dst_host, const X *src, int64_t n, void *stream) {
    X buf[CUDA_CONVERT_CHUNK];
    for (int64_t i = 0; i < n; i += CUDA_CONVERT_CHUNK) {
        int64_t k = n - i < CUDA_CONVERT_CHUNK ? n - i : CUDA_CONVERT_CHUNK;
        memset(buf, 0, sizeof(buf)); /* a failed copy leaves zeros, not stack garbage */
        cu_copy_to_host(buf, src + i, (size_t)k * sizeof(X), stream);
        for (int64_t j = 0; j < k; j++)
            dst_host[i + j] = x2f(buf[j]);
    }
}

static void cu_params_from_host_f32(void *dst, ArenaDtype dtype, const float *src_host, int64_t n,
                                    void *stream) {
    if (dtype == ARENA_DTYPE_F32)
        cu_copy_from_host(dst, src_host, (size_t)n * sizeof(float), stream);
    else if (dtype == ARENA_DTYPE_F16)
        params_from_host_x((__half *)dst, src_host, n, stream);
    else if (dtype == ARENA_DTYPE_BF16)
        params_from_host_x((__nv_bfloat16 *)dst, src_host, n, stream);
    else
        ASSERT_MSG(0, "cuda params_from_host_f32: dtype must be f32, f16 or bf16");
}

static void cu_params_to_host_f32(float *dst_host, const void *src, ArenaDtype dtype, int64_t n,
                                  void *stream) {
    if (dtype == ARENA_DTYPE_F32)
        cu_copy_to_host(dst_host, src, (size_t)n * sizeof(float), stream);
    else if (dtype == ARENA_DTYPE_F16)
        params_to_host_x(dst_host, (const __half *)src, n, stream);
    else if (dtype == ARENA_DTYPE_BF16)
        params_to_host_x(dst_host, (const __nv_bfloat16 *)src, n, stream);
    else
        ASSERT_MSG(0, "cuda params_to_host_f32: dtype must be f32, f16 or bf16");
}

static void cu_synchronize(void *stream) { CUDA_CHECK(cudaStreamSynchronize(cuda_stream(stream))); }

/* ---------------------------------------------------------------------------------------- */
/* the table                                                                                 */

/* The four tables: storage type (namespace x_f16 or x_bf16, cuda_common.cuh) x weight-gradient
 * type (the namespace's floatX, or f32: the _g32 entries). Filled on first use. */
#define CUDA_FILL_KERNELS(t, NS, G32)                                                              \
    do {                                                                                           \
        (t).encoder_forward = NS::cuda_encoder_forward;                                            \
        (t).encoder_backward = NS::cuda_encoder_backward##G32;                                     \
        (t).layernorm_forward = NS::cuda_layernorm_forward;                                        \
        (t).layernorm_backward = NS::cuda_layernorm_backward##G32;                                 \
        (t).matmul_forward = NS::cuda_matmul_forward;                                              \
        (t).matmul_backward = NS::cuda_matmul_backward##G32;                                       \
        (t).attention[GPT_ATTENTION_NAIVE] = {NS::cuda_attention_forward,                          \
                                              NS::cuda_attention_backward, NULL};                  \
        (t).attention[GPT_ATTENTION_FLASH] = {NS::cuda_flash_attention_forward,                    \
                                              NS::cuda_flash_attention_backward, NULL};            \
        (t).attention_decode = NS::cuda_attention_decode;                                          \
        (t).gelu_forward = NS::cuda_gelu_forward;                                                  \
        (t).gelu_backward = NS::cuda_gelu_backward;                                                \
        (t).crossentropy_forward = NS::cuda_crossentropy_forward;                                  \
        (t).norm_squared_accumulate = NS::cuda_norm_squared_accumulate##G32;                       \
        (t).reduce_sum = NS::cuda_reduce_sum;                                                      \
        (t).adamw_update = NS::cuda_adamw_update##G32;                                             \
        (t).norm_squared_multi = NS::cuda_norm_squared_multi##G32;                                 \
        (t).adamw_update_multi = NS::cuda_adamw_update_multi##G32;                                 \
    } while (0)

static GptBackend g_tables[2][2]; /* [bf16][grad_f32] */

static const GptBackend *backend_table(int bf16, int grad_f32) {
    if (cuda_backend_init() != 1)
        return NULL;
    GptBackend *t = &g_tables[bf16 != 0][grad_f32 != 0];
    if (t->name)
        return t;
    GptBackend n;
    memset(&n, 0, sizeof(n));
    n.device = GPT_DEVICE_CUDA;
    n.name = "cuda";
    n.memset_zero = cu_memset_zero;
    n.copy_to_host = cu_copy_to_host;
    n.copy_from_host = cu_copy_from_host;
    n.params_from_host_f32 = cu_params_from_host_f32;
    n.params_to_host_f32 = cu_params_to_host_f32;
    n.synchronize = cu_synchronize;
    n.workspace_set = gpt_cuda_workspace_set;
    n.last_error = gpt_cuda_last_error;
    if (bf16 && grad_f32)
        CUDA_FILL_KERNELS(n, x_bf16, _g32);
    else if (bf16)
        CUDA_FILL_KERNELS(n, x_bf16, );
    else if (grad_f32)
        CUDA_FILL_KERNELS(n, x_f16, _g32);
    else
        CUDA_FILL_KERNELS(n, x_f16, );
    if (bf16)
        n.attention[GPT_ATTENTION_CUDNN] = {cudnn_sdpa_forward_bf16, cudnn_sdpa_backward_bf16,
                                            cudnn_sdpa_prepare_bf16};
    else
        n.attention[GPT_ATTENTION_CUDNN] = {cudnn_sdpa_forward, cudnn_sdpa_backward,
                                            cudnn_sdpa_prepare};
    *t = n;
    return t;
}

extern "C" const GptBackend *gpt_backend_cuda(void) { return backend_table(0, 0); }

extern "C" const GptBackend *gpt_backend_cuda_dtypes(int bf16, int grad_f32) {
    return backend_table(bf16, grad_f32);
}
