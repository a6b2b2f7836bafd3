#!/bin/sh
# sclc against clang -O2 on the example policies: xlated instructions, kernel-measured ns
# per call and compile time. Writes target/scl-bench/report.md (see docs/performance.md).
#
# Needs root (BPF_PROG_TEST_RUN, bpf_stats), a kernel with BTF, and the baseline:
#     apt-get install -y clang libbpf-dev
# Arguments go to scl-bench (--events, --rounds, --only numa_grouping,amp, --help).
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p sclc -p scl-bench
# sclc once more, statically linked: what `cargo build` links loads glibc, libelf and zlib
# at every start, and for a compiler that runs as a short process that is a large part of
# its time. crt-static cannot be set for the whole build (proc-macro crates cannot be
# static), so this build names the host as its target: the flag then reaches only the
# crates that go into sclc, and the result lands in target/<host>/release/.
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p sclc --target "$host"
exec target/release/scl-bench --sclc-static "target/$host/release/sclc" "$@"
