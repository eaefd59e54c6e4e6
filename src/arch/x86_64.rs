//! x86-64: the naked `dlsym` entry, the trampoline block, and glibc's versions of `dlsym`.

/// glibc's versions of `dlsym`, newest first (`GLIBC_2.2.5` is the x86-64 baseline).
pub const DLSYM_VERSIONS: [&std::ffi::CStr; 2] = [c"GLIBC_2.34", c"GLIBC_2.2.5"];

/// `R_X86_64_GLOB_DAT`: a relocation that fills a data slot of the GOT with a symbol's address (`-fno-plt`
/// calls, address-taken functions).
pub const GLOB_DAT: u32 = 6;
/// `R_X86_64_JUMP_SLOT`: a relocation that fills a PLT slot of the GOT.
pub const JUMP_SLOT: u32 = 7;

/// The naked `dlsym` entry: save the two argument registers, ask `$route(handle, name, caller)` where to go
/// (`caller` is the host's return address, read from the stack), restore the registers and jump to its answer.
/// At entry rsp = 8 (mod 16); two pushes and 8 more bytes make it 16-aligned for the call. `route` is an
/// ordinary C-ABI function that preserves callee-saved registers; rdi and rsi are restored before the jump, and
/// the return address on the stack is still the host's.
#[macro_export]
#[doc(hidden)]
macro_rules! dlsym_entry_asm {
    ($route:path) => {
        core::arch::naked_asm!(
            "mov rdx, [rsp]",
            "push rdi",
            "push rsi",
            "sub rsp, 8",
            "call {route}",
            "add rsp, 8",
            "pop rsi",
            "pop rdi",
            "jmp rax",
            route = sym $route,
        )
    };
}

/// The trampoline block: stub `i` is `mov $i, %eax; jmp common`, padded to 16 bytes. The common path shifts
/// the four safe-call arguments one register to the right (self, args, num_args, result -> rsi, rdx, ecx, r8),
/// puts the slot in edi, and tail-jumps to `$dispatch`: the host's return address stays on the stack, so
/// `$dispatch` returns straight to the host.
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
            "movl $flashlog_slot, %eax",
            "jmp 1f",
            ".balign 16",
            ".set flashlog_slot, flashlog_slot + 1",
            ".endr",
            "1:",
            "movq %rcx, %r8",
            "movl %edx, %ecx",
            "movq %rsi, %rdx",
            "movq %rdi, %rsi",
            "movl %eax, %edi",
            "jmp {dispatch}",
            ".popsection",
            dispatch = sym $dispatch,
            options(att_syntax)
        );
    };
}

/// The first bytes of stub 1 (`mov $1, %eax`), for the layout test.
#[cfg(test)]
pub const STUB1_PREFIX: &[u8] = &[0xb8, 1, 0, 0, 0];
