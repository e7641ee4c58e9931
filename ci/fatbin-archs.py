#!/usr/bin/env python3
"""Print the CUDA architectures embedded in executables: `EXE: sm_80 compute_80` per file.

Reads the ELF section .nv_fatbin (objcopy) and walks the fatbinary container: a header
(magic 0xBA55ED50, version, header size, payload size) followed by entries (kind 1 = PTX,
2 = cubin; the architecture as an integer at byte 28 of the entry header). For images whose CUDA
toolkit has no cuobjdump (ci/build-cuda.sh). Exit status 1 if a file has no device code.
"""
import os
import struct
import subprocess
import sys
import tempfile


def archs(exe):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "fatbin")
        subprocess.run(["objcopy", "-O", "binary", "--only-section=.nv_fatbin", exe, out], check=True)
        data = open(out, "rb").read() if os.path.exists(out) else b""
    found, off = set(), 0
    while off + 16 <= len(data):
        magic, _, hsize, fsize = struct.unpack_from("<IHHQ", data, off)
        if magic != 0xBA55ED50:
            off += 8  # containers are 8-byte aligned
            continue
        entry, end = off + hsize, off + hsize + fsize
        while entry + 32 <= end:
            kind, _, ehsize, psize = struct.unpack_from("<HHII", data, entry)
            arch = struct.unpack_from("<I", data, entry + 28)[0]
            found.add(("compute_%d" if kind == 1 else "sm_%d") % arch)
            entry += ehsize + psize
        off = end
    return sorted(found)


status = 0
for exe in sys.argv[1:]:
    a = archs(exe)
    print(exe + ": " + " ".join(a))
    status |= not a
sys.exit(status)
