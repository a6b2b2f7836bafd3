//! Shapes of input that once made the checker's work unbounded (issue 15, class 3): each
//! is checked on a test thread's small stack and must give its diagnostics. The call graph
//! is walked with explicit stacks and each function is estimated once, so neither the depth
//! of a call chain nor the number of paths through the call graph matters.

use scl_diagnostics::Files;

/// `n` functions, each calling the next `fan` times; the hook calls the first.
fn call_graph(n: usize, fan: usize) -> String {
    let mut s = String::from("global g: u64;\n");
    for i in 0..n - 1 {
        let calls: Vec<String> = (0..fan).map(|k| format!("f{}(x + {k})", i + 1)).collect();
        s += &format!("fn f{i}(x: u64) -> u64 {{ return {}; }}\n", calls.join(" + "));
    }
    s += &format!("fn f{}(x: u64) -> u64 {{ return x + 1; }}\n", n - 1);
    s += "policy p for spinlock {\n    on contended(l: lock) {\n        g = f0(g);\n    }\n}\n";
    s
}

fn codes(text: &str) -> Vec<&'static str> {
    let mut files = Files::new();
    let id = files.add("hostile.scl", text);
    let checked = scl_sema::check_file(&mut files, id, &scl_sema::Options::default());
    checked.diagnostics.iter().map(|d| d.code.code).collect()
}

#[test]
fn deep_and_wide_call_graphs_are_estimated_not_explored() {
    // (functions, calls per function, the codes expected)
    let cases: &[(usize, usize, &[&str])] = &[
        // A chain of 40,000 calls: too costly and too much stack once inlined.
        (40_000, 1, &["E0342", "E0350", "E0353"]),
        // 2^63 paths through 64 functions: the estimate saturates, it is not walked.
        (64, 2, &["E0342", "E0350", "E0353"]),
        // Short and cheap: clean.
        (8, 1, &[]),
    ];
    for (n, fan, expected) in cases {
        let mut got = codes(&call_graph(*n, *fan));
        got.sort();
        got.dedup();
        assert_eq!(&got, expected, "{n} functions, {fan} calls each");
    }
}
