//! How long an editor waits for diagnostics after a change to a 2,000-line policy, beside
//! a baseline in the same run (parsing alone, the least any diagnostics need), so the
//! result reads as a ratio that does not depend on the machine.
//!
//! Three measurements: parse only (the baseline); parse, check and convert to LSP
//! diagnostics (what the server does per change); and the whole round trip through the
//! server loop over an in-memory connection, from `didChange` sent to `publishDiagnostics`
//! received (JSON encoding and the inbox included).
//!
//! Run: `cargo bench -p scl-lsp --bench diagnostics`. Results go to `docs/performance.md`.

use criterion::{criterion_group, criterion_main, Criterion};
use lsp_server::{Connection, Message, Notification, Request, RequestId};
use scl_diagnostics::FileId;
use serde_json::json;
use std::hint::black_box;
use std::time::Duration;

/// A realistic single policy of about `lines` lines: state, structs, constants and helper
/// functions with loops, conditions and map lookups, and one policy whose hooks use them.
/// It checks clean, so every whole-program rule (call graph, sleep, reorder purity, cost)
/// runs: the slowest path through the checker.
fn generate(lines: usize) -> String {
    let mut out = String::from(
        "import hist;\nconfig max_batch: u32 = 64;\nconfig max_backoff_ns: u64 = 50us;\n\
         per_lock[4096] waits: hist::Log2;\nper_thread[16384] start: u64;\nmap prio: hash<u32, u8>[1024];\n",
    );
    let mut i = 0;
    while out.matches('\n').count() + 10 < lines {
        out.push_str(&format!(
            "const K{i}: u64 = {i} + 1;\n\
             struct Rec{i} {{\n    a: u64,\n    b: u32,\n    hist: [u64; 8],\n}}\n\
             per_lock[1024] rec{i}: Rec{i};\n\
             fn score{i}(w: waiter, weight: u64) -> u64 {{\n\
             \x20   let s: u64 = (w.prio as u64) * weight + K{i};\n\
             \x20   for b in 0..8 {{\n\
             \x20       if (s >> b) & 1 == 1 && b != 3 {{\n\
             \x20           return s - b;\n\
             \x20       }}\n\
             \x20   }}\n\
             \x20   return s;\n\
             }}\n\
             fn note{i}(v: u64) {{\n\
             \x20   if let p = prio.get(tid()) {{\n\
             \x20       rec{i}.a += v + (p as u64);\n\
             \x20   }} else if v > K{i} {{\n\
             \x20       rec{i}.b = rec{i}.b + 1;\n\
             \x20   }} else {{\n\
             \x20       rec{i}.hist[(v % 8) as u32] += 1;\n\
             \x20   }}\n\
             }}\n"
        ));
        i += 1;
    }
    out.push_str(&format!(
        "policy big for spinlock, mutex {{\n\
         \x20   on contended(l: lock) {{\n\
         \x20       start = now();\n\
         \x20       back_off(max_backoff_ns);\n\
         \x20   }}\n\
         \x20   on acquired(l: lock) {{\n\
         \x20       let w: u64 = now() - start;\n\
         \x20       hist::record(waits, w);\n\
         \x20       note0(w);\n\
         \x20       note{last}(w);\n\
         \x20   }}\n\
         \x20   on should_reorder(l: lock, s: waiter, c: waiter) -> bool {{\n\
         \x20       return score0(c, 2) > score{last}(s, 2) || max_batch == 0;\n\
         \x20   }}\n\
         }}\n",
        last = i - 1
    ));
    out
}

/// The same policy after a one-character edit, so each round checks a text it has not seen.
fn edited(text: &str) -> String {
    text.replacen("const K0: u64 = 0 + 1;", "const K0: u64 = 0 + 2;", 1)
}

fn bench(c: &mut Criterion) {
    let text = generate(2_000);
    let other = edited(&text);
    let lines = text.lines().count();
    let options = scl_sema::Options::default();
    let clean = scl_lsp::analyse("big.scl", &text, &options);
    let found: Vec<String> = clean.checked.diagnostics.iter().map(|d| format!("{}: {}", d.code, d.message)).collect();
    assert!(found.is_empty(), "the generated policy checks clean: {found:#?}");
    assert_ne!(text, other);

    let mut group = c.benchmark_group(format!("diagnostics after a change, {lines} lines"));
    group.sample_size(30).measurement_time(Duration::from_secs(6));
    group.bench_function("baseline: parse only", |b| {
        b.iter_with_large_drop(|| scl_syntax::parse_file(FileId(0), black_box(&text)))
    });
    let uri: lsp_types::Uri = "file:///big.scl".parse().expect("a URI");
    group.bench_function("parse + check + LSP diagnostics", |b| {
        b.iter_with_large_drop(|| {
            let analysis = scl_lsp::analyse("big.scl", black_box(&text), &options);
            let diagnostics = scl_lsp::diagnostics::to_lsp(&analysis, &uri);
            (analysis, diagnostics)
        })
    });
    let mut server = Server::start(&text);
    let mut version = 1;
    group.bench_function("server: didChange to publishDiagnostics", |b| {
        b.iter(|| {
            version += 1;
            server.change(if version % 2 == 0 { &other } else { &text }, version)
        })
    });
    group.finish();
    server.stop();
}

/// The real server loop on a thread, talked to over an in-memory connection.
struct Server {
    client: Connection,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    fn start(text: &str) -> Server {
        let (server, client) = Connection::memory();
        let thread = std::thread::spawn(move || {
            scl_lsp::run(server).expect("the server runs");
        });
        let init = Request::new(RequestId::from(1), "initialize".into(), json!({ "capabilities": {} }));
        client.sender.send(init.into()).expect("send");
        client.receiver.recv().expect("initialize result");
        client.sender.send(Notification::new("initialized".into(), json!({})).into()).expect("send");
        let doc = json!({ "textDocument": { "uri": "file:///big.scl", "languageId": "scl", "version": 1, "text": text } });
        client.sender.send(Notification::new("textDocument/didOpen".into(), doc).into()).expect("send");
        let mut s = Server { client, thread };
        s.wait_for(1);
        s
    }

    /// Sends the whole new text and waits for its diagnostics; returns how many there were.
    fn change(&mut self, text: &str, version: i32) -> usize {
        let params = json!({ "textDocument": { "uri": "file:///big.scl", "version": version }, "contentChanges": [{ "text": text }] });
        self.client.sender.send(Notification::new("textDocument/didChange".into(), params).into()).expect("send");
        self.wait_for(version)
    }

    fn wait_for(&mut self, version: i32) -> usize {
        loop {
            if let Message::Notification(n) = self.client.receiver.recv().expect("the server answers") {
                if n.method == "textDocument/publishDiagnostics" && n.params["version"] == json!(version) {
                    return n.params["diagnostics"].as_array().map_or(0, Vec::len);
                }
            }
        }
    }

    fn stop(self) {
        let shutdown = Request::new(RequestId::from(2), "shutdown".into(), json!(null));
        self.client.sender.send(shutdown.into()).expect("send");
        self.client.sender.send(Notification::new("exit".into(), json!(null)).into()).expect("send");
        self.thread.join().expect("the server stops");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
