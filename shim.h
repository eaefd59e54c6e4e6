/*
 * flashlog.h: the C view of what libflashlog.so exports.
 *
 * libflashlog.so is meant to be loaded with LD_PRELOAD (or through the `flashlog` launcher); nothing here
 * needs to be called by a program. It exports exactly one symbol, dlsym; the types below describe the
 * calls it wraps, for C and C++ users who want to check what a process binds to, and for the C test
 * fixtures. Every wrapper calls the real function and returns its result unchanged.
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
 * contains "flashinfer" (or matches FLASHLOG_MODULES), and the CUDA driver symbols listed below looked up in a
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

/* ---- CUDA driver --------------------------------------------------------------------------------- */
/* Nothing else is exported: an exported cuLaunchKernel would bind every reference in the process by name
 * (a library's own data object or function of that name included). Driver calls are seen through the
 * process's own routes instead: GOT slots of objects that call into a libcuda are rewritten to the
 * shim's wrappers (the PLT route), dlsym(libcuda_handle, name) hands out a wrapper, and cuGetProcAddress
 * answers (which libcudart uses for every driver function) are replaced by wrappers of the same ABI. The
 * wrapped driver entry points: cuStreamBeginCapture[_v2][_ptsz], cuStreamBeginCaptureToGraph[_ptsz],
 * cuStreamEndCapture[_ptsz], cuLaunchKernel[_ptsz], cuLaunchKernelEx[_ptsz], cuGetProcAddress[_v2]. */

#ifdef __cplusplus
}
#endif

#endif /* FLASHLOG_SHIM_H */
