"""Synthetic ELF files for the cases no compiler here produces (big-endian, object files, odd
layouts). Minimal but well-formed: an ELF header, one PT_LOAD, and the sections asked for."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


@dataclass
class Sect:
    name: str
    type: int
    flags: int
    data: bytes
    link: int = 0
    info: int = 0
    in_load: bool = True  # placed inside the loaded range (else after it)


@dataclass
class Spec:
    big_endian: bool = False
    file_type: int = 3  # ET_DYN
    machine: int = 183  # EM_AARCH64
    sections: list[Sect] = field(
        default_factory=lambda: [
            Sect(".text", 1, 0x6, b"\x1f\x20\x03\xd5" * 16),
            Sect(".comment", 1, 0x30, b"GCC: synthetic\0", in_load=False),
        ]
    )
    trailer: bytes = b""


def build(spec: Spec) -> bytes:
    e = ">" if spec.big_endian else "<"
    ehsize, phentsize, shentsize = 64, 56, 64
    ordered = [s for s in spec.sections if s.in_load] + [s for s in spec.sections if not s.in_load]
    load_end = ehsize + phentsize + sum(len(s.data) for s in ordered if s.in_load)
    body = bytearray()
    offsets: list[int] = []
    position = ehsize + phentsize
    for section in ordered:
        offsets.append(position)
        body += section.data
        position += len(section.data)
    names = bytearray(b"\0")
    name_offsets = []
    for section in ordered:
        name_offsets.append(len(names))
        names += section.name.encode() + b"\0"
    shstrtab_name = len(names)
    names += b".shstrtab\0"
    shstrtab_offset = position
    position += len(names)
    position += -position % 8
    shoff = position
    shnum = len(ordered) + 2
    header = struct.pack(
        f"{e}4sBBBBB7xHHIQQQIHHHHHH",
        b"\x7fELF",
        2,
        2 if spec.big_endian else 1,
        1,
        0,
        0,
        spec.file_type,
        spec.machine,
        1,
        0,
        ehsize,
        shoff,
        0,
        ehsize,
        phentsize,
        1,
        shentsize,
        shnum,
        shnum - 1,
    )
    phdr = struct.pack(f"{e}IIQQQQQQ", 1, 5, 0, 0, 0, load_end, load_end, 0x1000)
    table = bytes(shentsize)
    for section, offset, name in zip(ordered, offsets, name_offsets, strict=True):
        addr = offset if section.flags & 0x2 else 0
        table += struct.pack(
            f"{e}IIQQQQIIQQ",
            name,
            section.type,
            section.flags,
            addr,
            offset,
            len(section.data),
            section.link,
            section.info,
            1,
            0,
        )
    table += struct.pack(
        f"{e}IIQQQQIIQQ", shstrtab_name, 3, 0, 0, shstrtab_offset, len(names), 0, 0, 1, 0
    )
    out = bytearray(header + phdr + body + names)
    out += bytes(shoff - len(out))
    out += table
    return bytes(out) + spec.trailer
