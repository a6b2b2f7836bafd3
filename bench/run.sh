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
exec target/release/scl-bench "$@"
