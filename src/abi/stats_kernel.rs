//! The ABI of the library's own statistics kernel (`src/gpu/stats_kernel.cu`): `#[repr(C)]` mirrors of the
//! structs of `src/gpu/stats_core.h`, the driver functions that load and launch it (from the libcuda the host
//! loaded, as `cuda_driver` does), and the page-locked memory its blocks write their partials to. The only
//! code that calls those driver functions or reads that memory.

use super::dl::{loaded_object, real_dlsym};
use std::ffi::{c_char, c_void, CStr};
use std::sync::OnceLock;

/// Dimensions a descriptor holds (`FL_MAX_DIMS`).
pub const MAX_DIMS: usize = 8;
/// Tensors per launch (`FL_MAX_TENSORS`): 8 + 23 * 176 = 4,056 bytes of parameters, under the 4 KiB every
/// driver from CUDA 12.0 takes.
pub const MAX_TENSORS: usize = 23;
/// Threads per block (`FL_THREADS`).
pub const THREADS: u32 = 256;
/// The kernel's name in the PTX (`FL_ENTRY`).
pub const ENTRY: &CStr = c"flashlog_stats_v1";

/// One tensor of a launch (`fl_desc`, 176 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Desc {
    /// Device address of element 0 of the simplified view (every stride >= 0).
    pub base: u64,
    /// Page-locked host address of `nblocks` [`Partial`]s.
    pub partials: u64,
    /// Elements of the simplified view.
    pub n: u64,
    /// Elements per block.
    pub per_block: u64,
    /// Sizes, outermost first (`ndim` used).
    pub sizes: [u64; MAX_DIMS],
    /// Strides in elements, >= 0.
    pub strides: [i64; MAX_DIMS],
    /// Dimensions used, 1 to 8.
    pub ndim: u32,
    /// `FL_*` element kind.
    pub kind: u32,
    /// Blocks of this tensor (`blockIdx.x < nblocks`).
    pub nblocks: u32,
    /// Minifloat layout: `exp_bits | man_bits << 8 | bias << 16 | specials << 24`.
    pub fmt: u32,
}

/// The kernel's one parameter (`fl_batch`, 4,056 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    /// Descriptors used.
    pub count: u32,
    /// Padding (0).
    pub pad: u32,
    /// The descriptors.
    pub d: [Desc; MAX_TENSORS],
}

impl Default for Batch {
    fn default() -> Self {
        Batch { count: 0, pad: 0, d: [Desc::default(); MAX_TENSORS] }
    }
}

/// One block's statistics (`fl_partial`, 96 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Partial {
    /// Smallest non-NaN value (float kinds).
    pub min: f64,
    /// Largest non-NaN value (float kinds).
    pub max: f64,
    /// Sum of the non-NaN values in `f64` (wide float kinds).
    pub sum: f64,
    /// NaN values.
    pub nan: u64,
    /// +infinity values.
    pub pinf: u64,
    /// -infinity values.
    pub ninf: u64,
    /// Values seen.
    pub count: u64,
    /// Exact sum, low 64 bits (integers; minifloats in units of their smallest subnormal).
    pub isum_lo: u64,
    /// Exact sum, high 64 bits (two's complement).
    pub isum_hi: u64,
    /// Smallest integer (bits; unsigned for unsigned kinds).
    pub imin: u64,
    /// Largest integer (bits).
    pub imax: u64,
    /// Padding.
    pub pad: u64,
}

const _: () = assert!(std::mem::size_of::<Desc>() == 176);
const _: () = assert!(std::mem::size_of::<Batch>() == 4056);
const _: () = assert!(std::mem::size_of::<Partial>() == 96);

type LibraryLoadDataFn = unsafe extern "C" fn(
    *mut usize,
    *const c_void,
    *mut c_void,
    *mut *mut c_void,
    u32,
    *mut c_void,
    *mut *mut c_void,
    u32,
) -> i32;
type LibraryGetKernelFn = unsafe extern "C" fn(*mut usize, usize, *const c_char) -> i32;
type ModuleLoadDataFn = unsafe extern "C" fn(*mut usize, *const c_void) -> i32;
type ModuleGetFunctionFn = unsafe extern "C" fn(*mut usize, usize, *const c_char) -> i32;
type KernelGetFunctionFn = unsafe extern "C" fn(*mut usize, usize) -> i32;
type StreamGetCtxFn = unsafe extern "C" fn(usize, *mut usize) -> i32;
type CtxGetCurrentFn = unsafe extern "C" fn(*mut usize) -> i32;
type PointerGetAttributeFn = unsafe extern "C" fn(*mut c_void, i32, u64) -> i32;
type CtxGetDeviceFn = unsafe extern "C" fn(*mut i32) -> i32;
type DeviceGetAttributeFn = unsafe extern "C" fn(*mut i32, i32, i32) -> i32;
type LaunchKernelFn =
    unsafe extern "C" fn(usize, u32, u32, u32, u32, u32, u32, u32, usize, *mut *mut c_void, *mut *mut c_void) -> i32;

/// The driver functions of the kernel's loading and launching (each None when the driver lacks it).
pub struct KernelApi {
    library_load_data: Option<LibraryLoadDataFn>,
    library_get_kernel: Option<LibraryGetKernelFn>,
    kernel_get_function: Option<KernelGetFunctionFn>,
    module_load_data: Option<ModuleLoadDataFn>,
    module_get_function: Option<ModuleGetFunctionFn>,
    stream_get_ctx: Option<StreamGetCtxFn>,
    ctx_get_current: Option<CtxGetCurrentFn>,
    ctx_get_device: Option<CtxGetDeviceFn>,
    device_get_attribute: Option<DeviceGetAttributeFn>,
    pointer_get_attribute: Option<PointerGetAttributeFn>,
    launch_kernel: Option<LaunchKernelFn>,
    launch_kernel_ptsz: Option<LaunchKernelFn>,
}

static API: OnceLock<KernelApi> = OnceLock::new();

/// The functions of the libcuda the host loaded; None while none is loaded.
pub fn api() -> Option<&'static KernelApi> {
    if let Some(a) = API.get() {
        return Some(a);
    }
    let handle = loaded_object("libcuda.so")?;
    let lookup = |name: &CStr| real_dlsym(handle, name);
    // SAFETY: each symbol is the driver's function of the signature in cuda.h 12.x given by its type alias; a
    // missing one stays None.
    let a = unsafe {
        KernelApi {
            library_load_data: cast(lookup(c"cuLibraryLoadData")),
            library_get_kernel: cast(lookup(c"cuLibraryGetKernel")),
            kernel_get_function: cast(lookup(c"cuKernelGetFunction")),
            module_load_data: cast(lookup(c"cuModuleLoadData")),
            module_get_function: cast(lookup(c"cuModuleGetFunction")),
            stream_get_ctx: cast(lookup(c"cuStreamGetCtx")),
            ctx_get_current: cast(lookup(c"cuCtxGetCurrent")),
            ctx_get_device: cast(lookup(c"cuCtxGetDevice")),
            device_get_attribute: cast(lookup(c"cuDeviceGetAttribute")),
            pointer_get_attribute: cast(lookup(c"cuPointerGetAttribute")),
            launch_kernel: cast(lookup(c"cuLaunchKernel")),
            launch_kernel_ptsz: cast(lookup(c"cuLaunchKernel_ptsz")),
        }
    };
    Some(API.get_or_init(|| a))
}

/// # Safety
/// `addr` must be 0 or the address of a function of type `F`.
unsafe fn cast<F: Copy>(addr: usize) -> Option<F> {
    (addr != 0).then(|| std::mem::transmute_copy::<usize, F>(&addr))
}

fn check(rc: i32) -> Result<(), i32> {
    if rc == 0 {
        Ok(())
    } else {
        Err(rc)
    }
}

impl KernelApi {
    /// Whether the driver has the library API (CUDA 12.0 and later).
    pub fn has_library_api(&self) -> bool {
        self.library_load_data.is_some() && self.library_get_kernel.is_some()
    }

    /// `cuLibraryLoadData` of the NUL-terminated `image`, then `cuLibraryGetKernel` of [`ENTRY`]: the kernel
    /// handle (usable as a `CUfunction` in any context). Never call it while a capture may run.
    pub fn load_library(&self, image: &'static [u8]) -> Result<usize, i32> {
        let (load, get) = (self.library_load_data.ok_or(-1)?, self.library_get_kernel.ok_or(-1)?);
        assert!(image.last() == Some(&0), "image must be NUL-terminated");
        let (mut lib, mut kernel) = (0usize, 0usize);
        let null = std::ptr::null_mut();
        // SAFETY: valid out-parameters; the image is a NUL-terminated PTX text living for the process; no
        // options.
        unsafe {
            check(load(&mut lib, image.as_ptr().cast(), null, null.cast(), 0, null, null.cast(), 0))?;
            check(get(&mut kernel, lib, ENTRY.as_ptr()))?;
        }
        Ok(kernel)
    }

    /// `cuModuleLoadData` of `image` into the current context, then `cuModuleGetFunction` of [`ENTRY`]. Never
    /// call it while a capture may run.
    pub fn load_module(&self, image: &'static [u8]) -> Result<usize, i32> {
        let (load, get) = (self.module_load_data.ok_or(-1)?, self.module_get_function.ok_or(-1)?);
        assert!(image.last() == Some(&0), "image must be NUL-terminated");
        let (mut module, mut function) = (0usize, 0usize);
        // SAFETY: valid out-parameters; the image is a NUL-terminated PTX text living for the process.
        unsafe {
            check(load(&mut module, image.as_ptr().cast()))?;
            check(get(&mut function, module, ENTRY.as_ptr()))?;
        }
        Ok(function)
    }

    /// `cuKernelGetFunction`: forces the kernel's load into the current context (before a capture starts).
    pub fn kernel_function(&self, kernel: usize) -> Result<usize, i32> {
        let f = self.kernel_get_function.ok_or(-1)?;
        let mut function = 0usize;
        // SAFETY: valid out-parameter; `kernel` came from `load_library`.
        check(unsafe { f(&mut function, kernel) })?;
        Ok(function)
    }

    /// The context of `stream` (`cuStreamGetCtx`; the current one for the legacy and per-thread streams).
    pub fn stream_context(&self, stream: usize) -> Result<usize, i32> {
        let mut ctx = 0usize;
        if stream <= 2 {
            let f = self.ctx_get_current.ok_or(-1)?;
            // SAFETY: valid out-parameter.
            check(unsafe { f(&mut ctx) })?;
        } else {
            let f = self.stream_get_ctx.ok_or(-1)?;
            // SAFETY: valid out-parameter; the stream handle is the host's.
            check(unsafe { f(stream, &mut ctx) })?;
        }
        Ok(ctx)
    }

    /// Whether `[addr, addr + len)` lies inside one device allocation (`cuPointerGetAttribute`
    /// RANGE_START_ADDR and RANGE_SIZE, safe during captures). A kernel that reads outside its allocation
    /// faults with a sticky error that ends the host's use of CUDA, so no view is launched unless this holds.
    pub fn within_allocation(&self, addr: u64, len: u64) -> bool {
        let Some(f) = self.pointer_get_attribute else {
            return false;
        };
        let (mut start, mut size) = (0u64, 0u64);
        // SAFETY: valid out-parameters of the attributes' types (CUdeviceptr and size_t; 11 and 12).
        let ok = unsafe {
            f((&mut start as *mut u64).cast(), 11, addr) == 0 && f((&mut size as *mut u64).cast(), 12, addr) == 0
        };
        ok && addr >= start && len <= size && addr - start <= size - len
    }

    /// The compute capability (major) of the current context's device.
    pub fn current_major(&self) -> Result<i32, i32> {
        let (dev_fn, attr) = (self.ctx_get_device.ok_or(-1)?, self.device_get_attribute.ok_or(-1)?);
        let (mut dev, mut major) = (0i32, 0i32);
        // SAFETY: valid out-parameters; CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75.
        unsafe {
            check(dev_fn(&mut dev))?;
            check(attr(&mut major, 75, dev))?;
        }
        Ok(major)
    }

    /// Launches the kernel `function` on `stream` (`cuLaunchKernel`, or `_ptsz` for the per-thread default
    /// stream) for the tensors of `batch`: grid (`blocks_x`, count), [`THREADS`] threads, the parameters passed
    /// as one buffer of exactly `size_of::<Batch>()` bytes. Every descriptor's partials must lie in the
    /// page-locked range `[lo, hi)` (checked: Err(-1) otherwise); its data must lie in one device allocation
    /// (the caller checked [`KernelApi::within_allocation`]). On a capturing stream: a kernel node.
    #[allow(clippy::too_many_arguments)]
    pub fn launch(
        &self,
        function: usize,
        stream: usize,
        per_thread: bool,
        batch: &Batch,
        blocks_x: u32,
        (lo, hi): (u64, u64),
    ) -> Result<(), i32> {
        let f = if per_thread { self.launch_kernel_ptsz } else { self.launch_kernel }.ok_or(-1)?;
        let count = (batch.count as usize).min(MAX_TENSORS);
        let size = std::mem::size_of::<Partial>() as u64;
        let inside =
            |d: &Desc| d.partials >= lo && d.partials.checked_add(d.nblocks as u64 * size).is_some_and(|e| e <= hi);
        if count == 0 || !batch.d[..count].iter().all(inside) {
            return Err(-1);
        }
        let mut size = std::mem::size_of::<Batch>();
        let mut extra: [*mut c_void; 5] = [
            std::ptr::dangling_mut::<c_void>(), // 1: CU_LAUNCH_PARAM_BUFFER_POINTER
            batch as *const Batch as *mut c_void,
            2 as *mut c_void, // CU_LAUNCH_PARAM_BUFFER_SIZE
            &mut size as *mut usize as *mut c_void,
            std::ptr::null_mut(), // CU_LAUNCH_PARAM_END
        ];
        let grid_y = count as u32;
        // SAFETY: the parameter buffer is a live `Batch` of the size the PTX declares (the driver copies it at
        // the launch); `extra` is terminated; every partials span lies in page-locked memory never freed.
        check(unsafe {
            f(function, blocks_x.max(1), grid_y, 1, THREADS, 1, 1, 0, stream, std::ptr::null_mut(), extra.as_mut_ptr())
        })
    }
}

/// Page-locked memory the kernel's blocks write their partials to (from `cuMemAllocHost_v2`, never freed).
#[derive(Debug)]
pub struct PartialsArena {
    addr: usize,
    slots: usize,
}

impl PartialsArena {
    /// `slots` partials of page-locked memory from the host's driver, or None. An allocation: never while a
    /// capture may run.
    pub fn alloc(driver: &super::cuda_driver::Driver, slots: usize) -> Option<PartialsArena> {
        let addr = driver.alloc_host(slots * std::mem::size_of::<Partial>()).ok()?;
        Some(PartialsArena { addr, slots })
    }

    /// Partials the arena holds.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The device-visible address of slot `i` (unified addressing: the host pointer is valid on every device).
    pub fn slot_addr(&self, i: usize) -> u64 {
        (self.addr + i.min(self.slots) * std::mem::size_of::<Partial>()) as u64
    }

    /// The arena's address range, for [`KernelApi::launch`].
    pub fn range(&self) -> (u64, u64) {
        (self.addr as u64, (self.addr + self.slots * std::mem::size_of::<Partial>()) as u64)
    }

    /// Copies of `n` partials from slot `first`, as the kernel left them.
    pub fn read(&self, first: usize, out: &mut [Partial]) {
        let n = out.len().min(self.slots.saturating_sub(first));
        // SAFETY: the slots lie inside the page-locked block (never freed); the caller synchronised the stream
        // after the launches that write them, so no kernel writes them now. Volatile reads: the writer is the
        // device, not Rust.
        unsafe {
            let base = (self.addr as *const Partial).add(first);
            for (i, o) in out[..n].iter_mut().enumerate() {
                *o = std::ptr::read_volatile(base.add(i));
            }
        }
    }
}
