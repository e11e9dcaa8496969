/* cudnn_sdpa.c: attention=cudnn: cuDNN 9's fused scaled-dot-product attention, causal, f16
 * or bf16 in/out, f32 statistics, through the backend C API (descriptors; no C++ frontend). NOT YET
 * VERIFIED ON A GPU: it compiles here, and where cuDNN is absent or refuses a graph the model
 * falls back to attention=flash (gpt_attention_resolve) with a one-line notice.
 *
 * Loading: libcudnn.so.9 is opened with dlopen on first use, so the binary builds, links and
 * runs where cuDNN is absent. Only the entry points below are declared, with our own types;
 * where cudnn_graph.h is present at build time (nvcc builds: the CUDA include directory; not the
 * simulator build, whose stand-in headers it needs are partial) each declaration and every
 * enum value used is checked against the header (_Static_assert).
 *
 * Graphs (per (B,T,C,NH), built once by cudnn_sdpa_prepare and cached with their execution
 * plans; the first engine of heuristic mode A that finalises is used). Q, K, V are strided
 * views of the (B,T,3C) qkv (dims b,h,s,d; strides T*3C, HS, 3C, 1), O and dO of (B,T,C):
 *   forward:  S = scale * Q K^T; causal mask (row index >= column index, else -inf);
 *             m = rowmax S; P = exp(S - m); l = rowsum P; stats = m + log l (the f32 lse,
 *             (B,NH,T,1), our layout); O = (P / l) V.
 *   backward: D = rowsum(dO * O) (f32, in the workspace); P = exp(mask(scale Q K^T) - stats);
 *             dV = P^T dO; dS = P (dO V^T - D) * scale; dQ = dS K; dK = dS^T Q.
 * Workspace: one arena tensor (GptConfig workspace figure gpt_cudnn_workspace_bytes): D first,
 * then the execution plan's own workspace. cudnn_sdpa_prepare refuses (and the model falls
 * back) when a plan asks for more than that figure.
 *
 * Errors: prepare returns -1 with the reason; the execute calls record failures in the CUDA
 * backend's sticky error (cuda_error_record). Not here: our own kernels (cuda_flash.cu). */
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../alloc/base.h"
#include "../backend.h"
#include "cuda_backend.h"
#include "cudnn_sdpa.h"

/* ---------------------------------------------------------------------------------------- */
/* the entry points we use, our declarations                                                 */

typedef unsigned int SdpaStatus; /* cudnnStatus_t; 0 = success */
typedef struct cudnnContext *SdpaHandle;
typedef void *SdpaDesc; /* cudnnBackendDescriptor_t */
typedef struct CUstream_st *SdpaStream;

typedef size_t (*SdpaGetVersionFn)(void);
typedef const char *(*SdpaGetErrorStringFn)(unsigned int status);
typedef SdpaStatus (*SdpaCreateFn)(SdpaHandle *handle);
typedef SdpaStatus (*SdpaSetStreamFn)(SdpaHandle handle, SdpaStream stream);
typedef SdpaStatus (*SdpaCreateDescFn)(unsigned int type, SdpaDesc *desc);
typedef SdpaStatus (*SdpaDestroyDescFn)(SdpaDesc desc);
typedef SdpaStatus (*SdpaFinalizeFn)(SdpaDesc desc);
typedef SdpaStatus (*SdpaSetAttrFn)(SdpaDesc desc, unsigned int name, unsigned int type,
                                    int64_t count, const void *elements);
typedef SdpaStatus (*SdpaGetAttrFn)(SdpaDesc const desc, unsigned int name, unsigned int type,
                                    int64_t requested, int64_t *count, void *elements);
typedef SdpaStatus (*SdpaExecuteFn)(SdpaHandle handle, SdpaDesc plan, SdpaDesc variant_pack);

/* enum values of cudnn_graph.h (cuDNN 9) that we use */
enum {
    SDPA_DATA_FLOAT = 0,
    SDPA_DATA_HALF = 2,
    SDPA_DATA_BFLOAT16 = 9,
    SDPA_DATA_INT32 = 4,
    SDPA_DATA_BOOLEAN = 11,
    SDPA_PW_ADD = 0,
    SDPA_PW_MUL = 1,
    SDPA_PW_DIV = 6,
    SDPA_PW_SUB = 9,
    SDPA_PW_EXP = 13,
    SDPA_PW_LOG = 15,
    SDPA_PW_CMP_GE = 303,
    SDPA_PW_GEN_INDEX = 501,
    SDPA_PW_BINARY_SELECT = 601,
    SDPA_REDUCE_ADD = 0,
    SDPA_REDUCE_MAX = 3,
    SDPA_HEUR_MODE_A = 3,
    /* attribute types */
    SDPA_TYPE_HANDLE = 0,
    SDPA_TYPE_DATA_TYPE = 1,
    SDPA_TYPE_BOOLEAN = 2,
    SDPA_TYPE_INT64 = 3,
    SDPA_TYPE_VOID_PTR = 6,
    SDPA_TYPE_HEUR_MODE = 8,
    SDPA_TYPE_POINTWISE_MODE = 14,
    SDPA_TYPE_BACKEND_DESCRIPTOR = 15,
    SDPA_TYPE_REDUCTION_OPERATOR_TYPE = 18,
    /* descriptor types */
    SDPA_D_POINTWISE = 0,
    SDPA_D_ENGINECFG = 3,
    SDPA_D_ENGINEHEUR = 4,
    SDPA_D_EXECUTION_PLAN = 5,
    SDPA_D_OP_POINTWISE = 13,
    SDPA_D_OPERATIONGRAPH = 15,
    SDPA_D_VARIANT_PACK = 16,
    SDPA_D_TENSOR = 17,
    SDPA_D_MATMUL = 18,
    SDPA_D_OP_MATMUL = 19,
    SDPA_D_REDUCTION = 21,
    SDPA_D_OP_REDUCTION = 22,
    SDPA_D_OP_RESHAPE = 31,
    /* attributes */
    SDPA_A_POINTWISE_MODE = 0,
    SDPA_A_POINTWISE_MATH_PREC = 1,
    SDPA_A_POINTWISE_AXIS = 9,
    SDPA_A_ENGINEHEUR_MODE = 200,
    SDPA_A_ENGINEHEUR_OPERATION_GRAPH = 201,
    SDPA_A_ENGINEHEUR_RESULTS = 202,
    SDPA_A_EXECUTION_PLAN_HANDLE = 400,
    SDPA_A_EXECUTION_PLAN_ENGINE_CONFIG = 401,
    SDPA_A_EXECUTION_PLAN_WORKSPACE_SIZE = 402,
    SDPA_A_OP_POINTWISE_PW_DESCRIPTOR = 750,
    SDPA_A_OP_POINTWISE_XDESC = 751,
    SDPA_A_OP_POINTWISE_BDESC = 752,
    SDPA_A_OP_POINTWISE_YDESC = 753,
    SDPA_A_OP_POINTWISE_TDESC = 758,
    SDPA_A_OPERATIONGRAPH_HANDLE = 800,
    SDPA_A_OPERATIONGRAPH_OPS = 801,
    SDPA_A_TENSOR_BYTE_ALIGNMENT = 900,
    SDPA_A_TENSOR_DATA_TYPE = 901,
    SDPA_A_TENSOR_DIMENSIONS = 902,
    SDPA_A_TENSOR_STRIDES = 903,
    SDPA_A_TENSOR_UNIQUE_ID = 906,
    SDPA_A_TENSOR_IS_VIRTUAL = 907,
    SDPA_A_TENSOR_IS_BY_VALUE = 908,
    SDPA_A_VARIANT_PACK_UNIQUE_IDS = 1000,
    SDPA_A_VARIANT_PACK_DATA_POINTERS = 1001,
    SDPA_A_VARIANT_PACK_WORKSPACE = 1003,
    SDPA_A_MATMUL_COMP_TYPE = 1500,
    SDPA_A_OP_MATMUL_ADESC = 1520,
    SDPA_A_OP_MATMUL_BDESC = 1521,
    SDPA_A_OP_MATMUL_CDESC = 1522,
    SDPA_A_OP_MATMUL_DESC = 1523,
    SDPA_A_REDUCTION_OPERATOR = 1600,
    SDPA_A_REDUCTION_COMP_TYPE = 1601,
    SDPA_A_OP_REDUCTION_XDESC = 1610,
    SDPA_A_OP_REDUCTION_YDESC = 1611,
    SDPA_A_OP_REDUCTION_DESC = 1612,
    SDPA_A_OP_RESHAPE_XDESC = 2200,
    SDPA_A_OP_RESHAPE_YDESC = 2201,
};

#if defined(__has_include)
/* not in the simulator build (tests/cudasim/include first on the path): its stand-in
 * library_types.h has only what cuBLAS needs, not what cudnn_graph.h includes it for */
#if __has_include(<cudnn_graph.h>) && !__has_include(<cudasim.h>)
/* Build-time check of our declarations against cuDNN's header (not used otherwise). */
#include <cudnn_graph.h>
#define SDPA_SAME_TYPE(fn, ours)                                                                   \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&fn), ours),                            \
                   #fn ": cudnn_graph.h declares another type than cudnn_sdpa.c")
SDPA_SAME_TYPE(cudnnGetVersion, SdpaGetVersionFn);
SDPA_SAME_TYPE(cudnnGetErrorString, SdpaGetErrorStringFn);
SDPA_SAME_TYPE(cudnnCreate, SdpaCreateFn);
SDPA_SAME_TYPE(cudnnSetStream, SdpaSetStreamFn);
SDPA_SAME_TYPE(cudnnBackendCreateDescriptor, SdpaCreateDescFn);
SDPA_SAME_TYPE(cudnnBackendDestroyDescriptor, SdpaDestroyDescFn);
SDPA_SAME_TYPE(cudnnBackendFinalize, SdpaFinalizeFn);
SDPA_SAME_TYPE(cudnnBackendSetAttribute, SdpaSetAttrFn);
SDPA_SAME_TYPE(cudnnBackendGetAttribute, SdpaGetAttrFn);
SDPA_SAME_TYPE(cudnnBackendExecute, SdpaExecuteFn);
#define SDPA_SAME_VALUE(ours, theirs)                                                              \
    _Static_assert((long long)(ours) == (long long)(theirs), #theirs " changed value")
SDPA_SAME_VALUE(SDPA_DATA_FLOAT, CUDNN_DATA_FLOAT);
SDPA_SAME_VALUE(SDPA_DATA_HALF, CUDNN_DATA_HALF);
SDPA_SAME_VALUE(SDPA_DATA_BFLOAT16, CUDNN_DATA_BFLOAT16);
SDPA_SAME_VALUE(SDPA_DATA_INT32, CUDNN_DATA_INT32);
SDPA_SAME_VALUE(SDPA_DATA_BOOLEAN, CUDNN_DATA_BOOLEAN);
SDPA_SAME_VALUE(SDPA_PW_ADD, CUDNN_POINTWISE_ADD);
SDPA_SAME_VALUE(SDPA_PW_MUL, CUDNN_POINTWISE_MUL);
SDPA_SAME_VALUE(SDPA_PW_DIV, CUDNN_POINTWISE_DIV);
SDPA_SAME_VALUE(SDPA_PW_SUB, CUDNN_POINTWISE_SUB);
SDPA_SAME_VALUE(SDPA_PW_EXP, CUDNN_POINTWISE_EXP);
SDPA_SAME_VALUE(SDPA_PW_LOG, CUDNN_POINTWISE_LOG);
SDPA_SAME_VALUE(SDPA_PW_CMP_GE, CUDNN_POINTWISE_CMP_GE);
SDPA_SAME_VALUE(SDPA_PW_GEN_INDEX, CUDNN_POINTWISE_GEN_INDEX);
SDPA_SAME_VALUE(SDPA_PW_BINARY_SELECT, CUDNN_POINTWISE_BINARY_SELECT);
SDPA_SAME_VALUE(SDPA_REDUCE_ADD, CUDNN_REDUCE_TENSOR_ADD);
SDPA_SAME_VALUE(SDPA_REDUCE_MAX, CUDNN_REDUCE_TENSOR_MAX);
SDPA_SAME_VALUE(SDPA_HEUR_MODE_A, CUDNN_HEUR_MODE_A);
SDPA_SAME_VALUE(SDPA_TYPE_HANDLE, CUDNN_TYPE_HANDLE);
SDPA_SAME_VALUE(SDPA_TYPE_DATA_TYPE, CUDNN_TYPE_DATA_TYPE);
SDPA_SAME_VALUE(SDPA_TYPE_BOOLEAN, CUDNN_TYPE_BOOLEAN);
SDPA_SAME_VALUE(SDPA_TYPE_INT64, CUDNN_TYPE_INT64);
SDPA_SAME_VALUE(SDPA_TYPE_VOID_PTR, CUDNN_TYPE_VOID_PTR);
SDPA_SAME_VALUE(SDPA_TYPE_HEUR_MODE, CUDNN_TYPE_HEUR_MODE);
SDPA_SAME_VALUE(SDPA_TYPE_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE);
SDPA_SAME_VALUE(SDPA_TYPE_BACKEND_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_TYPE_REDUCTION_OPERATOR_TYPE, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE);
SDPA_SAME_VALUE(SDPA_D_POINTWISE, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_ENGINECFG, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_ENGINEHEUR, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_EXECUTION_PLAN, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_OP_POINTWISE, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_OPERATIONGRAPH, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_VARIANT_PACK, CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_TENSOR, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_MATMUL, CUDNN_BACKEND_MATMUL_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_OP_MATMUL, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_REDUCTION, CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_OP_REDUCTION, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_D_OP_RESHAPE, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_A_POINTWISE_MODE, CUDNN_ATTR_POINTWISE_MODE);
SDPA_SAME_VALUE(SDPA_A_POINTWISE_MATH_PREC, CUDNN_ATTR_POINTWISE_MATH_PREC);
SDPA_SAME_VALUE(SDPA_A_POINTWISE_AXIS, CUDNN_ATTR_POINTWISE_AXIS);
SDPA_SAME_VALUE(SDPA_A_ENGINEHEUR_MODE, CUDNN_ATTR_ENGINEHEUR_MODE);
SDPA_SAME_VALUE(SDPA_A_ENGINEHEUR_OPERATION_GRAPH, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH);
SDPA_SAME_VALUE(SDPA_A_ENGINEHEUR_RESULTS, CUDNN_ATTR_ENGINEHEUR_RESULTS);
SDPA_SAME_VALUE(SDPA_A_EXECUTION_PLAN_HANDLE, 400); /* deprecated name in cuDNN 9, same value */
SDPA_SAME_VALUE(SDPA_A_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG);
SDPA_SAME_VALUE(SDPA_A_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE);
SDPA_SAME_VALUE(SDPA_A_OP_POINTWISE_PW_DESCRIPTOR, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR);
SDPA_SAME_VALUE(SDPA_A_OP_POINTWISE_XDESC, CUDNN_ATTR_OPERATION_POINTWISE_XDESC);
SDPA_SAME_VALUE(SDPA_A_OP_POINTWISE_BDESC, CUDNN_ATTR_OPERATION_POINTWISE_BDESC);
SDPA_SAME_VALUE(SDPA_A_OP_POINTWISE_YDESC, CUDNN_ATTR_OPERATION_POINTWISE_YDESC);
SDPA_SAME_VALUE(SDPA_A_OP_POINTWISE_TDESC, CUDNN_ATTR_OPERATION_POINTWISE_TDESC);
SDPA_SAME_VALUE(SDPA_A_OPERATIONGRAPH_HANDLE, 800); /* deprecated name in cuDNN 9, same value */
SDPA_SAME_VALUE(SDPA_A_OPERATIONGRAPH_OPS, CUDNN_ATTR_OPERATIONGRAPH_OPS);
SDPA_SAME_VALUE(SDPA_A_TENSOR_BYTE_ALIGNMENT, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT);
SDPA_SAME_VALUE(SDPA_A_TENSOR_DATA_TYPE, CUDNN_ATTR_TENSOR_DATA_TYPE);
SDPA_SAME_VALUE(SDPA_A_TENSOR_DIMENSIONS, CUDNN_ATTR_TENSOR_DIMENSIONS);
SDPA_SAME_VALUE(SDPA_A_TENSOR_STRIDES, CUDNN_ATTR_TENSOR_STRIDES);
SDPA_SAME_VALUE(SDPA_A_TENSOR_UNIQUE_ID, CUDNN_ATTR_TENSOR_UNIQUE_ID);
SDPA_SAME_VALUE(SDPA_A_TENSOR_IS_VIRTUAL, CUDNN_ATTR_TENSOR_IS_VIRTUAL);
SDPA_SAME_VALUE(SDPA_A_TENSOR_IS_BY_VALUE, CUDNN_ATTR_TENSOR_IS_BY_VALUE);
SDPA_SAME_VALUE(SDPA_A_VARIANT_PACK_UNIQUE_IDS, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
SDPA_SAME_VALUE(SDPA_A_VARIANT_PACK_DATA_POINTERS, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS);
SDPA_SAME_VALUE(SDPA_A_VARIANT_PACK_WORKSPACE, CUDNN_ATTR_VARIANT_PACK_WORKSPACE);
SDPA_SAME_VALUE(SDPA_A_MATMUL_COMP_TYPE, CUDNN_ATTR_MATMUL_COMP_TYPE);
SDPA_SAME_VALUE(SDPA_A_OP_MATMUL_ADESC, CUDNN_ATTR_OPERATION_MATMUL_ADESC);
SDPA_SAME_VALUE(SDPA_A_OP_MATMUL_BDESC, CUDNN_ATTR_OPERATION_MATMUL_BDESC);
SDPA_SAME_VALUE(SDPA_A_OP_MATMUL_CDESC, CUDNN_ATTR_OPERATION_MATMUL_CDESC);
SDPA_SAME_VALUE(SDPA_A_OP_MATMUL_DESC, CUDNN_ATTR_OPERATION_MATMUL_DESC);
SDPA_SAME_VALUE(SDPA_A_REDUCTION_OPERATOR, CUDNN_ATTR_REDUCTION_OPERATOR);
SDPA_SAME_VALUE(SDPA_A_REDUCTION_COMP_TYPE, CUDNN_ATTR_REDUCTION_COMP_TYPE);
SDPA_SAME_VALUE(SDPA_A_OP_REDUCTION_XDESC, CUDNN_ATTR_OPERATION_REDUCTION_XDESC);
SDPA_SAME_VALUE(SDPA_A_OP_REDUCTION_YDESC, CUDNN_ATTR_OPERATION_REDUCTION_YDESC);
SDPA_SAME_VALUE(SDPA_A_OP_REDUCTION_DESC, CUDNN_ATTR_OPERATION_REDUCTION_DESC);
SDPA_SAME_VALUE(SDPA_A_OP_RESHAPE_XDESC, CUDNN_ATTR_OPERATION_RESHAPE_XDESC);
SDPA_SAME_VALUE(SDPA_A_OP_RESHAPE_YDESC, CUDNN_ATTR_OPERATION_RESHAPE_YDESC);
#endif
#endif

/* ---------------------------------------------------------------------------------------- */
/* loading                                                                                   */

static struct {
    int state; /* 0 not tried, 1 loaded, -1 failed (reason kept) */
    char reason[256];
    void *lib;
    SdpaGetVersionFn get_version;
    SdpaGetErrorStringFn error_string;
    SdpaCreateFn create;
    SdpaSetStreamFn set_stream;
    SdpaCreateDescFn create_desc;
    SdpaDestroyDescFn destroy_desc;
    SdpaFinalizeFn finalize;
    SdpaSetAttrFn set_attr;
    SdpaGetAttrFn get_attr;
    SdpaExecuteFn execute;
    SdpaHandle handle;
} dnn;

static int sdpa_load(void) {
    if (dnn.state)
        return dnn.state;
    dnn.state = -1;
    dnn.lib = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
    if (!dnn.lib) {
        const char *e = dlerror();
        snprintf(dnn.reason, sizeof dnn.reason, "cannot load libcudnn.so.9: %s", e ? e : "?");
        return -1;
    }
#define SDPA_SYM(field, name)                                                                      \
    do {                                                                                           \
        *(void **)&dnn.field = dlsym(dnn.lib, name);                                               \
        if (!dnn.field) {                                                                          \
            snprintf(dnn.reason, sizeof dnn.reason, "libcudnn.so.9 has no %s", name);              \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
    SDPA_SYM(get_version, "cudnnGetVersion");
    SDPA_SYM(error_string, "cudnnGetErrorString");
    SDPA_SYM(create, "cudnnCreate");
    SDPA_SYM(set_stream, "cudnnSetStream");
    SDPA_SYM(create_desc, "cudnnBackendCreateDescriptor");
    SDPA_SYM(destroy_desc, "cudnnBackendDestroyDescriptor");
    SDPA_SYM(finalize, "cudnnBackendFinalize");
    SDPA_SYM(set_attr, "cudnnBackendSetAttribute");
    SDPA_SYM(get_attr, "cudnnBackendGetAttribute");
    SDPA_SYM(execute, "cudnnBackendExecute");
#undef SDPA_SYM
    size_t v = dnn.get_version();
    if (v < 90000 || v >= 100000) {
        snprintf(dnn.reason, sizeof dnn.reason, "libcudnn.so.9 reports version %zu, not 9.x", v);
        return -1;
    }
    SdpaStatus s = dnn.create(&dnn.handle);
    if (s != 0) {
        snprintf(dnn.reason, sizeof dnn.reason, "cudnnCreate failed: %s", dnn.error_string(s));
        return -1;
    }
    dnn.state = 1;
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* graph building: every descriptor of a graph is kept in its list and destroyed with it      */

#define SDPA_MAX_DESCS 96

typedef struct SdpaBuild {
    SdpaDesc descs[SDPA_MAX_DESCS];
    int n;
    SdpaDesc ops[32];
    int n_ops;
    int failed;
    char reason[192];
} SdpaBuild;

static void sdpa_fail(SdpaBuild *b, const char *what, SdpaStatus s) {
    if (b->failed)
        return;
    b->failed = 1;
    snprintf(b->reason, sizeof b->reason, "%s: %s", what, dnn.error_string(s));
}

static SdpaDesc sdpa_new(SdpaBuild *b, unsigned int type) {
    SdpaDesc d = NULL;
    if (b->failed)
        return NULL;
    if (b->n == SDPA_MAX_DESCS) {
        b->failed = 1;
        snprintf(b->reason, sizeof b->reason, "too many descriptors");
        return NULL;
    }
    SdpaStatus s = dnn.create_desc(type, &d);
    if (s != 0) {
        sdpa_fail(b, "cudnnBackendCreateDescriptor", s);
        return NULL;
    }
    b->descs[b->n++] = d;
    return d;
}

static void sdpa_set(SdpaBuild *b, SdpaDesc d, unsigned int name, unsigned int type, int64_t n,
                     const void *v) {
    if (b->failed)
        return;
    SdpaStatus s = dnn.set_attr(d, name, type, n, v);
    if (s != 0) {
        char what[64];
        snprintf(what, sizeof what, "cudnnBackendSetAttribute(%u)", name);
        sdpa_fail(b, what, s);
    }
}

static void sdpa_finalize(SdpaBuild *b, SdpaDesc d, const char *what) {
    if (b->failed)
        return;
    SdpaStatus s = dnn.finalize(d);
    if (s != 0)
        sdpa_fail(b, what, s);
}

static void sdpa_build_free(SdpaBuild *b) {
    for (int i = b->n - 1; i >= 0; i--)
        dnn.destroy_desc(b->descs[i]);
    b->n = 0;
    b->n_ops = 0;
}

/* A 4-D tensor (b, h, rows, cols). Virtual tensors are f32 intermediates cuDNN never stores. */
static SdpaDesc sdpa_tensor(SdpaBuild *b, int64_t uid, int dtype, const int64_t dims[4],
                            const int64_t strides[4], int is_virtual, int by_value) {
    SdpaDesc t = sdpa_new(b, SDPA_D_TENSOR);
    int64_t align = 16;
    bool v = is_virtual != 0, bv = by_value != 0;
    sdpa_set(b, t, SDPA_A_TENSOR_DATA_TYPE, SDPA_TYPE_DATA_TYPE, 1, &dtype);
    sdpa_set(b, t, SDPA_A_TENSOR_DIMENSIONS, SDPA_TYPE_INT64, 4, dims);
    sdpa_set(b, t, SDPA_A_TENSOR_STRIDES, SDPA_TYPE_INT64, 4, strides);
    sdpa_set(b, t, SDPA_A_TENSOR_UNIQUE_ID, SDPA_TYPE_INT64, 1, &uid);
    sdpa_set(b, t, SDPA_A_TENSOR_BYTE_ALIGNMENT, SDPA_TYPE_INT64, 1, &align);
    sdpa_set(b, t, SDPA_A_TENSOR_IS_VIRTUAL, SDPA_TYPE_BOOLEAN, 1, &v);
    if (by_value)
        sdpa_set(b, t, SDPA_A_TENSOR_IS_BY_VALUE, SDPA_TYPE_BOOLEAN, 1, &bv);
    sdpa_finalize(b, t, "tensor descriptor");
    return t;
}

/* a virtual f32 tensor of dims d with packed strides (uid from a running counter) */
static SdpaDesc sdpa_virtual(SdpaBuild *b, int64_t *uid, const int64_t d[4], int dtype) {
    int64_t st[4] = {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1};
    return sdpa_tensor(b, (*uid)++, dtype, d, st, 1, 0);
}

static void sdpa_add_op(SdpaBuild *b, SdpaDesc op) {
    if (b->failed)
        return;
    ASSERT(b->n_ops < 32);
    b->ops[b->n_ops++] = op;
}

/* y = mode(x[, bb][, t]); axis for GEN_INDEX (else -1) */
static void sdpa_pointwise(SdpaBuild *b, int mode, SdpaDesc x, SdpaDesc bb, SdpaDesc t, SdpaDesc y,
                           int64_t axis) {
    SdpaDesc pw = sdpa_new(b, SDPA_D_POINTWISE);
    int prec = SDPA_DATA_FLOAT;
    sdpa_set(b, pw, SDPA_A_POINTWISE_MODE, SDPA_TYPE_POINTWISE_MODE, 1, &mode);
    sdpa_set(b, pw, SDPA_A_POINTWISE_MATH_PREC, SDPA_TYPE_DATA_TYPE, 1, &prec);
    if (axis >= 0)
        sdpa_set(b, pw, SDPA_A_POINTWISE_AXIS, SDPA_TYPE_INT64, 1, &axis);
    sdpa_finalize(b, pw, "pointwise descriptor");
    SdpaDesc op = sdpa_new(b, SDPA_D_OP_POINTWISE);
    sdpa_set(b, op, SDPA_A_OP_POINTWISE_PW_DESCRIPTOR, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
    sdpa_set(b, op, SDPA_A_OP_POINTWISE_XDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    if (bb)
        sdpa_set(b, op, SDPA_A_OP_POINTWISE_BDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &bb);
    if (t)
        sdpa_set(b, op, SDPA_A_OP_POINTWISE_TDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &t);
    sdpa_set(b, op, SDPA_A_OP_POINTWISE_YDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    sdpa_finalize(b, op, "pointwise operation");
    sdpa_add_op(b, op);
}

/* y (..., 1) = reduce(x) over the last dimension */
static void sdpa_reduce(SdpaBuild *b, int op_mode, SdpaDesc x, SdpaDesc y) {
    SdpaDesc r = sdpa_new(b, SDPA_D_REDUCTION);
    int prec = SDPA_DATA_FLOAT;
    sdpa_set(b, r, SDPA_A_REDUCTION_OPERATOR, SDPA_TYPE_REDUCTION_OPERATOR_TYPE, 1, &op_mode);
    sdpa_set(b, r, SDPA_A_REDUCTION_COMP_TYPE, SDPA_TYPE_DATA_TYPE, 1, &prec);
    sdpa_finalize(b, r, "reduction descriptor");
    SdpaDesc op = sdpa_new(b, SDPA_D_OP_REDUCTION);
    sdpa_set(b, op, SDPA_A_OP_REDUCTION_XDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    sdpa_set(b, op, SDPA_A_OP_REDUCTION_YDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    sdpa_set(b, op, SDPA_A_OP_REDUCTION_DESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &r);
    sdpa_finalize(b, op, "reduction operation");
    sdpa_add_op(b, op);
}

/* c = a @ b over the last two dimensions, batched over the first two; f32 compute */
static void sdpa_matmul(SdpaBuild *b, SdpaDesc a, SdpaDesc bm, SdpaDesc c) {
    SdpaDesc m = sdpa_new(b, SDPA_D_MATMUL);
    int prec = SDPA_DATA_FLOAT;
    sdpa_set(b, m, SDPA_A_MATMUL_COMP_TYPE, SDPA_TYPE_DATA_TYPE, 1, &prec);
    sdpa_finalize(b, m, "matmul descriptor");
    SdpaDesc op = sdpa_new(b, SDPA_D_OP_MATMUL);
    sdpa_set(b, op, SDPA_A_OP_MATMUL_ADESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &a);
    sdpa_set(b, op, SDPA_A_OP_MATMUL_BDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &bm);
    sdpa_set(b, op, SDPA_A_OP_MATMUL_CDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &c);
    sdpa_set(b, op, SDPA_A_OP_MATMUL_DESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &m);
    sdpa_finalize(b, op, "matmul operation");
    sdpa_add_op(b, op);
}

/* y = x viewed with y's dims and strides (the transposes of P and dS) */
static void sdpa_reshape(SdpaBuild *b, SdpaDesc x, SdpaDesc y) {
    SdpaDesc op = sdpa_new(b, SDPA_D_OP_RESHAPE);
    sdpa_set(b, op, SDPA_A_OP_RESHAPE_XDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    sdpa_set(b, op, SDPA_A_OP_RESHAPE_YDESC, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    sdpa_finalize(b, op, "reshape operation");
    sdpa_add_op(b, op);
}

/* ---------------------------------------------------------------------------------------- */
/* the two graphs                                                                            */

/* unique ids of the tensors the variant pack names */
enum {
    UID_Q = 1,
    UID_K,
    UID_KT,
    UID_V,
    UID_VT,
    UID_O,
    UID_STATS,
    UID_SCALE,
    UID_NEG_INF,
    UID_DO,
    UID_D,
    UID_DQ,
    UID_DK,
    UID_DV,
    UID_DS_SCALE,
    UID_VIRTUAL = 100
};

typedef struct SdpaShape {
    int64_t B, T, C, NH, HS;
    int dtype; /* of q, k, v, o and their gradients: SDPA_DATA_HALF or SDPA_DATA_BFLOAT16 */
} SdpaShape;

/* q/k/v and their transposes as views of qkv; o-like (B,T,C) tensors; the stats */
static void dims_qkv(const SdpaShape *s, int64_t d[4], int64_t st[4], int transposed) {
    d[0] = s->B, d[1] = s->NH, d[2] = transposed ? s->HS : s->T, d[3] = transposed ? s->T : s->HS;
    st[0] = s->T * 3 * s->C, st[1] = s->HS;
    st[2] = transposed ? 1 : 3 * s->C;
    st[3] = transposed ? 3 * s->C : 1;
}
static void dims_btc(const SdpaShape *s, int64_t d[4], int64_t st[4]) {
    d[0] = s->B, d[1] = s->NH, d[2] = s->T, d[3] = s->HS;
    st[0] = s->T * s->C, st[1] = s->HS, st[2] = s->C, st[3] = 1;
}
static void dims_stats(const SdpaShape *s, int64_t d[4], int64_t st[4]) {
    d[0] = s->B, d[1] = s->NH, d[2] = s->T, d[3] = 1;
    st[0] = s->NH * s->T, st[1] = s->T, st[2] = 1, st[3] = 1;
}

/* S = mask(scale * Q K^T): the causal scores, shared by both graphs; returns S */
static SdpaDesc sdpa_masked_scores(SdpaBuild *b, const SdpaShape *s, int64_t *uid, SdpaDesc q,
                                   SdpaDesc kt) {
    int64_t dss[4] = {s->B, s->NH, s->T, s->T}, one[4] = {1, 1, 1, 1};
    SdpaDesc scale = sdpa_tensor(b, UID_SCALE, SDPA_DATA_FLOAT, one, one, 0, 1);
    SdpaDesc ninf = sdpa_tensor(b, UID_NEG_INF, SDPA_DATA_FLOAT, one, one, 0, 1);
    SdpaDesc s0 = sdpa_virtual(b, uid, dss, SDPA_DATA_FLOAT);
    sdpa_matmul(b, q, kt, s0);
    SdpaDesc s1 = sdpa_virtual(b, uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_MUL, s0, scale, NULL, s1, -1);
    SdpaDesc row = sdpa_virtual(b, uid, dss, SDPA_DATA_INT32);
    SdpaDesc col = sdpa_virtual(b, uid, dss, SDPA_DATA_INT32);
    sdpa_pointwise(b, SDPA_PW_GEN_INDEX, s1, NULL, NULL, row, 2);
    sdpa_pointwise(b, SDPA_PW_GEN_INDEX, s1, NULL, NULL, col, 3);
    SdpaDesc keep = sdpa_virtual(b, uid, dss, SDPA_DATA_BOOLEAN);
    sdpa_pointwise(b, SDPA_PW_CMP_GE, row, col, NULL, keep, -1);
    SdpaDesc s2 = sdpa_virtual(b, uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_BINARY_SELECT, s1, ninf, keep, s2, -1); /* keep ? s1 : -inf */
    return s2;
}

static void sdpa_graph_forward(SdpaBuild *b, const SdpaShape *s) {
    int64_t uid = UID_VIRTUAL, d[4], st[4];
    int64_t dss[4] = {s->B, s->NH, s->T, s->T}, drow[4] = {s->B, s->NH, s->T, 1};
    dims_qkv(s, d, st, 0);
    SdpaDesc q = sdpa_tensor(b, UID_Q, s->dtype, d, st, 0, 0);
    SdpaDesc v = sdpa_tensor(b, UID_V, s->dtype, d, st, 0, 0);
    dims_qkv(s, d, st, 1);
    SdpaDesc kt = sdpa_tensor(b, UID_KT, s->dtype, d, st, 0, 0);
    dims_btc(s, d, st);
    SdpaDesc o = sdpa_tensor(b, UID_O, s->dtype, d, st, 0, 0);
    dims_stats(s, d, st);
    SdpaDesc stats = sdpa_tensor(b, UID_STATS, SDPA_DATA_FLOAT, d, st, 0, 0);

    SdpaDesc sc = sdpa_masked_scores(b, s, &uid, q, kt);
    SdpaDesc m = sdpa_virtual(b, &uid, drow, SDPA_DATA_FLOAT);
    sdpa_reduce(b, SDPA_REDUCE_MAX, sc, m);
    SdpaDesc z = sdpa_virtual(b, &uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_SUB, sc, m, NULL, z, -1);
    SdpaDesc e = sdpa_virtual(b, &uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_EXP, z, NULL, NULL, e, -1);
    SdpaDesc l = sdpa_virtual(b, &uid, drow, SDPA_DATA_FLOAT);
    sdpa_reduce(b, SDPA_REDUCE_ADD, e, l);
    SdpaDesc logl = sdpa_virtual(b, &uid, drow, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_LOG, l, NULL, NULL, logl, -1);
    sdpa_pointwise(b, SDPA_PW_ADD, logl, m, NULL, stats, -1);
    SdpaDesc p = sdpa_virtual(b, &uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_DIV, e, l, NULL, p, -1);
    sdpa_matmul(b, p, v, o);
}

static void sdpa_graph_backward(SdpaBuild *b, const SdpaShape *s) {
    int64_t uid = UID_VIRTUAL, d[4], st[4];
    int64_t dss[4] = {s->B, s->NH, s->T, s->T};
    int64_t dhd[4] = {s->B, s->NH, s->T, s->HS};
    dims_qkv(s, d, st, 0);
    SdpaDesc q = sdpa_tensor(b, UID_Q, s->dtype, d, st, 0, 0);
    SdpaDesc k = sdpa_tensor(b, UID_K, s->dtype, d, st, 0, 0);
    SdpaDesc dq = sdpa_tensor(b, UID_DQ, s->dtype, d, st, 0, 0);
    SdpaDesc dk = sdpa_tensor(b, UID_DK, s->dtype, d, st, 0, 0);
    SdpaDesc dv = sdpa_tensor(b, UID_DV, s->dtype, d, st, 0, 0);
    dims_qkv(s, d, st, 1);
    SdpaDesc kt = sdpa_tensor(b, UID_KT, s->dtype, d, st, 0, 0);
    SdpaDesc vt = sdpa_tensor(b, UID_VT, s->dtype, d, st, 0, 0);
    dims_btc(s, d, st);
    SdpaDesc o = sdpa_tensor(b, UID_O, s->dtype, d, st, 0, 0);
    SdpaDesc dout = sdpa_tensor(b, UID_DO, s->dtype, d, st, 0, 0);
    dims_stats(s, d, st);
    SdpaDesc stats = sdpa_tensor(b, UID_STATS, SDPA_DATA_FLOAT, d, st, 0, 0);
    SdpaDesc dsum = sdpa_tensor(b, UID_D, SDPA_DATA_FLOAT, d, st, 0, 0); /* in the workspace */
    int64_t one[4] = {1, 1, 1, 1};

    /* D = rowsum(dO * O) */
    SdpaDesc dodo = sdpa_virtual(b, &uid, dhd, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_MUL, dout, o, NULL, dodo, -1);
    sdpa_reduce(b, SDPA_REDUCE_ADD, dodo, dsum);
    /* P = exp(S - stats) */
    SdpaDesc sc = sdpa_masked_scores(b, s, &uid, q, kt);
    SdpaDesc z = sdpa_virtual(b, &uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_SUB, sc, stats, NULL, z, -1);
    SdpaDesc p = sdpa_virtual(b, &uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_EXP, z, NULL, NULL, p, -1);
    /* dV = P^T dO */
    int64_t pts[4] = {s->NH * s->T * s->T, s->T * s->T, 1, s->T}; /* (b,h,t2,t1) view */
    SdpaDesc ptr = sdpa_tensor(b, uid++, SDPA_DATA_FLOAT, dss, pts, 1, 0);
    sdpa_reshape(b, p, ptr);
    sdpa_matmul(b, ptr, dout, dv);
    /* dS = P (dO V^T - D) * scale */
    SdpaDesc dp = sdpa_virtual(b, &uid, dss, SDPA_DATA_FLOAT);
    sdpa_matmul(b, dout, vt, dp);
    SdpaDesc dpd = sdpa_virtual(b, &uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_SUB, dp, dsum, NULL, dpd, -1);
    SdpaDesc ds0 = sdpa_virtual(b, &uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_MUL, p, dpd, NULL, ds0, -1);
    SdpaDesc scale2 = sdpa_tensor(b, UID_DS_SCALE, SDPA_DATA_FLOAT, one, one, 0, 1);
    SdpaDesc ds = sdpa_virtual(b, &uid, dss, SDPA_DATA_FLOAT);
    sdpa_pointwise(b, SDPA_PW_MUL, ds0, scale2, NULL, ds, -1);
    /* dQ = dS K; dK = dS^T Q */
    sdpa_matmul(b, ds, k, dq);
    SdpaDesc dst = sdpa_tensor(b, uid++, SDPA_DATA_FLOAT, dss, pts, 1, 0);
    sdpa_reshape(b, ds, dst);
    sdpa_matmul(b, dst, q, dk);
}

/* ---------------------------------------------------------------------------------------- */
/* execution plans, cached per shape                                                         */

typedef struct SdpaPlan {
    SdpaShape shape;
    SdpaBuild graph[2]; /* 0 forward, 1 backward: the graph's descriptors */
    SdpaBuild exec[2];  /* the heuristics, engine config and execution plan */
    SdpaDesc plan[2];
    int64_t plan_workspace[2];
} SdpaPlan;

#define SDPA_CACHE 4
static SdpaPlan cache[SDPA_CACHE];
static int n_cache;

/* operation graph -> heuristics (mode A) -> the first engine config whose plan finalises */
static SdpaDesc sdpa_make_plan(SdpaBuild *g, SdpaBuild *x, int64_t *workspace) {
    SdpaDesc graph = sdpa_new(g, SDPA_D_OPERATIONGRAPH);
    sdpa_set(g, graph, SDPA_A_OPERATIONGRAPH_HANDLE, SDPA_TYPE_HANDLE, 1, &dnn.handle);
    sdpa_set(g, graph, SDPA_A_OPERATIONGRAPH_OPS, SDPA_TYPE_BACKEND_DESCRIPTOR, g->n_ops, g->ops);
    sdpa_finalize(g, graph, "operation graph");
    if (g->failed)
        return NULL;
    SdpaDesc heur = sdpa_new(x, SDPA_D_ENGINEHEUR);
    int mode = SDPA_HEUR_MODE_A;
    sdpa_set(x, heur, SDPA_A_ENGINEHEUR_OPERATION_GRAPH, SDPA_TYPE_BACKEND_DESCRIPTOR, 1, &graph);
    sdpa_set(x, heur, SDPA_A_ENGINEHEUR_MODE, SDPA_TYPE_HEUR_MODE, 1, &mode);
    sdpa_finalize(x, heur, "engine heuristics");
    enum { MAX_CFGS = 8 };
    SdpaDesc cfgs[MAX_CFGS];
    for (int i = 0; i < MAX_CFGS; i++)
        cfgs[i] = sdpa_new(x, SDPA_D_ENGINECFG);
    int64_t n_cfg = 0;
    if (!x->failed) {
        SdpaStatus st = dnn.get_attr(heur, SDPA_A_ENGINEHEUR_RESULTS, SDPA_TYPE_BACKEND_DESCRIPTOR,
                                     MAX_CFGS, &n_cfg, cfgs);
        if (st != 0)
            sdpa_fail(x, "engine heuristics results", st);
    }
    for (int64_t i = 0; i < n_cfg && !x->failed; i++) {
        SdpaDesc plan = sdpa_new(x, SDPA_D_EXECUTION_PLAN);
        sdpa_set(x, plan, SDPA_A_EXECUTION_PLAN_HANDLE, SDPA_TYPE_HANDLE, 1, &dnn.handle);
        sdpa_set(x, plan, SDPA_A_EXECUTION_PLAN_ENGINE_CONFIG, SDPA_TYPE_BACKEND_DESCRIPTOR, 1,
                 &cfgs[i]);
        if (x->failed)
            return NULL;
        if (dnn.finalize(plan) != 0)
            continue; /* this engine does not support the graph: try the next */
        int64_t n = 0;
        SdpaStatus st = dnn.get_attr(plan, SDPA_A_EXECUTION_PLAN_WORKSPACE_SIZE, SDPA_TYPE_INT64, 1,
                                     &n, workspace);
        if (st != 0) {
            sdpa_fail(x, "execution plan workspace size", st);
            return NULL;
        }
        return plan;
    }
    if (!x->failed) {
        x->failed = 1;
        snprintf(x->reason, sizeof x->reason,
                 "no engine of heuristic mode A runs this graph (%lld "
                 "configs tried)",
                 (long long)n_cfg);
    }
    return NULL;
}

static void sdpa_plan_free(SdpaPlan *p) {
    for (int k = 0; k < 2; k++) {
        sdpa_build_free(&p->exec[k]);
        sdpa_build_free(&p->graph[k]);
    }
    memset(p, 0, sizeof *p);
}

static SdpaPlan *sdpa_find(int dtype, int64_t B, int64_t T, int64_t C, int64_t NH) {
    for (int i = 0; i < n_cache; i++)
        if (cache[i].shape.B == B && cache[i].shape.T == T && cache[i].shape.C == C &&
            cache[i].shape.NH == NH && cache[i].shape.dtype == dtype)
            return &cache[i];
    return NULL;
}

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

static int sdpa_prepare(int dtype, int64_t B, int64_t T, int64_t C, int64_t NH,
                        size_t workspace_bytes, char *reason, size_t len) {
    if (sdpa_find(dtype, B, T, C, NH))
        return 0;
    if (sdpa_load() != 1) {
        snprintf(reason, len, "%s", dnn.reason);
        return -1;
    }
    if (C % 8 != 0) {
        snprintf(reason, len,
                 "q, k, v start at multiples of n_embd = %lld 16-bit values: cuDNN needs "
                 "16-byte alignment (n_embd a multiple of 8)",
                 (long long)C);
        return -1;
    }
    if (n_cache == SDPA_CACHE)
        sdpa_plan_free(&cache[--n_cache]);
    SdpaPlan *p = &cache[n_cache];
    memset(p, 0, sizeof *p);
    p->shape = (SdpaShape){B, T, C, NH, C / NH, dtype};
    sdpa_graph_forward(&p->graph[0], &p->shape);
    sdpa_graph_backward(&p->graph[1], &p->shape);
    for (int k = 0; k < 2; k++) {
        SdpaBuild *g = &p->graph[k], *x = &p->exec[k];
        if (!g->failed)
            p->plan[k] = sdpa_make_plan(g, x, &p->plan_workspace[k]);
        if (g->failed || x->failed) {
            snprintf(reason, len, "cuDNN refused the %s graph: %s", k ? "backward" : "forward",
                     g->failed ? g->reason : x->reason);
            sdpa_plan_free(p);
            return -1;
        }
    }
    size_t need = align256((size_t)(B * NH * T) * sizeof(float)) +
                  (size_t)(p->plan_workspace[0] > p->plan_workspace[1] ? p->plan_workspace[0]
                                                                       : p->plan_workspace[1]);
    if (need > workspace_bytes) {
        snprintf(reason, len,
                 "cuDNN's plans need %zu bytes of workspace, the memory plan has "
                 "%zu",
                 need, workspace_bytes);
        sdpa_plan_free(p);
        return -1;
    }
    n_cache++;
    return 0;
}

/* The plans of a shape, prepared now if gpt_attention_resolve did not (another batch shape);
 * NULL with the reason in the sticky device error when cuDNN cannot run it. */
static SdpaPlan *sdpa_prepared(int dtype, int64_t B, int64_t T, int64_t C, int64_t NH) {
    char reason[512];
    if (!sdpa_find(dtype, B, T, C, NH) &&
        sdpa_prepare(dtype, B, T, C, NH, gpt_cudnn_workspace_bytes(B, T, C, NH), reason,
                     sizeof reason) != 0) {
        gpt_cuda_error_record("cudnn_sdpa_prepare", reason, __FILE__, __LINE__);
        return NULL;
    }
    return sdpa_find(dtype, B, T, C, NH);
}

/* Runs one cached plan with the given (uid, pointer) pairs. */
static void sdpa_run(SdpaPlan *p, int k, int n, const int64_t *uids, void *const *ptrs,
                     void *workspace, void *stream) {
    SdpaBuild vp = {0};
    SdpaDesc pack = sdpa_new(&vp, SDPA_D_VARIANT_PACK);
    sdpa_set(&vp, pack, SDPA_A_VARIANT_PACK_UNIQUE_IDS, SDPA_TYPE_INT64, n, uids);
    sdpa_set(&vp, pack, SDPA_A_VARIANT_PACK_DATA_POINTERS, SDPA_TYPE_VOID_PTR, n, ptrs);
    sdpa_set(&vp, pack, SDPA_A_VARIANT_PACK_WORKSPACE, SDPA_TYPE_VOID_PTR, 1, &workspace);
    sdpa_finalize(&vp, pack, "variant pack");
    if (!vp.failed) {
        SdpaStatus st = dnn.set_stream(dnn.handle, (SdpaStream)stream);
        if (st == 0)
            st = dnn.execute(dnn.handle, p->plan[k], pack);
        if (st != 0)
            sdpa_fail(&vp, k ? "cudnnBackendExecute (backward)" : "cudnnBackendExecute (forward)",
                      st);
    }
    if (vp.failed)
        gpt_cuda_error_record("cuDNN SDPA", vp.reason, __FILE__, __LINE__);
    sdpa_build_free(&vp);
}

static void sdpa_forward(int dtype, void *out, void *lse, void *workspace, const void *qkv,
                         int64_t B, int64_t T, int64_t C, int64_t NH, void *stream) {
    SdpaPlan *p = sdpa_prepared(dtype, B, T, C, NH);
    if (!p)
        return;
    float scale = 1.0f / sqrtf((float)(C / NH)), ninf = -INFINITY;
    const uint16_t *x = qkv; /* 16-bit elements */
    int64_t uids[] = {UID_Q, UID_KT, UID_V, UID_O, UID_STATS, UID_SCALE, UID_NEG_INF};
    void *ptrs[] = {(void *)x, (void *)(x + C), (void *)(x + 2 * C), out, lse, &scale, &ninf};
    /* the forward plan's workspace starts after D's place, like the backward's */
    char *ws = (char *)workspace + align256((size_t)(B * NH * T) * sizeof(float));
    sdpa_run(p, 0, 7, uids, ptrs, ws, stream);
}

static void sdpa_backward(int dtype, void *dqkv, void *lse, void *workspace, const void *dout,
                          const void *out, const void *qkv, int64_t B, int64_t T, int64_t C,
                          int64_t NH, void *stream) {
    SdpaPlan *p = sdpa_prepared(dtype, B, T, C, NH);
    if (!p)
        return;
    float scale = 1.0f / sqrtf((float)(C / NH)), ninf = -INFINITY;
    const uint16_t *x = qkv;
    uint16_t *dx = dqkv;
    char *ws = (char *)workspace + align256((size_t)(B * NH * T) * sizeof(float));
    int64_t uids[] = {UID_Q, UID_K,  UID_KT, UID_VT, UID_O,     UID_DO,      UID_STATS,
                      UID_D, UID_DQ, UID_DK, UID_DV, UID_SCALE, UID_NEG_INF, UID_DS_SCALE};
    void *ptrs[] = {(void *)x,   (void *)(x + C), (void *)(x + C), (void *)(x + 2 * C),
                    (void *)out, (void *)dout,    (void *)lse,     workspace,
                    dx,          dx + C,          dx + 2 * C,      &scale,
                    &ninf,       &scale};
    sdpa_run(p, 1, 14, uids, ptrs, ws, stream);
}

/* the table's entries: float16 and bfloat16 */
int cudnn_sdpa_prepare(int64_t B, int64_t T, int64_t C, int64_t NH, size_t workspace_bytes,
                       char *reason, size_t len) {
    return sdpa_prepare(SDPA_DATA_HALF, B, T, C, NH, workspace_bytes, reason, len);
}
int cudnn_sdpa_prepare_bf16(int64_t B, int64_t T, int64_t C, int64_t NH, size_t workspace_bytes,
                            char *reason, size_t len) {
    return sdpa_prepare(SDPA_DATA_BFLOAT16, B, T, C, NH, workspace_bytes, reason, len);
}
void cudnn_sdpa_forward(void *out, void *lse, void *workspace, const void *qkv, int64_t B,
                        int64_t T, int64_t C, int64_t NH, void *stream) {
    sdpa_forward(SDPA_DATA_HALF, out, lse, workspace, qkv, B, T, C, NH, stream);
}
void cudnn_sdpa_forward_bf16(void *out, void *lse, void *workspace, const void *qkv, int64_t B,
                             int64_t T, int64_t C, int64_t NH, void *stream) {
    sdpa_forward(SDPA_DATA_BFLOAT16, out, lse, workspace, qkv, B, T, C, NH, stream);
}
void cudnn_sdpa_backward(void *dqkv, void *lse, void *workspace, const void *dout, const void *out,
                         const void *qkv, int64_t B, int64_t T, int64_t C, int64_t NH,
                         void *stream) {
    sdpa_backward(SDPA_DATA_HALF, dqkv, lse, workspace, dout, out, qkv, B, T, C, NH, stream);
}
void cudnn_sdpa_backward_bf16(void *dqkv, void *lse, void *workspace, const void *dout,
                              const void *out, const void *qkv, int64_t B, int64_t T, int64_t C,
                              int64_t NH, void *stream) {
    sdpa_backward(SDPA_DATA_BFLOAT16, dqkv, lse, workspace, dout, out, qkv, B, T, C, NH, stream);
}
