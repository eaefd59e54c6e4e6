//! The loader's list of objects, read without ever waiting for another thread's `dlopen`.
//!
//! glibc has two loader locks. `dlopen`, `dlclose`, `dlsym`, `dladdr` and `dlinfo`-style queries take the
//! load lock, which a `dlopen` holds from mapping to the end of the new objects' constructors (however long
//! they take, and whatever host lock they take). `dl_iterate_phdr` takes only the list lock, held for the
//! few instructions that link or unlink an object and while `dlclose` unmaps one, never across a
//! constructor; while a callback runs, no listed object can be unmapped. `_dl_find_object` (glibc 2.35) takes
//! no lock at all, and knows an object only once its `dlopen` has relocated it (and protected its RELRO
//! pages). So: [`walk`] lists objects and [`is_relocated`] tells whether one may be rewritten, and nothing
//! here waits for a constructor.

use crate::abi::got::LoadedObject;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One object as the walk shows it, borrowed from the loader for the duration of the callback.
pub struct ObjectView<'a> {
    /// Load bias (`dlpi_addr`).
    pub base: usize,
    /// Path as the loader knows it (empty for the main program).
    pub name: &'a [u8],
    headers: &'a [libc::Elf64_Phdr],
}

impl ObjectView<'_> {
    /// The file name (the last path component).
    pub fn file_name(&self) -> &[u8] {
        self.name.rsplit(|&b| b == b'/').next().unwrap_or(&[])
    }

    /// The start of the first `PT_LOAD` segment (0 when there is none).
    pub fn first_segment(&self) -> usize {
        self.headers
            .iter()
            .find(|ph| ph.p_type == libc::PT_LOAD)
            .map_or(0, |ph| self.base.wrapping_add(ph.p_vaddr as usize))
    }

    /// Whether `addr` lies in one of the object's mapped segments.
    pub fn contains(&self, addr: usize) -> bool {
        self.headers.iter().filter(|ph| ph.p_type == libc::PT_LOAD).any(|ph| {
            let start = self.base.wrapping_add(ph.p_vaddr as usize);
            addr >= start && addr < start.wrapping_add(ph.p_memsz as usize)
        })
    }

    /// A copy that outlives the callback.
    pub fn to_owned(&self) -> LoadedObject {
        let mut object = LoadedObject {
            base: self.base,
            name: self.name.to_vec(),
            dynamic: 0,
            segments: Vec::new(),
            relro: None,
            writable: Vec::new(),
        };
        for ph in self.headers {
            let start = self.base.wrapping_add(ph.p_vaddr as usize);
            let end = start.wrapping_add(ph.p_memsz as usize);
            match ph.p_type {
                libc::PT_LOAD => {
                    object.segments.push((start, end));
                    if ph.p_flags & libc::PF_W != 0 {
                        object.writable.push((start, end));
                    }
                }
                libc::PT_DYNAMIC => object.dynamic = start,
                libc::PT_GNU_RELRO => object.relro = Some((start, end)),
                _ => {}
            }
        }
        object
    }
}

/// Calls `f` for every loaded object, in load order, under the loader's list lock only (no object is
/// unmapped while `f` runs); returns the load counters (`dlpi_adds`, `dlpi_subs`) seen in the same walk.
/// `f` must not call a function that takes the load lock (`dlopen`, `dlsym`, `dladdr`, ...): a thread in
/// `dlopen` holds that one and then waits for the list lock. A panic in `f` stops the walk and is resumed
/// after it, outside the loader's frame.
pub fn walk(mut f: impl FnMut(&ObjectView)) -> (u64, u64) {
    struct Walk<'a> {
        f: &'a mut dyn FnMut(&ObjectView),
        counters: (u64, u64),
        panic: Option<Box<dyn std::any::Any + Send>>,
    }
    extern "C" fn visit(info: *mut libc::dl_phdr_info, size: usize, data: *mut c_void) -> i32 {
        // SAFETY: `data` is the `Walk` below; `info` and what it points to are valid during the callback.
        let (walk, info) = unsafe { (&mut *(data as *mut Walk), &*info) };
        if size >= std::mem::size_of::<libc::dl_phdr_info>() {
            walk.counters = (info.dlpi_adds, info.dlpi_subs);
        }
        let name = if info.dlpi_name.is_null() {
            &[][..]
        } else {
            // SAFETY: a NUL-terminated string owned by the loader.
            unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        let headers = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: the loader's program headers of this object, `dlpi_phnum` of them.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
        };
        let view = ObjectView { base: info.dlpi_addr as usize, name, headers };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (walk.f)(&view))) {
            Ok(()) => 0,
            Err(payload) => {
                walk.panic = Some(payload);
                1
            }
        }
    }
    let mut walk = Walk { f: &mut f, counters: (0, 0), panic: None };
    // SAFETY: the callback only hands a borrowed view to `f` and records the counters in `walk`.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut walk as *mut Walk).cast()) };
    if let Some(payload) = walk.panic {
        std::panic::resume_unwind(payload);
    }
    walk.counters
}

/// `_dl_find_object` when glibc has it (2.35 and later), found once by [`prepare`].
static FIND_OBJECT: AtomicUsize = AtomicUsize::new(0);

/// `struct dl_find_object` on x86-64 and aarch64, with room to spare for fields a later glibc appends.
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: usize,
    map_end: usize,
    link_map: *const usize,
    eh_frame: usize,
    reserved: [u64; 16],
}

type FindObjectFn = unsafe extern "C" fn(*mut c_void, *mut DlFindObject) -> i32;

/// Looks `_dl_find_object` up (with `dlvsym`, which takes the load lock: only where waiting is harmless,
/// the shim's constructor and the scans that already wait). Returns whether it exists.
pub fn prepare() -> bool {
    if FIND_OBJECT.load(Ordering::Acquire) != 0 {
        return true;
    }
    // SAFETY: dlvsym with constant NUL-terminated strings.
    let p = unsafe { libc::dlvsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr(), c"GLIBC_2.35".as_ptr()) };
    FIND_OBJECT.store(p as usize, Ordering::Release);
    !p.is_null()
}

/// Whether the loader has finished relocating the object whose load bias is `base` and which maps `addr`:
/// `_dl_find_object` knows it. None when that cannot be told without the load lock (glibc before 2.35, or
/// [`prepare`] not run yet). Lock-free, allocation-free.
pub fn is_relocated(addr: usize, base: usize) -> Option<bool> {
    let f = FIND_OBJECT.load(Ordering::Acquire);
    if f == 0 {
        return None;
    }
    // SAFETY: `f` is glibc's `_dl_find_object`; `out` is large enough for its result.
    let (rc, out) = unsafe {
        let find: FindObjectFn = std::mem::transmute::<usize, FindObjectFn>(f);
        let mut out: DlFindObject = std::mem::zeroed();
        (find(addr as *mut c_void, &mut out), out)
    };
    if rc != 0 || out.link_map.is_null() || addr < out.map_start || addr >= out.map_end {
        return Some(false);
    }
    // SAFETY: a `struct link_map` of a loaded object; its first field is `l_addr`, the load bias.
    Some(unsafe { *out.link_map } == base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_finds_libc_relocated() {
        assert!(prepare(), "glibc 2.35 or later");
        let mut found = None;
        let (adds, _) = walk(|v| {
            if v.file_name().starts_with(b"libc.so") {
                found = Some((v.first_segment(), v.base, v.contains(libc::malloc as *const () as usize)));
            }
        });
        assert!(adds > 0);
        let (first, base, has_malloc) = found.expect("libc listed");
        assert!(has_malloc);
        assert_eq!(is_relocated(first, base), Some(true));
        assert_eq!(is_relocated(first, base + 4096), Some(false));
    }
}
