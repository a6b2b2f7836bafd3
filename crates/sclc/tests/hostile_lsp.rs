//! Hostile clients of `sclc lsp` (issue 15, classes 3 and 5): broken frames end the session
//! with a message and status 2, never an abort or an allocation the client only announced;
//! an unknown `target` initialization option is reported to the user.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

fn frame(body: &str) -> Vec<u8> {
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn initialize(options: Value) -> Vec<u8> {
    let msg = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "processId": null, "rootUri": null, "capabilities": {}, "initializationOptions": options } });
    frame(&msg.to_string())
}

/// Runs `sclc lsp` on `input` (then end of input); returns the status and stderr.
fn session(input: &[u8]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sclc lsp starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(input);
    drop(stdin);
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    (child.wait().expect("exit").code(), err)
}

#[test]
fn broken_frames_end_the_session_with_a_message() {
    let mut huge_header = b"X-Junk: ".to_vec();
    huge_header.extend(std::iter::repeat_n(b'a', 4 << 20));
    let cases: &[(&[u8], &str)] = &[
        (b"Content-Length: 99999999999\r\n\r\n", "over the limit of 64 MiB"),
        (b"Content-Length: 184467440737095516160\r\n\r\n", "is not a length"),
        (&huge_header, "longer than 8192 bytes"),
        (b"Content-Length: 10\r\n\r\n{}", "the input ended 2 bytes into a message of 10"),
        (b"Content-Length: 2\r\n\r\n{}", "not JSON-RPC"),
        (b"garbage\n", "malformed message header"),
    ];
    for (input, message) in cases {
        let (code, err) = session(input);
        assert_eq!(code, Some(2), "{message}: {err}");
        assert!(err.contains(message), "{message}: {err}");
        assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{err}");
    }
}

/// Reads framed messages from the server until one satisfies `want`.
fn read_until(out: &mut impl BufRead, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            assert!(out.read_line(&mut line).expect("read") > 0, "the server closed stdout");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = n.parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        out.read_exact(&mut body).expect("body");
        let v: Value = serde_json::from_slice(&body).expect("json");
        if want(&v) {
            return v;
        }
    }
}

#[test]
fn an_unknown_target_option_is_reported() {
    for (option, message) in [(json!("nosuch"), "unknown target `nosuch`"), (json!(3), "must be a string")] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sclc"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sclc lsp starts");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&initialize(json!({ "target": option }))).expect("write");
        stdin.write_all(&frame(&json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} }).to_string())).expect("write");
        stdin.flush().expect("flush");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let shown = read_until(&mut out, |v| v["method"] == "window/showMessage");
        let text = shown["params"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message) && text.contains("`stock`, `syncord`, `sim`"), "{shown}");
        assert_eq!(shown["params"]["type"], json!(2), "a warning: {shown}");
        drop(stdin);
        let _ = child.wait();
    }
}

/// A 40,000-deep chain of calls, opened in the editor: diagnostics, not a stack overflow.
#[test]
fn a_deep_call_chain_gets_its_diagnostics() {
    let mut text = String::from("global g: u64;\n");
    for i in 0..39_999 {
        text += &format!("fn f{i}(x: u64) -> u64 {{ return f{}(x); }}\n", i + 1);
    }
    text += "fn f39999(x: u64) -> u64 { return x + 1; }\npolicy p for spinlock {\n    on contended(l: lock) {\n        g = f0(g);\n    }\n}\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_sclc"))
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sclc lsp starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    stdin.write_all(&initialize(json!({}))).expect("write");
    stdin.write_all(&frame(&json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} }).to_string())).expect("write");
    let open = json!({ "jsonrpc": "2.0", "method": "textDocument/didOpen", "params": { "textDocument": {
        "uri": "file:///chain.scl", "languageId": "scl", "version": 1, "text": text } } });
    stdin.write_all(&frame(&open.to_string())).expect("write");
    stdin.flush().expect("flush");
    let published = read_until(&mut out, |v| v["method"] == "textDocument/publishDiagnostics");
    let codes: Vec<&str> = published["params"]["diagnostics"].as_array().expect("array").iter().filter_map(|d| d["code"].as_str()).collect();
    assert!(codes.contains(&"E0342") && codes.contains(&"E0350"), "{published}");
    drop(stdin);
    let status = child.wait().expect("exit");
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    assert!(!err.contains("overflow"), "{err}");
    assert_eq!(status.code(), Some(1), "no shutdown: status 1, not an abort: {err}");
}
