"""A seccomp filter for the code runner, built in pure Python (no compiler, no libseccomp).

The program is classic BPF (``struct sock_filter`` records, 8 bytes each) that bubblewrap loads
with ``--seccomp FD`` just before it executes the sandboxed program. It:

- refuses every system call made through a foreign ABI (i386 ``int 0x80`` on x86-64, and the x32
  ABI), whose numbers the table below does not cover;
- answers ``clone3`` with ENOSYS, so the C library falls back to ``clone``, whose flags a classic
  BPF filter can inspect (``clone3`` passes them in memory, out of the filter's reach);
- refuses ``clone`` with any namespace flag, and ``unshare``/``setns`` outright: no nested user,
  mount, pid, network, ipc, uts or cgroup namespace;
- refuses mounting, ``ptrace`` and process memory access, the kernel keyring, ``bpf``,
  ``perf_event_open``, ``userfaultfd``, io_uring, kernel modules, ``kexec``, reboot, swap, clocks,
  host names, quotas and file handles (the calls Docker's and Flatpak's default profiles refuse);
- allows everything else.

Refused calls fail with EPERM (the program sees an ordinary error), never kill the process.
Only x86-64 and AArch64 are described; elsewhere :func:`filter_program` returns None and the run
result says that no seccomp filter was in force.
"""

from __future__ import annotations

import errno
import platform
import struct
from dataclasses import dataclass

# <linux/filter.h>, <linux/seccomp.h>, <linux/audit.h>
_BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_BPF_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_BPF_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_BPF_RET_K = 0x06  # BPF_RET | BPF_K

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000

_OFFSET_NR = 0  # struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
_OFFSET_ARCH = 4
_OFFSET_ARG0_LOW = 16  # little-endian: the low 32 bits of args[0] (clone's flags)

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
_X32_SYSCALL_BIT = 0x40000000

# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

# Refused outright (EPERM). Numbers: <asm/unistd_64.h> (x86-64) and <asm-generic/unistd.h> (AArch64).
DENIED: dict[str, dict[str, int]] = {
    # namespaces and mounts
    "unshare": {"x86_64": 272, "aarch64": 97},
    "setns": {"x86_64": 308, "aarch64": 268},
    "mount": {"x86_64": 165, "aarch64": 40},
    "umount2": {"x86_64": 166, "aarch64": 39},
    "pivot_root": {"x86_64": 155, "aarch64": 41},
    "chroot": {"x86_64": 161, "aarch64": 51},
    "open_tree": {"x86_64": 428, "aarch64": 428},
    "move_mount": {"x86_64": 429, "aarch64": 429},
    "fsopen": {"x86_64": 430, "aarch64": 430},
    "fsconfig": {"x86_64": 431, "aarch64": 431},
    "fsmount": {"x86_64": 432, "aarch64": 432},
    "fspick": {"x86_64": 433, "aarch64": 433},
    "mount_setattr": {"x86_64": 442, "aarch64": 442},
    # other processes' memory
    "ptrace": {"x86_64": 101, "aarch64": 117},
    "process_vm_readv": {"x86_64": 310, "aarch64": 270},
    "process_vm_writev": {"x86_64": 311, "aarch64": 271},
    "kcmp": {"x86_64": 312, "aarch64": 272},
    "pidfd_getfd": {"x86_64": 438, "aarch64": 438},
    # kernel attack surface
    "keyctl": {"x86_64": 250, "aarch64": 219},
    "add_key": {"x86_64": 248, "aarch64": 217},
    "request_key": {"x86_64": 249, "aarch64": 218},
    "bpf": {"x86_64": 321, "aarch64": 280},
    "perf_event_open": {"x86_64": 298, "aarch64": 241},
    "userfaultfd": {"x86_64": 323, "aarch64": 282},
    "io_uring_setup": {"x86_64": 425, "aarch64": 425},
    "io_uring_enter": {"x86_64": 426, "aarch64": 426},
    "io_uring_register": {"x86_64": 427, "aarch64": 427},
    # the machine itself
    "kexec_load": {"x86_64": 246, "aarch64": 104},
    "kexec_file_load": {"x86_64": 320, "aarch64": 294},
    "init_module": {"x86_64": 175, "aarch64": 105},
    "finit_module": {"x86_64": 313, "aarch64": 273},
    "delete_module": {"x86_64": 176, "aarch64": 106},
    "reboot": {"x86_64": 169, "aarch64": 142},
    "swapon": {"x86_64": 167, "aarch64": 224},
    "swapoff": {"x86_64": 168, "aarch64": 225},
    "acct": {"x86_64": 163, "aarch64": 89},
    "settimeofday": {"x86_64": 164, "aarch64": 170},
    "clock_settime": {"x86_64": 227, "aarch64": 112},
    "clock_adjtime": {"x86_64": 305, "aarch64": 266},
    "adjtimex": {"x86_64": 159, "aarch64": 171},
    "sethostname": {"x86_64": 170, "aarch64": 161},
    "setdomainname": {"x86_64": 171, "aarch64": 162},
    "quotactl": {"x86_64": 179, "aarch64": 60},
    "quotactl_fd": {"x86_64": 443, "aarch64": 443},
    "lookup_dcookie": {"x86_64": 212, "aarch64": 18},
    "open_by_handle_at": {"x86_64": 304, "aarch64": 265},
    "name_to_handle_at": {"x86_64": 303, "aarch64": 264},
    "syslog": {"x86_64": 103, "aarch64": 116},
    "vhangup": {"x86_64": 153, "aarch64": 58},
    "nfsservctl": {"x86_64": 180, "aarch64": 42},
    # x86-64 only
    "iopl": {"x86_64": 172},
    "ioperm": {"x86_64": 173},
    "uselib": {"x86_64": 134},
    "_sysctl": {"x86_64": 156},
    "create_module": {"x86_64": 174},
    "get_kernel_syms": {"x86_64": 177},
    "query_module": {"x86_64": 178},
}
CLONE = {"x86_64": 56, "aarch64": 220}
CLONE3 = {"x86_64": 435, "aarch64": 435}
_AUDIT_ARCH = {"x86_64": AUDIT_ARCH_X86_64, "aarch64": AUDIT_ARCH_AARCH64}
_MACHINE_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def native_arch() -> str | None:
    """``x86_64`` or ``aarch64`` for the machine we run on, else None (no filter is described)."""
    return _MACHINE_ALIASES.get(platform.machine().lower())


@dataclass
class _Insn:
    code: int
    k: int
    true: str | None = None  # label to jump to when the condition holds (None: next instruction)
    false: str | None = None  # label to jump to otherwise
    label: str | None = None  # this instruction's own label


def _assemble(program: list[_Insn]) -> bytes:
    where = {insn.label: i for i, insn in enumerate(program) if insn.label}
    out = bytearray()
    for i, insn in enumerate(program):
        jt = where[insn.true] - i - 1 if insn.true else 0
        jf = where[insn.false] - i - 1 if insn.false else 0
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise ValueError("seccomp program: jump out of range")
        out += struct.pack("=HBBI", insn.code, jt, jf, insn.k)
    return bytes(out)


def filter_program(arch: str | None = None) -> bytes | None:
    """The compiled filter for ``arch`` (default: this machine), or None where none is described."""
    arch = arch or native_arch()
    if arch not in _AUDIT_ARCH:
        return None
    eperm = SECCOMP_RET_ERRNO | errno.EPERM
    enosys = SECCOMP_RET_ERRNO | errno.ENOSYS
    program = [
        _Insn(_BPF_LD_W_ABS, _OFFSET_ARCH),
        _Insn(_BPF_JEQ_K, _AUDIT_ARCH[arch], false="foreign"),
        _Insn(_BPF_LD_W_ABS, _OFFSET_NR),
    ]
    if arch == "x86_64":
        program.append(_Insn(_BPF_JGE_K, _X32_SYSCALL_BIT, true="foreign"))
    program.append(_Insn(_BPF_JEQ_K, CLONE[arch], true="clone"))
    program.append(_Insn(_BPF_JEQ_K, CLONE3[arch], true="enosys"))
    for numbers in DENIED.values():
        if arch in numbers:
            program.append(_Insn(_BPF_JEQ_K, numbers[arch], true="eperm"))
    program += [
        _Insn(_BPF_RET_K, SECCOMP_RET_ALLOW),
        _Insn(_BPF_LD_W_ABS, _OFFSET_ARG0_LOW, label="clone"),
        _Insn(_BPF_JSET_K, CLONE_NAMESPACE_FLAGS, true="eperm"),
        _Insn(_BPF_RET_K, SECCOMP_RET_ALLOW),
        _Insn(_BPF_RET_K, eperm, label="eperm"),
        _Insn(_BPF_RET_K, enosys, label="enosys"),
        _Insn(_BPF_RET_K, eperm, label="foreign"),
    ]
    return _assemble(program)


def denied_names(arch: str | None = None) -> list[str]:
    """The system calls the filter refuses on ``arch`` (besides namespace flags on clone)."""
    arch = arch or native_arch()
    return sorted(name for name, numbers in DENIED.items() if arch in numbers)
