#!/usr/bin/env python3
"""kernel_audit.py (make kernel-audit): what ptxas makes of every CUDA kernel, checked.

Compiles each .cu file given (default: alloc/*.cu model/cuda/*.cu) once with nvcc for sm_89
and sm_90 with `-Xptxas -v`, keeping the generated PTX, and from ptxas's report per kernel and
architecture takes the registers, static shared memory, stack frame and spill stores/loads.

It fails (exit 1) when:
  - a kernel has a stack frame or spill stores/loads and no reason is given for it: either a
    comment `kernel-audit: spills: <why>` in the 6 lines above the kernel's `__global__`
    definition, or an entry in the allow-list (scripts/kernel_audit_allow.txt, for files whose
    owner has not yet fixed or annotated them: `<file> <kernel> <why>`, the why naming the
    issue that removes it);
  - a kernel listed in scripts/kernel_audit_vector.txt (`<file> <kernel>`, the kernel's name
    alone for every instantiation, or with its template arguments, `name<8>`, for one) has no
    128-bit global load in its PTX (ld.global[.nc].v4 of 32-bit, or .v2 of 64-bit
    elements);
  - nvcc fails.
It writes a Markdown report (default docs/results/kernel_audit.md): per architecture, each
kernel's registers, static shared memory, stack, spills and the occupancy its registers allow.

Occupancy here is the theoretical limit from registers alone: warps per SM =
floor(regs_per_SM / (ceil(regs_per_thread * 32 / 256) * 256)), capped at the architecture's
warp limit. Block size, dynamic shared memory and the block-count limit also bound it and
depend on the launch, which ptxas does not see; the report says so.

Usage: scripts/kernel_audit.py [--out FILE] [--allow FILE] [--vector FILE] [--jobs N]
                               [--keep-dir DIR] [FILE.cu ...]
Environment: NVCC (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc).
"""
import argparse
import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys

# per architecture: registers per SM, max resident warps per SM, shared memory per SM (bytes)
# (CUDA C++ Programming Guide, "Technical Specifications per Compute Capability": 8.9 and 9.0)
ARCHS = {
    "sm_89": {"regs": 65536, "warps": 48, "smem": 100 * 1024},
    "sm_90": {"regs": 65536, "warps": 64, "smem": 228 * 1024},
}
REG_ALLOC_UNIT = 256  # registers are allocated per warp in units of 256 (both architectures)
ANNOTATION = "kernel-audit: spills:"
ANNOTATION_WINDOW = 6  # lines above the __global__ line searched for the annotation
VEC_LOAD = re.compile(r"\bld\.global(?:\.nc)?(?:\.L1::\w+|\.L2::\w+|\.\w+::\w+)*"
                      r"\.(?:v4\.(?:b|u|s|f)32|v2\.(?:b|u|s|f)64)\b")


def find_nvcc():
    env = os.environ.get("NVCC")
    if env:
        return env
    return shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"


def compile_one(nvcc, src, keep_root):
    """nvcc for both architectures; returns (src, ptxas output, {arch: ptx text}, error)."""
    base = os.path.splitext(os.path.basename(src))[0]
    keep = os.path.join(keep_root, base)
    os.makedirs(keep, exist_ok=True)
    cmd = [nvcc, "-O3", "-std=c++17", "-I.", "-Xptxas", "-v", "--keep", "--keep-dir", keep,
           "-c", src, "-o", os.path.join(keep, base + ".o")]
    for arch in ARCHS:
        cc = arch.split("_")[1]
        cmd += ["-gencode", f"arch=compute_{cc},code={arch}"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return src, "", {}, f"nvcc failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}"
    ptx = {}
    for arch in ARCHS:
        cc = arch.split("_")[1]
        path = os.path.join(keep, f"{base}.compute_{cc}.ptx")
        ptx[arch] = open(path).read() if os.path.exists(path) else ""
    return src, p.stderr + p.stdout, ptx, None


def parse_ptxas(text):
    """[(mangled, arch, {regs, smem, stack, spill_st, spill_ld})] from ptxas -v output."""
    out, cur = [], None
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '([^']+)' for '(sm_\d+)'", line)
        if m:
            cur = {"name": m.group(1), "arch": m.group(2), "regs": 0, "smem": 0, "stack": 0,
                   "spill_st": 0, "spill_ld": 0}
            out.append(cur)
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads",
                      line)
        if m:
            cur["stack"], cur["spill_st"], cur["spill_ld"] = map(int, m.groups())
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            cur["smem"] = int(s.group(1)) if s else 0
    return out


def demangle(names):
    if not names:
        return {}
    try:
        p = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True)
        lines = p.stdout.splitlines()
        if p.returncode == 0 and len(lines) == len(names):
            return dict(zip(names, lines))
    except OSError:
        pass
    return {n: n for n in names}


def twin_of(src):
    """model/cuda/x_bf16.cu (which includes model/cuda/x.cu for bfloat16) -> model/cuda/x.cu;
    any other file is its own."""
    if src.endswith("_bf16.cu"):
        base = src[: -len("_bf16.cu")] + ".cu"
        if os.path.exists(base):
            return base
    return src


def base_name(demangled):
    """'void flash_dkdv_kernel<64>(__half*, ...)' -> 'flash_dkdv_kernel'"""
    s = demangled.split("(")[0]
    s = re.sub(r"<.*", "", s)
    return s.split()[-1].split("::")[-1]


def annotated(src_lines, kernel):
    """The reason given in the source above kernel's __global__ definition, or None."""
    pat = re.compile(r"\b" + re.escape(kernel) + r"\s*\(")
    for i, line in enumerate(src_lines):
        # the definition: the name with its '(' on a __global__ line or the line after one
        if not pat.search(line):
            continue
        ctx = src_lines[i] + (src_lines[i - 1] if i > 0 else "")
        if "__global__" not in ctx:
            continue
        for j in range(max(0, i - ANNOTATION_WINDOW), i):
            k = src_lines[j].find(ANNOTATION)
            if k >= 0:
                why = src_lines[j][k + len(ANNOTATION):].strip(" */")
                return why or None
    return None


def read_list(path, fields):
    """Non-comment lines of a list file split into `fields` fields (the last keeps spaces)."""
    out = []
    if not path or not os.path.exists(path):
        return out
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, fields - 1)
        if len(parts) < fields:
            sys.exit(f"kernel_audit: {path}:{n}: expected {fields} fields, got '{line}'")
        out.append(tuple(parts))
    return out


def occupancy(arch, regs):
    spec = ARCHS[arch]
    per_warp = -(-max(regs, 1) * 32 // REG_ALLOC_UNIT) * REG_ALLOC_UNIT
    warps = min(spec["warps"], spec["regs"] // per_warp)
    return warps, spec["warps"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/results/kernel_audit.md")
    ap.add_argument("--allow", default="scripts/kernel_audit_allow.txt")
    ap.add_argument("--vector", default="scripts/kernel_audit_vector.txt")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep-dir", default="build/kernel-audit")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = a.files or sorted(glob.glob("alloc/*.cu")) + sorted(glob.glob("model/cuda/*.cu"))
    nvcc = find_nvcc()
    allow = {(f, k): why for f, k, why in read_list(a.allow, 3)}
    vector = {(f, k) for f, k in read_list(a.vector, 2)}

    results, errors = {}, []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        for src, log, ptx, err in ex.map(lambda f: compile_one(nvcc, f, a.keep_dir), files):
            if err:
                errors.append(f"{src}: {err}")
            results[src] = (log, ptx)

    rows, failures, used_allow, seen_vec = [], [], set(), set()
    for src in files:
        log, ptx = results[src]
        entries = parse_ptxas(log)
        names = demangle(sorted({e["name"] for e in entries}))
        # a *_bf16.cu twin is its float16 file compiled for bf16: that file's source, comments
        # and list entries are its own
        lsrc = twin_of(src)
        lines = open(lsrc).read().splitlines()
        for e in entries:
            e["file"], e["demangled"] = src, names.get(e["name"], e["name"])
            e["kernel"] = base_name(e["demangled"])
            e["why"] = ""
            spills = e["stack"] or e["spill_st"] or e["spill_ld"]
            if spills:
                why = annotated(lines, e["kernel"])
                if why:
                    e["why"] = "annotated: " + why
                elif (lsrc, e["kernel"]) in allow:
                    used_allow.add((lsrc, e["kernel"]))
                    e["why"] = "allow-list: " + allow[(lsrc, e["kernel"])]
                else:
                    failures.append(f"{src}: {e['demangled']} on {e['arch']}: {e['stack']} bytes "
                                    f"stack, {e['spill_st']}/{e['spill_ld']} bytes spill "
                                    f"stores/loads, and no '{ANNOTATION}' comment above its "
                                    f"__global__ line saying why")
            e["vec"] = "-"
            # with template arguments, without the storage type's namespace (x_f16::, x_bf16::)
            full = re.sub(r"^(\w+::)+", "", e["demangled"].split("(")[0].split()[-1])
            key = next((k for k in ((lsrc, full), (lsrc, e["kernel"])) if k in vector), None)
            if key:
                seen_vec.add(key)
                body = ptx_entry(ptx.get(e["arch"], ""), e["name"])
                e["vec"] = "yes" if VEC_LOAD.search(body) else "NO"
                if e["vec"] == "NO":
                    failures.append(f"{src}: {e['demangled']} on {e['arch']}: no 128-bit global "
                                    f"load in its PTX (it is listed in {a.vector})")
            rows.append(e)
    for f, k in sorted(vector - seen_vec):
        if f in results and not any(err.startswith(f + ":") for err in errors):
            failures.append(f"{a.vector}: {f} {k}: no such kernel compiled")
    stale = sorted(k for k in set(allow) - used_allow if k[0] in files)
    write_report(a.out, files, rows, stale, a.allow)
    for msg in errors + failures:
        print("kernel_audit: FAIL: " + msg, file=sys.stderr)
    n_spill = sum(1 for r in rows if r["stack"] or r["spill_st"] or r["spill_ld"])
    print(f"kernel_audit: {len(files)} files, {len(rows)} kernel x architecture entries, "
          f"{n_spill} with spills ({sum(1 for r in rows if r['why'])} explained), "
          f"{len(errors) + len(failures)} failures; report {a.out}")
    for f, k in stale:
        print(f"kernel_audit: note: allow-list entry '{f} {k}' matched no spilling kernel: "
              f"remove it", file=sys.stderr)
    return 1 if errors or failures else 0


def ptx_entry(ptx, mangled):
    """The text of one .entry in a PTX file (from its header to the next .entry)."""
    k = ptx.find(".entry " + mangled + "(")
    if k < 0:
        return ""
    nxt = ptx.find(".entry ", k + 1)
    return ptx[k:nxt if nxt >= 0 else len(ptx)]


def write_report(path, files, rows, stale, allow_path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("# Kernel audit: registers, shared memory, spills, occupancy\n\n")
        f.write("Generated by `make kernel-audit` (`scripts/kernel_audit.py`): every kernel of "
                + ", ".join(f"`{x}`" for x in files) + " compiled by nvcc with `-O3 -Xptxas -v` "
                "for sm_89 (RTX 40xx) and sm_90 (H100). Figures are what ptxas reports; nothing "
                "here ran on a GPU.\n\n")
        f.write("- spills: stack frame / spill stores / spill loads, bytes per thread. A kernel "
                "with any fails the audit unless its source says why (`kernel-audit: spills:` "
                f"above its `__global__` line) or `{allow_path}` lists it with the issue that "
                "removes it.\n")
        f.write("- occupancy: resident warps per SM that the kernel's registers allow, out of "
                "the architecture's maximum (registers allocated per warp in units of 256). "
                "Block size, dynamic shared memory (not seen by ptxas) and the blocks-per-SM "
                "limit can lower it further.\n")
        f.write("- 128-bit loads: for the kernels that must read 128 bits per access "
                "(`scripts/kernel_audit_vector.txt`), whether their PTX has an `ld.global.v4` "
                "(32-bit elements) or `.v2` (64-bit) load; `-` for the others.\n\n")
        for arch in ARCHS:
            f.write(f"## {arch}\n\n| file | kernel | registers | static smem B | spills "
                    "(stack/st/ld) | occupancy (warps/SM) | 128-bit loads | why it spills |\n"
                    "|---|---|---:|---:|---|---|---|---|\n")
            for r in rows:
                if r["arch"] != arch:
                    continue
                w, mx = occupancy(arch, r["regs"])
                name = r["demangled"].split("(")[0].replace("void ", "")
                f.write(f"| `{os.path.basename(r['file'])}` | `{name}` | {r['regs']} | "
                        f"{r['smem']} | {r['stack']}/{r['spill_st']}/{r['spill_ld']} | "
                        f"{w}/{mx} ({100 * w // mx}%) | {r['vec']} | {r['why']} |\n")
            f.write("\n")
        if stale:
            f.write("Allow-list entries that matched no spilling kernel (to remove): "
                    + ", ".join(f"`{a} {b}`" for a, b in stale) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
