// A FlashInfer-shaped TVM-FFI module with a real CUDA kernel, written against the C ABI only (like the test
// fixtures): scale2(out, in) computes out = 2 * in on the stream TVM-FFI says the call runs on.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <stdint.h>

struct DLTensor {
  void* data; int32_t device_type, device_id; int32_t ndim; uint8_t code, bits; uint16_t lanes;
  int64_t* shape; int64_t* strides; uint64_t byte_offset;
};
struct Any { int32_t type_index; uint32_t pad; uint64_t v; };

static DLTensor* tensor(const Any& a) {
  if (a.type_index == 7) return (DLTensor*)a.v;
  if (a.type_index == 70) return (DLTensor*)((char*)a.v + 24);
  return nullptr;
}

__global__ void scale2_kernel(float* out, const float* in, int64_t n) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) out[i] = 2.0f * in[i];
}

extern "C" int __tvm_ffi_scale2(void*, const Any* args, int32_t n, Any* result) {
  typedef void* (*GetStream)(int32_t, int32_t);
  static GetStream get_stream = (GetStream)dlsym(RTLD_DEFAULT, "TVMFFIEnvGetStream");
  if (n != 2 || !tensor(args[0]) || !tensor(args[1])) return -2;
  DLTensor *out = tensor(args[0]), *in = tensor(args[1]);
  int64_t count = 1;
  for (int i = 0; i < in->ndim; i++) count *= in->shape[i];
  cudaStream_t stream = get_stream ? (cudaStream_t)get_stream(2, in->device_id) : 0;
  scale2_kernel<<<(unsigned)((count + 255) / 256), 256, 0, stream>>>(
      (float*)((char*)out->data + out->byte_offset), (const float*)((char*)in->data + in->byte_offset), count);
  result->type_index = 0;
  return cudaGetLastError() == cudaSuccess ? 0 : -2;
}

// write_at(out, idx): out[idx[0]] = 1 on the call's stream, idx an int64 device tensor. With idx[0] far past
// the end of `out` it is an out-of-bounds write: the kernel faults (an illegal address, 700) when it runs, and
// the fault depends on the data, so a graph captured with a safe index faults at the replay that gets a bad one.
__global__ void write_at_kernel(float* out, const int64_t* idx) { out[idx[0]] = 1.0f; }

extern "C" int __tvm_ffi_write_at(void*, const Any* args, int32_t n, Any* result) {
  typedef void* (*GetStream)(int32_t, int32_t);
  static GetStream get_stream = (GetStream)dlsym(RTLD_DEFAULT, "TVMFFIEnvGetStream");
  if (n != 2 || !tensor(args[0]) || !tensor(args[1])) return -2;
  DLTensor *out = tensor(args[0]), *idx = tensor(args[1]);
  cudaStream_t stream = get_stream ? (cudaStream_t)get_stream(2, out->device_id) : 0;
  write_at_kernel<<<1, 1, 0, stream>>>((float*)((char*)out->data + out->byte_offset),
                                       (const int64_t*)((char*)idx->data + idx->byte_offset));
  result->type_index = 0;
  return cudaGetLastError() == cudaSuccess ? 0 : -2;
}

// inspect(...): reads nothing; the GPU statistics check (gpu_stats.py) passes it tensors of every dtype and view
// so that the shim's level-5 lines can be compared with torch's numbers.
extern "C" int __tvm_ffi_inspect(void*, const Any*, int32_t, Any* result) {
  result->type_index = 0;
  return 0;
}
