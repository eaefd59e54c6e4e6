//! The ELF side of the PLT route: the loader's load counters (`dl_iterate_phdr`; the objects themselves are
//! listed by `abi::objects`), their dynamic relocations
//! that fill a GOT slot by symbol name (jump slots and data slots), and the write of one slot (made writable
//! for the write when it lies in a read-only-after-relocation page, then restored). What to write where is
//! decided in `intercept::plt`; this module only reads and writes what it is told.

use crate::arch;
use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

const DT_NULL: i64 = 0;
const DT_PLTRELSZ: i64 = 2;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_RELA: i64 = 7;
const DT_RELASZ: i64 = 8;
const DT_STRSZ: i64 = 10;
const DT_PLTREL: i64 = 20;
const DT_JMPREL: i64 = 23;
/// `DT_RELACOUNT`: the number of relative relocations at the start of `DT_RELA` (no symbol: skipped).
const DT_RELACOUNT: i64 = 0x6fff_fff9;
/// `STT_FUNC`.
pub const STT_FUNC: u8 = 2;
/// `STT_GNU_IFUNC`.
pub const STT_GNU_IFUNC: u8 = 10;

#[repr(C)]
struct Dyn {
    tag: i64,
    val: u64,
}

#[repr(C)]
struct Rela {
    offset: u64,
    info: u64,
    addend: i64,
}

#[repr(C)]
struct Sym {
    name: u32,
    info: u8,
    other: u8,
    shndx: u16,
    value: u64,
    size: u64,
}

/// One loaded object as `dl_iterate_phdr` shows it, copied out of the callback.
pub struct LoadedObject {
    /// Load bias (`dlpi_addr`).
    pub base: usize,
    /// Path as the loader knows it (empty for the main program).
    pub name: Vec<u8>,
    /// Relocated address of the dynamic section, 0 when the object has none.
    pub dynamic: usize,
    /// Mapped `PT_LOAD` ranges `[start, end)`.
    pub segments: Vec<(usize, usize)>,
    /// `PT_GNU_RELRO` range, when there is one.
    pub relro: Option<(usize, usize)>,
    /// The `PT_LOAD` ranges mapped writable (`PF_W`).
    pub writable: Vec<(usize, usize)>,
}

impl LoadedObject {
    /// Whether `addr` lies in one of the object's mapped segments.
    pub fn contains(&self, addr: usize) -> bool {
        self.segments.iter().any(|&(s, e)| addr >= s && addr < e)
    }

    /// The file name (the last path component).
    #[cfg(test)]
    pub fn file_name(&self) -> &[u8] {
        self.name.rsplit(|&b| b == b'/').next().unwrap_or(&[])
    }
}

/// The loader's counters of objects ever added and removed (`dlpi_adds`, `dlpi_subs`): a change means the
/// set of loaded objects changed. One callback, which stops the walk at once.
pub fn load_counters() -> (u64, u64) {
    extern "C" fn first(info: *mut libc::dl_phdr_info, size: usize, data: *mut c_void) -> i32 {
        if size >= std::mem::size_of::<libc::dl_phdr_info>() {
            // SAFETY: `info` is valid during the callback and large enough for the counters; `data` is ours.
            unsafe { *(data as *mut (u64, u64)) = ((*info).dlpi_adds, (*info).dlpi_subs) };
        }
        1
    }
    let mut counters = (0u64, 0u64);
    // SAFETY: the callback only copies two integers into `counters`.
    unsafe { libc::dl_iterate_phdr(Some(first), (&mut counters as *mut (u64, u64)).cast()) };
    counters
}

/// Which kind of GOT slot a relocation fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// A PLT slot (`JUMP_SLOT`); may still point into the object's own PLT under lazy binding.
    Jump,
    /// A data slot (`GLOB_DAT`).
    Data,
}

/// The tables the dynamic section names, relocated.
struct Tables {
    symtab: usize,
    strtab: usize,
    strsz: usize,
    rela: (usize, usize),
    jmprel: (usize, usize),
    pltrel_is_rela: bool,
    relative_count: usize,
}

/// An address from the dynamic section: glibc relocates most of them in place (x86-64, aarch64), but a
/// value below the load bias is still an offset.
fn absolute(base: usize, value: u64) -> usize {
    let v = value as usize;
    if v < base {
        base.wrapping_add(v)
    } else {
        v
    }
}

/// Reads the object's dynamic section.
///
/// # Safety
/// `obj` must be loaded (and stay loaded while the caller uses the result).
unsafe fn tables(obj: &LoadedObject) -> Option<Tables> {
    if obj.dynamic == 0 {
        return None;
    }
    let mut t = Tables {
        symtab: 0,
        strtab: 0,
        strsz: 0,
        rela: (0, 0),
        jmprel: (0, 0),
        pltrel_is_rela: true,
        relative_count: 0,
    };
    let mut d = obj.dynamic as *const Dyn;
    for _ in 0..4096 {
        // SAFETY: `obj` is loaded, and its dynamic section runs from `obj.dynamic` to its `DT_NULL` entry
        // (bounded by 4096 entries); the loop stops at that entry.
        let Dyn { tag, val } = unsafe { std::ptr::read(d) };
        match tag {
            DT_NULL => break,
            DT_SYMTAB => t.symtab = absolute(obj.base, val),
            DT_STRTAB => t.strtab = absolute(obj.base, val),
            DT_STRSZ => t.strsz = val as usize,
            DT_RELA => t.rela.0 = absolute(obj.base, val),
            DT_RELASZ => t.rela.1 = val as usize,
            DT_JMPREL => t.jmprel.0 = absolute(obj.base, val),
            DT_PLTRELSZ => t.jmprel.1 = val as usize,
            DT_PLTREL => t.pltrel_is_rela = val as i64 == DT_RELA,
            DT_RELACOUNT => t.relative_count = val as usize,
            _ => {}
        }
        // SAFETY: `d` was not the `DT_NULL` entry, so the next entry is still inside the section.
        d = unsafe { d.add(1) };
    }
    (t.symtab != 0 && t.strtab != 0 && t.pltrel_is_rela).then_some(t)
}

/// Calls `f(symbol name, symbol type in this object's table, slot address, kind)` for every jump-slot and
/// data-slot relocation of `obj` (`R_*_JUMP_SLOT`, `R_*_GLOB_DAT`) whose symbol name starts with `prefix`
/// (compared before the name's length is ever taken: large objects have thousands of relocations).
///
/// # Safety
/// `obj` must be loaded while this runs (the caller holds a reference to it).
pub unsafe fn for_each_slot(obj: &LoadedObject, prefix: &[u8], mut f: impl FnMut(&CStr, u8, usize, SlotKind)) {
    // SAFETY: `obj` is loaded while this runs (the caller's contract).
    let Some(t) = (unsafe { tables(obj) }) else {
        return;
    };
    for (start, bytes, skip) in [(t.jmprel.0, t.jmprel.1, 0), (t.rela.0, t.rela.1, t.relative_count)] {
        if start == 0 || bytes == 0 {
            continue;
        }
        // SAFETY: `DT_JMPREL`/`DT_RELA` with their sizes describe arrays of `Rela` inside the loaded object.
        let relocs = unsafe { std::slice::from_raw_parts(start as *const Rela, bytes / std::mem::size_of::<Rela>()) };
        for r in relocs.iter().skip(skip) {
            let kind = match (r.info & 0xffff_ffff) as u32 {
                arch::JUMP_SLOT => SlotKind::Jump,
                arch::GLOB_DAT => SlotKind::Data,
                _ => continue,
            };
            let index = (r.info >> 32) as usize;
            if index == 0 {
                continue;
            }
            // SAFETY: a relocation's symbol index names an entry of the object's own `DT_SYMTAB`.
            let sym = unsafe { &*((t.symtab as *const Sym).add(index)) };
            if t.strsz != 0 && sym.name as usize >= t.strsz {
                continue;
            }
            let name = (t.strtab + sym.name as usize) as *const u8;
            // A NUL in the name ends the comparison with a mismatch: no read past the string.
            // SAFETY: `name` is inside `DT_STRTAB` (checked against `DT_STRSZ` when known) and NUL-terminated;
            // the comparison stops at the first mismatch, a NUL included.
            if (0..prefix.len()).any(|i| unsafe { *name.add(i) } != prefix[i]) {
                continue;
            }
            // SAFETY: as above: a NUL-terminated string of the object's string table.
            let name = unsafe { CStr::from_ptr(name.cast()) };
            f(name, sym.info & 0xf, obj.base.wrapping_add(r.offset as usize), kind);
        }
    }
}

/// The current value of a GOT slot.
///
/// # Safety
/// `slot` must be a GOT slot of a loaded object (8-byte aligned, mapped readable).
pub unsafe fn read_slot(slot: usize) -> usize {
    // SAFETY: `slot` is an aligned, readable GOT slot (the caller's contract); other threads only ever write
    // it atomically (the loader's lazy binding stores a whole word).
    unsafe { AtomicUsize::from_ptr(slot as *mut usize) }.load(Ordering::Acquire)
}

/// The protection of the page holding `addr` (from `/proc/self/maps`, read once per [`Maps`]).
#[derive(Default)]
pub struct Maps {
    text: Option<Vec<u8>>,
}

impl Maps {
    /// Whether `/proc/self/maps` could be read (after a [`Maps::protection`] call).
    pub fn readable(&self) -> bool {
        self.text.as_ref().is_some_and(|t| !t.is_empty())
    }

    /// `PROT_*` bits of the mapping containing `addr`, if it is listed.
    pub fn protection(&mut self, addr: usize) -> Option<i32> {
        let text = self.text.get_or_insert_with(|| std::fs::read("/proc/self/maps").unwrap_or_default());
        for line in text.split(|&b| b == b'\n') {
            let mut fields = line.split(|&b| b == b' ');
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some(dash) = range.iter().position(|&b| b == b'-') else {
                continue;
            };
            let hex = |s: &[u8]| usize::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok();
            let (Some(start), Some(end)) = (hex(&range[..dash]), hex(&range[dash + 1..])) else {
                continue;
            };
            if addr >= start && addr < end && perms.len() >= 3 {
                let mut prot = 0;
                for (byte, bit) in [(b'r', libc::PROT_READ), (b'w', libc::PROT_WRITE), (b'x', libc::PROT_EXEC)] {
                    if perms.contains(&byte) {
                        prot |= bit;
                    }
                }
                return Some(prot);
            }
        }
        None
    }
}

/// Writes `value` into the GOT slot at `slot` of `obj`. A page that is not writable (RELRO, `-z now`) is
/// made writable for the write and given back its protection right after. The protection is read from
/// `/proc/self/maps`; where that cannot be read (a sandbox), the loader's own rule stands in: read-only
/// inside `PT_GNU_RELRO`, writable elsewhere. Returns whether the write happened.
///
/// # Safety
/// `slot` must be a GOT slot of `obj`, loaded, and `value` a function of the ABI the slot's callers expect.
pub unsafe fn write_slot(obj: &LoadedObject, slot: usize, value: usize, maps: &mut Maps) -> bool {
    let in_relro = obj.relro.is_some_and(|(s, e)| slot >= s && slot < e);
    let prot = match maps.protection(slot) {
        Some(prot) => prot,
        None if !maps.readable() && in_relro => libc::PROT_READ,
        None if !maps.readable() && obj.contains(slot) => libc::PROT_READ | libc::PROT_WRITE,
        None => return false,
    };
    // SAFETY: `slot` is an aligned GOT slot of the loaded `obj` (the caller's contract).
    let slot_ref = unsafe { AtomicUsize::from_ptr(slot as *mut usize) };
    if prot & libc::PROT_WRITE != 0 {
        slot_ref.store(value, Ordering::Release);
        return true;
    }
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let page = (slot & !(page_size - 1)) as *mut c_void;
    // SAFETY: the page holds the slot of a loaded object; only its protection changes, for the one write,
    // and the protection read above is given back right after.
    if unsafe { libc::mprotect(page, page_size, prot | libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        return false;
    }
    slot_ref.store(value, Ordering::Release);
    // SAFETY: as above: the page's own protection restored.
    unsafe { libc::mprotect(page, page_size, prot) };
    true
}

/// Writes `value` into the GOT slot at `slot` of `obj`, an object the loader has finished relocating, with
/// the protection the loader gave it (no `/proc/self/maps`, whose size grows with every mapped object): the
/// pages `PT_GNU_RELRO` covers entirely are read-only (the loader rounds both ends down to a page, so a last
/// partial page stays writable), made writable for the write and read-only again; a slot elsewhere in a
/// writable `PT_LOAD` segment is written directly. Any other slot is left to [`write_slot`]. Returns whether
/// the write happened.
///
/// # Safety
/// As [`write_slot`], and `obj` relocated (its RELRO protection applied).
pub unsafe fn write_slot_as_loaded(obj: &LoadedObject, slot: usize, value: usize, maps: &mut Maps) -> bool {
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let down = |a: usize| a & !(page_size - 1);
    if let Some((start, end)) = obj.relro {
        if slot >= down(start) && slot < down(end) {
            let page = down(slot) as *mut c_void;
            // SAFETY: a page of `obj`'s RELRO range, mapped while the caller keeps `obj` loaded.
            if unsafe { libc::mprotect(page, page_size, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
                return false;
            }
            // SAFETY: `slot` is an aligned GOT slot of `obj` (the caller's contract), writable now.
            unsafe { AtomicUsize::from_ptr(slot as *mut usize) }.store(value, Ordering::Release);
            // SAFETY: the same page, given back the read-only protection the loader gave it.
            unsafe { libc::mprotect(page, page_size, libc::PROT_READ) };
            return true;
        }
    }
    if obj.writable.iter().any(|&(s, e)| slot >= s && slot + 8 <= e) {
        // SAFETY: an aligned GOT slot of `obj` (the caller's contract) inside a segment mapped writable.
        unsafe { AtomicUsize::from_ptr(slot as *mut usize) }.store(value, Ordering::Release);
        return true;
    }
    // SAFETY: the caller's contract is `write_slot`'s.
    unsafe { write_slot(obj, slot, value, maps) }
}

/// The type (`STT_*`) of the dynamic symbol that starts exactly at `addr`, from the defining object's own
/// symbol table (`dladdr1(RTLD_DL_SYMENT)`); None when no symbol starts there.
pub fn symbol_type_at(addr: usize) -> Option<u8> {
    const RTLD_DL_SYMENT: i32 = 1;
    // SAFETY: `Dl_info` is plain data; all zeroes is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let mut sym: *mut c_void = std::ptr::null_mut();
    // SAFETY: dladdr1 fills `info` and `sym` (a pointer to the object's ElfW(Sym)) or returns 0.
    let ok = unsafe { libc::dladdr1(addr as *const c_void, &mut info, &mut sym, RTLD_DL_SYMENT) };
    if ok == 0 || sym.is_null() || info.dli_saddr as usize != addr {
        return None;
    }
    // SAFETY: `sym` points into the defining object's dynamic symbol table.
    Some(unsafe { (*(sym as *const Sym)).info } & 0xf)
}

/// Whether the symbol that starts at `addr` is code (`STT_FUNC` or `STT_GNU_IFUNC`).
pub fn is_function_at(addr: usize) -> bool {
    matches!(symbol_type_at(addr), Some(STT_FUNC | STT_GNU_IFUNC))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_elf64() {
        assert_eq!(std::mem::size_of::<Dyn>(), 16);
        assert_eq!(std::mem::size_of::<Rela>(), 24);
        assert_eq!(std::mem::size_of::<Sym>(), 24);
    }

    #[test]
    fn finds_the_test_binary_and_its_slots() {
        let mut objects = Vec::new();
        let (adds, _) = crate::abi::objects::walk(|v| objects.push(v.to_owned()));
        assert!(adds as usize >= objects.len());
        let libc_obj = objects.iter().find(|o| o.file_name().starts_with(b"libc.so")).expect("libc loaded");
        assert!(libc_obj.contains(libc::malloc as *const () as usize));
        // The test binary calls into libc through GOT slots of its own.
        let main = &objects[0];
        let mut names = Vec::new();
        // SAFETY: the main program stays loaded.
        unsafe { for_each_slot(main, b"", |name, _, slot, _| names.push((name.to_bytes().to_vec(), read_slot(slot)))) };
        assert!(!names.is_empty());
        assert!(is_function_at(libc::malloc as *const () as usize));
        assert_eq!(load_counters().0, adds);
    }

    #[test]
    fn a_read_only_slot_is_written_and_its_protection_restored() {
        // SAFETY: a private anonymous page of our own, made read-only like a RELRO page.
        unsafe {
            let page = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(page, libc::MAP_FAILED);
            let slot = page as usize + 64;
            *(slot as *mut usize) = 1;
            assert_eq!(libc::mprotect(page, 4096, libc::PROT_READ), 0);
            assert_eq!(Maps::default().protection(slot), Some(libc::PROT_READ));
            let obj = LoadedObject {
                base: page as usize,
                name: Vec::new(),
                dynamic: 0,
                segments: vec![(page as usize, page as usize + 4096)],
                relro: Some((page as usize, page as usize + 4096)),
                writable: Vec::new(),
            };
            assert!(write_slot(&obj, slot, 0x1234, &mut Maps::default()));
            assert_eq!(read_slot(slot), 0x1234);
            assert_eq!(Maps::default().protection(slot), Some(libc::PROT_READ));
            // Without /proc/self/maps the RELRO range decides, with the same result.
            let mut no_maps = Maps { text: Some(Vec::new()) };
            assert!(write_slot(&obj, slot, 0x5678, &mut no_maps));
            assert_eq!(read_slot(slot), 0x5678);
            assert_eq!(Maps::default().protection(slot), Some(libc::PROT_READ));
            libc::munmap(page, 4096);
        }
    }

    #[test]
    fn the_loaders_rule_writes_relro_and_writable_slots() {
        // SAFETY: two private anonymous pages of our own: the first read-only like a RELRO page, the second a
        // writable data page; the RELRO range ends inside the second (its partial page stays writable).
        unsafe {
            let page = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(page, libc::MAP_FAILED);
            let base = page as usize;
            assert_eq!(libc::mprotect(page, 4096, libc::PROT_READ), 0);
            let obj = LoadedObject {
                base,
                name: Vec::new(),
                dynamic: 0,
                segments: vec![(base, base + 8192)],
                relro: Some((base, base + 4096 + 64)),
                writable: vec![(base, base + 8192)],
            };
            let mut maps = Maps { text: Some(Vec::new()) };
            assert!(write_slot_as_loaded(&obj, base + 64, 0x1234, &mut maps));
            assert_eq!(read_slot(base + 64), 0x1234);
            assert_eq!(Maps::default().protection(base + 64), Some(libc::PROT_READ));
            // In the RELRO range but on its last, partial page: left writable by the loader, written directly.
            assert!(write_slot_as_loaded(&obj, base + 4096 + 8, 0x5678, &mut maps));
            assert_eq!(read_slot(base + 4096 + 8), 0x5678);
            assert_eq!(Maps::default().protection(base + 4096 + 8), Some(libc::PROT_READ | libc::PROT_WRITE));
            libc::munmap(page, 8192);
        }
    }

    #[test]
    fn maps_know_the_stack() {
        let x = 0u64;
        let prot = Maps::default().protection(&x as *const u64 as usize).unwrap();
        assert_eq!(prot & (libc::PROT_READ | libc::PROT_WRITE), libc::PROT_READ | libc::PROT_WRITE);
    }
}
