//! aarch64 (Grace: GH200, GB200): the naked `dlsym` entry, the trampoline block, and glibc's versions of
//! `dlsym`.

/// glibc's versions of `dlsym`, newest first (`GLIBC_2.17` is the aarch64 baseline).
pub const DLSYM_VERSIONS: [&std::ffi::CStr; 2] = [c"GLIBC_2.34", c"GLIBC_2.17"];

/// `R_AARCH64_GLOB_DAT`: a relocation that fills a data slot of the GOT with a symbol's address (`-fno-plt`
/// calls, address-taken functions).
pub const GLOB_DAT: u32 = 1025;
/// `R_AARCH64_JUMP_SLOT`: a relocation that fills a PLT slot of the GOT.
pub const JUMP_SLOT: u32 = 1026;

/// The naked `dlsym` entry: a BTI landing pad, save the frame record (x29, x30) and the two arguments, ask
/// `$route(handle, name, caller)` where to go (`caller` is the host's return address, in x30), restore
/// everything and branch to its answer with `br x16` (x16 is the intra-procedure-call scratch register, and
/// a BTI `c` landing pad accepts a `br x16`). The link register the callee sees is the host's, so glibc
/// resolves `RTLD_NEXT` relative to the real caller.
#[macro_export]
#[doc(hidden)]
macro_rules! dlsym_entry_asm {
    ($route:path) => {
        core::arch::naked_asm!(
            "hint #34",
            "stp x29, x30, [sp, #-32]!",
            "mov x29, sp",
            "stp x0, x1, [sp, #16]",
            "mov x2, x30",
            "bl {route}",
            "mov x16, x0",
            "ldp x0, x1, [sp, #16]",
            "ldp x29, x30, [sp], #32",
            "br x16",
            route = sym $route,
        )
    };
}

/// The trampoline block: stub `i` is `bti c; movz w9, #i; b common; nop` (16 bytes). The common path shifts
/// the four safe-call arguments one register up (self, args, num_args, result -> x1, x2, w3, x4), puts the
/// slot in w0 and tail-branches to `$dispatch`: x30 still holds the host's return address, so `$dispatch`
/// returns straight to the host.
#[macro_export]
#[doc(hidden)]
macro_rules! trampoline_block_asm {
    ($dispatch:path) => {
        std::arch::global_asm!(
            ".pushsection .text.flashlog_trampolines,\"ax\",@progbits",
            ".balign 16",
            ".globl flashlog_trampolines",
            ".hidden flashlog_trampolines",
            "flashlog_trampolines:",
            ".set flashlog_slot, 0",
            ".rept 4096",
            "hint #34",
            "movz w9, #flashlog_slot",
            "b 1f",
            "nop",
            ".set flashlog_slot, flashlog_slot + 1",
            ".endr",
            "1:",
            "mov x4, x3",
            "mov w3, w2",
            "mov x2, x1",
            "mov x1, x0",
            "mov w0, w9",
            "b {dispatch}",
            ".popsection",
            dispatch = sym $dispatch,
        );
    };
}

/// The first bytes of stub 1 (`bti c; movz w9, #1`, little-endian), for the layout test.
#[cfg(test)]
pub const STUB1_PREFIX: &[u8] = &[0x5f, 0x24, 0x03, 0xd5, 0x29, 0x00, 0x80, 0x52];
