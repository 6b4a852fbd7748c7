"""The seccomp program, read back by a small classic-BPF interpreter (no kernel needed, any CPU).

The kernel's own verdict on this machine's CPU is tested in test_sandbox.py; this covers both
described architectures, including the one the test machine does not run.
"""

from __future__ import annotations

import errno
import struct

import pytest

from annotation.tools import seccomp

ALLOW = seccomp.SECCOMP_RET_ALLOW
EPERM = seccomp.SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = seccomp.SECCOMP_RET_ERRNO | errno.ENOSYS
ARCH = {"x86_64": seccomp.AUDIT_ARCH_X86_64, "aarch64": seccomp.AUDIT_ARCH_AARCH64}
AUDIT_ARCH_I386 = 0x40000003


def verdict(program: bytes, *, nr: int, arch: int, arg0: int = 0) -> int:
    """Run the filter on one ``struct seccomp_data`` as the kernel would (the subset of BPF it uses)."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    insns = [struct.unpack_from("=HBBI", program, at) for at in range(0, len(program), 8)]
    acc, pc = 0, 0
    for _ in range(len(insns)):  # no backward jumps: at most one pass
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code in (0x15, 0x35, 0x45):  # jeq, jge, jset
            hit = acc == k if code == 0x15 else acc >= k if code == 0x35 else bool(acc & k)
            pc += 1 + (jt if hit else jf)
        elif code == 0x06:  # ret k
            return k
        else:
            raise AssertionError(f"unexpected BPF instruction {code:#x}")
    raise AssertionError("the program fell off its end")


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_listed_call_is_refused_and_ordinary_calls_pass(arch: str) -> None:
    program = seccomp.filter_program(arch)
    assert program is not None and len(program) % 8 == 0
    denied = {numbers[arch] for numbers in seccomp.DENIED.values() if arch in numbers}
    for name in ("unshare", "mount", "ptrace", "keyctl", "bpf", "perf_event_open", "init_module", "kexec_load"):
        assert verdict(program, nr=seccomp.DENIED[name][arch], arch=ARCH[arch]) == EPERM, name
    allowed = [nr for nr in range(0, 460) if nr not in denied and nr not in (seccomp.CLONE[arch], seccomp.CLONE3[arch])]
    assert all(verdict(program, nr=nr, arch=ARCH[arch]) == ALLOW for nr in allowed)
    assert verdict(program, nr=seccomp.CLONE3[arch], arch=ARCH[arch]) == ENOSYS


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_clone_is_refused_only_with_a_namespace_flag(arch: str) -> None:
    program = seccomp.filter_program(arch)
    assert program is not None
    clone = seccomp.CLONE[arch]
    fork_flags = 0x01200011  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, as glibc's fork
    thread_flags = 0x003D0F00  # pthread_create's flags
    assert verdict(program, nr=clone, arch=ARCH[arch], arg0=fork_flags) == ALLOW
    assert verdict(program, nr=clone, arch=ARCH[arch], arg0=thread_flags) == ALLOW
    for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
        assert verdict(program, nr=clone, arch=ARCH[arch], arg0=fork_flags | flag) == EPERM, hex(flag)


def test_foreign_abis_are_refused() -> None:
    program = seccomp.filter_program("x86_64")
    assert program is not None
    getpid = 39
    assert verdict(program, nr=getpid, arch=seccomp.AUDIT_ARCH_X86_64) == ALLOW
    assert verdict(program, nr=20, arch=AUDIT_ARCH_I386) == EPERM  # int 0x80 from a 64-bit process
    assert verdict(program, nr=getpid | 0x40000000, arch=seccomp.AUDIT_ARCH_X86_64) == EPERM  # x32
    assert verdict(program, nr=getpid, arch=seccomp.AUDIT_ARCH_AARCH64) == EPERM


def test_no_program_for_an_undescribed_cpu() -> None:
    assert seccomp.filter_program("riscv64") is None
    assert seccomp.denied_names("riscv64") == []
