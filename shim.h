/*
 * flashlog.h: the C view of what libflashlog.so exports.
 *
 * libflashlog.so is meant to be loaded with LD_PRELOAD (or through the `flashlog` launcher); nothing here
 * needs to be called by a program. It lists the symbols the library interposes, with the exact C ABI each
 * wrapper keeps, for C and C++ users who want to check what a process binds to, and for the C test fixtures.
 * Every wrapper calls the real function and returns its result unchanged.
 */
#ifndef FLASHLOG_SHIM_H
#define FLASHLOG_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Dynamic loader -------------------------------------------------------------------------------- */
/* Tail-jumps to glibc's dlsym for every name it does not hook, so RTLD_NEXT and RTLD_DEFAULT still resolve
 * relative to the real caller. Hooked: "__tvm_ffi_<f>" (f not starting with '_') in modules whose path
 * contains "flashinfer" (or matches FLASHLOG_MODULES), and the CUDA driver symbols below looked up in a
 * libcuda handle. At level 0 it returns exactly what glibc's dlsym returns. */
void* dlsym(void* handle, const char* symbol);

/* ---- TVM-FFI safe call, as wrapped ------------------------------------------------------------------ */
typedef struct {
  int32_t type_index;
  uint32_t small_str_len; /* zero padding except for SmallStr / SmallBytes */
  uint64_t payload;       /* v_int64, v_float64, v_ptr, v_c_str, v_obj, v_dtype, v_device, v_bytes */
} FlashlogTVMFFIAny;

/* int __tvm_ffi_<name>(void* self, const TVMFFIAny* args, int32_t num_args, TVMFFIAny* result) */
typedef int (*FlashlogSafeCall)(void* self, const FlashlogTVMFFIAny* args, int32_t num_args,
                                FlashlogTVMFFIAny* result);

/* ---- CUDA driver (cuda.h 12.x ABI; CUresult is int, 0 = success) ------------------------------------- */
typedef struct CUstream_st* FlashlogCUstream;
typedef struct CUgraph_st* FlashlogCUgraph;
typedef struct CUfunc_st* FlashlogCUfunction;

int cuStreamBeginCapture(FlashlogCUstream stream);
int cuStreamBeginCapture_ptsz(FlashlogCUstream stream);
int cuStreamBeginCapture_v2(FlashlogCUstream stream, int mode);
int cuStreamBeginCapture_v2_ptsz(FlashlogCUstream stream, int mode);
int cuStreamBeginCaptureToGraph(FlashlogCUstream stream, FlashlogCUgraph graph, const void* dependencies,
                                const void* dependency_data, size_t num_dependencies, int mode);
int cuStreamBeginCaptureToGraph_ptsz(FlashlogCUstream stream, FlashlogCUgraph graph, const void* dependencies,
                                     const void* dependency_data, size_t num_dependencies, int mode);
int cuStreamEndCapture(FlashlogCUstream stream, FlashlogCUgraph* graph);
int cuStreamEndCapture_ptsz(FlashlogCUstream stream, FlashlogCUgraph* graph);

int cuLaunchKernel(FlashlogCUfunction f, unsigned grid_x, unsigned grid_y, unsigned grid_z, unsigned block_x,
                   unsigned block_y, unsigned block_z, unsigned shared_mem_bytes, FlashlogCUstream stream,
                   void** kernel_params, void** extra);
int cuLaunchKernel_ptsz(FlashlogCUfunction f, unsigned grid_x, unsigned grid_y, unsigned grid_z,
                        unsigned block_x, unsigned block_y, unsigned block_z, unsigned shared_mem_bytes,
                        FlashlogCUstream stream, void** kernel_params, void** extra);
/* config is a const CUlaunchConfig* */
int cuLaunchKernelEx(const void* config, FlashlogCUfunction f, void** kernel_params, void** extra);
int cuLaunchKernelEx_ptsz(const void* config, FlashlogCUfunction f, void** kernel_params, void** extra);

/* Each successful lookup of a wrapped entry point (by base name, version and flags) is answered with the
 * wrapper of the same ABI; legacy and _ptsz variants stay distinct. */
int cuGetProcAddress(const char* symbol, void** pfn, int cuda_version, uint64_t flags);
int cuGetProcAddress_v2(const char* symbol, void** pfn, int cuda_version, uint64_t flags, int* symbol_status);

/* ---- CUDA runtime ----------------------------------------------------------------------------------- */
typedef struct { unsigned x, y, z; } FlashlogDim3;
int cudaLaunchKernel(const void* func, FlashlogDim3 grid, FlashlogDim3 block, void** args, size_t shared_mem,
                     void* stream);
int cudaLaunchKernel_ptsz(const void* func, FlashlogDim3 grid, FlashlogDim3 block, void** args,
                          size_t shared_mem, void* stream);
/* config is a const cudaLaunchConfig_t* */
int cudaLaunchKernelExC(const void* config, const void* func, void** args);
int cudaLaunchKernelExC_ptsz(const void* config, const void* func, void** args);

#ifdef __cplusplus
}
#endif

#endif /* FLASHLOG_SHIM_H */
