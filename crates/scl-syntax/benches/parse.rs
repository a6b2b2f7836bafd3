//! Front-end speed: lexing and parsing a generated 10,000-line policy, beside a baseline
//! in the same run (a plain byte scan that counts lines, the least any parser must do), so
//! the result reads as a ratio that does not depend on the machine.
//!
//! Run: `cargo bench -p scl-syntax --bench parse`. Results go to `docs/performance.md`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scl_diagnostics::FileId;
use std::hint::black_box;

/// A realistic policy of about `lines` lines: state, structs, helpers and hooks with
/// loops, conditions and map lookups, repeated with fresh names.
pub fn generate(lines: usize) -> String {
    let mut out = String::from("import hist;\nconfig max_batch: u32 = 64;\n");
    let mut i = 0;
    while out.matches('\n').count() < lines {
        out.push_str(&format!(
            "per_lock[4096] batch{i}: u32;\n\
             map prio{i}: hash<u32, u8>[1024];\n\
             struct Stats{i} {{ count: u64, wait_ns: u64, max_ns: u64, buckets: [u64; 32] }}\n\
             fn score{i}(w: waiter, weight: u64) -> u64 {{\n\
             \x20   let s: u64 = (w.prio as u64) * weight + 3;\n\
             \x20   for b in 0..8 {{\n\
             \x20       if (s >> b) & 1 == 1 && b != 3 {{ return s - b; }}\n\
             \x20   }}\n\
             \x20   return s;\n\
             }}\n\
             policy p{i} for spinlock, mutex {{\n\
             \x20   on should_reorder(l: lock, s: waiter, c: waiter) -> bool {{\n\
             \x20       if let p = prio{i}.get(c.tid) {{\n\
             \x20           return p > 0;\n\
             \x20       }} else if c.numa_node == s.numa_node {{\n\
             \x20           return batch{i} < max_batch && score{i}(c, 2) > score{i}(s, 2);\n\
             \x20       }}\n\
             \x20       return false;\n\
             \x20   }}\n\
             \x20   on acquired(l: lock) {{\n\
             \x20       batch{i} += 1;\n\
             \x20       let stats = Stats{i} {{ count: 1, wait_ns: now() - 5us, max_ns: 0, buckets: 0 }};\n\
             \x20   }}\n\
             }}\n"
        ));
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let text = generate(10_000);
    let lines = text.lines().count();
    let mut group = c.benchmark_group(format!("front end, {lines} lines"));
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("baseline: count lines", |b| {
        b.iter(|| black_box(&text).bytes().filter(|&c| c == b'\n').count())
    });
    group.bench_function("lex", |b| b.iter(|| scl_syntax::lexer::lex(FileId(0), black_box(&text)).tokens.len()));
    // The tree is dropped outside the timed part: the compiler keeps it until it exits.
    group.bench_function("parse", |b| {
        b.iter_with_large_drop(|| {
            let (ast, diags) = scl_syntax::parse_file(FileId(0), black_box(&text));
            assert!(diags.is_empty(), "the generated policy parses cleanly: {:?}", diags.first());
            ast
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
