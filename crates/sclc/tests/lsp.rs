//! `sclc lsp` driven as an editor drives it: the real binary, JSON-RPC messages framed with
//! `Content-Length` over its stdin and stdout.

mod common;
use common::repo_root;

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any one answer may take before the test gives up on a hung server.
const TIMEOUT: Duration = Duration::from_secs(60);

/// An editor's side of the connection.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    incoming: mpsc::Receiver<Value>,
    /// Notifications read while waiting for something else.
    pending: VecDeque<Value>,
    next_id: i64,
}

impl Client {
    /// Starts `sclc lsp` and completes the initialize handshake.
    fn start() -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sclc"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sclc lsp starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, incoming) = mpsc::channel();
        // A reader of its own, so the server never blocks on a full pipe while the test
        // is busy writing.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_message(&mut reader) {
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut client = Client { child, stdin, incoming, pending: VecDeque::new(), next_id: 1 };
        let caps = json!({ "textDocument": { "completion": { "completionItem": { "snippetSupport": true } } } });
        let init = client.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": caps }));
        assert_eq!(init["capabilities"]["hoverProvider"], json!(true), "{init}");
        assert_eq!(init["serverInfo"]["name"], json!("sclc"));
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        let stdin = self.stdin.as_mut().expect("stdin is open");
        write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("the server reads its stdin");
        stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and returns its id without waiting.
    fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        id
    }

    /// Sends a request and waits for its successful result.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        let response = self.response(id);
        assert!(response.get("error").is_none(), "`{method}` failed: {response}");
        response["result"].clone()
    }

    fn next(&mut self) -> Value {
        self.incoming.recv_timeout(TIMEOUT).expect("the server answers in time")
    }

    /// The response to request `id`, keeping notifications that come first.
    fn response(&mut self, id: i64) -> Value {
        loop {
            let message = self.next();
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                return message;
            }
            self.pending.push_back(message);
        }
    }

    /// The next `publishDiagnostics` for `uri`, from the kept notifications or the wire.
    fn diagnostics(&mut self, uri: &str) -> Value {
        let is_for = |m: &Value| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri;
        if let Some(i) = self.pending.iter().position(is_for) {
            return self.pending.remove(i).expect("indexed")["params"].clone();
        }
        loop {
            let message = self.next();
            if is_for(&message) {
                return message["params"].clone();
            }
            self.pending.push_back(message);
        }
    }

    /// The diagnostics published for `version` of `uri`, skipping those of older versions.
    fn diagnostics_for_version(&mut self, uri: &str, version: i64) -> Vec<Value> {
        loop {
            let params = self.diagnostics(uri);
            if params["version"] == json!(version) {
                return params["diagnostics"].as_array().expect("an array").clone();
            }
        }
    }

    fn open(&mut self, uri: &str, text: &str) {
        let doc = json!({ "uri": uri, "languageId": "scl", "version": 1, "text": text });
        self.notify("textDocument/didOpen", json!({ "textDocument": doc }));
    }

    fn change(&mut self, uri: &str, version: i64, changes: Value) {
        self.notify("textDocument/didChange", json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": changes }));
    }

    /// `shutdown`, then `exit`; returns the exit status.
    fn shutdown(mut self) -> ExitStatus {
        assert_eq!(self.request("shutdown", Value::Null), Value::Null);
        self.notify("exit", Value::Null);
        self.wait()
    }

    fn wait(mut self) -> ExitStatus {
        drop(self.stdin.take());
        self.child.wait().expect("sclc lsp exits")
    }
}

/// Reads one `Content-Length` framed message; `None` at the end of the stream.
fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            length = n.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length.expect("every message has a Content-Length")];
    reader.read_exact(&mut body).ok()?;
    Some(serde_json::from_slice(&body).expect("the server writes JSON"))
}

fn pos(line: u32, character: u32) -> Value {
    json!({ "line": line, "character": character })
}

fn range(sl: u32, sc: u32, el: u32, ec: u32) -> Value {
    json!({ "start": pos(sl, sc), "end": pos(el, ec) })
}

/// The codes and ranges of published diagnostics, in order.
fn codes_and_ranges(diagnostics: &[Value]) -> Vec<(String, Value)> {
    diagnostics.iter().map(|d| (d["code"].as_str().expect("a string code").to_string(), d["range"].clone())).collect()
}

const BROKEN: &str = "global hits: u64;
per_cpu hits: u64;

policy p for spinlock {
    on contended(l: lock) {
        hits += misses;
        sleep(1us);
    }
}
";

#[test]
fn diagnostics_are_published_on_open_and_follow_edits() {
    let uri = "file:///work/broken.scl";
    let mut client = Client::start();
    client.open(uri, BROKEN);
    let first = client.diagnostics_for_version(uri, 1);
    let sleep = ("E0310".to_string(), range(6, 8, 6, 18));
    assert_eq!(
        codes_and_ranges(&first),
        [("E0202".to_string(), range(1, 8, 1, 12)), ("E0201".to_string(), range(5, 16, 5, 22)), sleep.clone()],
        "{first:#?}"
    );
    let twice = &first[0];
    assert_eq!(twice["severity"], json!(1));
    assert_eq!(twice["source"], json!("sclc"));
    assert!(twice["message"].as_str().unwrap().starts_with("`hits` is declared twice"), "{twice}");
    assert_eq!(twice["data"]["explain"], json!("sclc explain E0202"));
    // The code links to its explain page, written where the editor can open it.
    let href = twice["codeDescription"]["href"].as_str().expect("a link to the explain page");
    let page = std::fs::read_to_string(href.strip_prefix("file://").expect("a file URI")).expect("the page exists");
    assert!(page.starts_with("# E0202"), "{page}");
    // The secondary label, the first declaration, is related information.
    let related = &twice["relatedInformation"][0];
    assert_eq!(related["location"], json!({ "uri": uri, "range": range(0, 7, 0, 11) }));
    assert_eq!(related["message"], json!("first declared here"));

    // Fix the unknown name with an incremental edit: the duplicate and the sleep are left.
    client.change(uri, 2, json!([{ "range": range(5, 16, 5, 22), "text": "1" }]));
    let second = client.diagnostics_for_version(uri, 2);
    assert_eq!(codes_and_ranges(&second), [("E0202".to_string(), range(1, 8, 1, 12)), sleep.clone()]);

    // Rename the second declaration: the duplicate goes, and the new state is unused.
    client.change(uri, 3, json!([{ "range": range(1, 8, 1, 12), "text": "other" }]));
    let third = client.diagnostics_for_version(uri, 3);
    assert_eq!(codes_and_ranges(&third), [("W0401".to_string(), range(1, 8, 1, 13)), sleep], "{third:#?}");
    assert_eq!(third[0]["severity"], json!(2));
    assert_eq!(third[0]["tags"], json!([1]), "unused state is tagged unnecessary");
    assert_eq!(third[1]["relatedInformation"][0]["location"]["range"], range(4, 7, 4, 16));

    // A full-text replacement that fixes everything clears the list.
    let fixed = BROKEN.replace("per_cpu hits: u64;\n", "").replace("misses", "1").replace("sleep(1us)", "back_off(1us)");
    client.change(uri, 4, json!([{ "text": fixed }]));
    assert_eq!(client.diagnostics_for_version(uri, 4), Vec::<Value>::new());

    // Closing the document clears its diagnostics in the editor.
    client.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
    assert_eq!(client.diagnostics(uri)["diagnostics"], json!([]));
    assert!(client.shutdown().success());
}

#[test]
fn hover_definition_completion_and_outline_on_an_example() {
    let path = repo_root().join("examples/numa_grouping.scl");
    let text = std::fs::read_to_string(&path).expect("the example exists");
    let uri = "file:///work/numa_grouping.scl";
    let mut client = Client::start();
    client.open(uri, &text);
    assert_eq!(client.diagnostics_for_version(uri, 1), Vec::<Value>::new(), "the example is clean");
    let at = |needle: &str, nth: usize| -> Value {
        let offset = text.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("`{needle}` #{nth}")).0;
        let line = text[..offset].matches('\n').count() as u32;
        let col = (offset - text[..offset].rfind('\n').map_or(0, |i| i + 1)) as u32;
        json!({ "textDocument": { "uri": uri }, "position": pos(line, col + 1) })
    };
    let hover = |client: &mut Client, needle: &str, nth: usize| -> String {
        let result = client.request("textDocument/hover", at(needle, nth));
        assert_eq!(result["contents"]["kind"], json!("markdown"), "{result}");
        result["contents"]["value"].as_str().expect("text").to_string()
    };

    // Hover: a hook, a built-in, state and a type, all from the catalogue and the checker.
    let acquired = hover(&mut client, "acquired(l", 0);
    assert!(acquired.contains("on acquired(lock: lock)") && acquired.contains("The task now holds the lock"), "{acquired}");
    assert!(hover(&mut client, "numa_node()", 0).contains("numa_node() -> u32"));
    assert!(hover(&mut client, "batch.node ==", 0).contains("per_lock[4096] batch: Batch"));
    assert!(hover(&mut client, "waiter)", 0).contains("`waiter.numa_node`"));
    let batch_struct = hover(&mut client, "Batch;", 0);
    assert!(batch_struct.contains("struct Batch") && batch_struct.contains("run: u32"), "{batch_struct}");

    // Definition: state, a struct, config, and a stdlib function and import.
    let def = client.request("textDocument/definition", at("batch.run >=", 0));
    assert_eq!(def, json!({ "uri": uri, "range": range(24, 15, 24, 20) }));
    let def = client.request("textDocument/definition", at("Batch;", 0));
    assert_eq!(def["range"]["start"], pos(19, 7));
    let def = client.request("textDocument/definition", at("max_batch;", 0));
    assert_eq!(def["range"]["start"], pos(17, 7));
    let def = client.request("textDocument/definition", at("same_node", 0));
    let module = def["uri"].as_str().expect("a URI");
    assert!(module.ends_with("/stdlib/topo.scl"), "{module}");
    let stdlib = std::fs::read_to_string(module.strip_prefix("file://").unwrap()).expect("the stdlib file is written");
    let line = def["range"]["start"]["line"].as_u64().unwrap() as usize;
    assert!(stdlib.lines().nth(line).unwrap().contains("fn same_node"), "{def}");
    let import = client.request("textDocument/definition", at("topo;", 0));
    assert_eq!(import["uri"], def["uri"]);
    assert_eq!(client.request("textDocument/definition", at("numa_node()", 0)), Value::Null);

    // Completion: struct fields after `batch.`, typed into the document as an editor would.
    let (line, col) = (31, 8);
    client.change(uri, 2, json!([{ "range": range(line, col, line, col), "text": "batch." }]));
    let items = client.request("textDocument/completion", json!({ "textDocument": { "uri": uri }, "position": pos(line, col + 6) }));
    let labels: Vec<&str> = items.as_array().expect("a list").iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["node", "run"]);
    // Hooks at the policy's top level: those not handled yet, as snippets.
    client.change(uri, 3, json!([{ "range": range(line, col, line, col + 6), "text": "" }, { "range": range(27, 0, 27, 0), "text": "    \n" }]));
    let items = client.request("textDocument/completion", json!({ "textDocument": { "uri": uri }, "position": pos(27, 4) }));
    let hooks: Vec<&str> = items.as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert!(hooks.contains(&"contended") && hooks.contains(&"enable_fastpath"), "{hooks:?}");
    assert!(!hooks.contains(&"acquired") && !hooks.contains(&"bypass_acquire"), "{hooks:?}");
    let contended = items.as_array().unwrap().iter().find(|i| i["label"] == "contended").unwrap();
    assert_eq!(contended["insertText"], json!("on contended(l: lock) {\n\t$0\n}"));
    assert_eq!(contended["insertTextFormat"], json!(2));

    // The outline.
    let symbols = client.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": uri } }));
    let names: Vec<&str> = symbols.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["topo", "max_batch", "Batch", "batch", "numa_grouping"]);
    let hooks: Vec<&str> = symbols[4]["children"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(hooks, ["acquired", "skip_reorder", "should_reorder"]);
    assert!(client.shutdown().success());
}

#[test]
fn exit_without_shutdown_is_status_1_and_requests_after_shutdown_fail() {
    let client = Client::start();
    let mut client = client;
    client.notify("exit", Value::Null);
    assert_eq!(client.wait().code(), Some(1), "exit without shutdown");

    let mut client = Client::start();
    assert_eq!(client.request("shutdown", Value::Null), Value::Null);
    let id = client.send_request("textDocument/documentSymbol", json!({ "textDocument": { "uri": "file:///x.scl" } }));
    assert_eq!(client.response(id)["error"]["code"], json!(-32600), "requests after shutdown are invalid");
    client.notify("exit", Value::Null);
    assert_eq!(client.wait().code(), Some(0));

    let mut client = Client::start();
    let id = client.send_request("textDocument/noSuchThing", json!({}));
    assert_eq!(client.response(id)["error"]["code"], json!(-32601));
    assert!(client.shutdown().success());
}

#[test]
fn a_burst_of_edits_ends_in_the_last_text_s_diagnostics() {
    let uri = "file:///work/burst.scl";
    let mut client = Client::start();
    client.open(uri, "");
    client.diagnostics_for_version(uri, 1);
    // Type a whole policy one character at a time without waiting, as a fast typist would.
    let text = "global hits: u64;\npolicy p for spinlock {\n    on contended(l: lock) {\n        hits += nope;\n    }\n}\n";
    let (mut line, mut col) = (0, 0);
    for (i, c) in text.chars().enumerate() {
        client.change(uri, i as i64 + 2, json!([{ "range": range(line, col, line, col), "text": c.to_string() }]));
        if c == '\n' {
            (line, col) = (line + 1, 0);
        } else {
            col += c.len_utf16() as u32;
        }
    }
    let last = text.chars().count() as i64 + 1;
    // Each batch of queued edits is checked once, so there may be fewer notifications
    // than edits; their versions only grow, and the last is the last edit's.
    let (mut published, mut previous) = (0, 1);
    let diagnostics = loop {
        let params = client.diagnostics(uri);
        let version = params["version"].as_i64().expect("a version");
        assert!(version > previous, "versions grow: {version} after {previous}");
        (published, previous) = (published + 1, version);
        if version == last {
            break params["diagnostics"].as_array().expect("an array").clone();
        }
    };
    assert_eq!(codes_and_ranges(&diagnostics), [("E0201".to_string(), range(3, 16, 3, 20))]);
    println!("{} edits sent at once, {published} diagnostics notifications", last - 1);
    assert!(client.shutdown().success());
}

/// The states an editor passes through while the file is typed: prefixes ending at every
/// 7th character and at every line end.
fn typing_states(text: &str) -> Vec<usize> {
    let mut cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).enumerate().filter(|(n, _)| n % 7 == 0).map(|(_, i)| i).collect();
    cuts.extend(text.match_indices('\n').map(|(i, _)| i));
    cuts.push(text.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Where the end of `text` is, as an LSP position.
fn end_position(text: &str) -> Value {
    let line = text.matches('\n').count() as u32;
    let last = &text[text.rfind('\n').map_or(0, |i| i + 1)..];
    pos(line, last.encode_utf16().count() as u32)
}

#[test]
fn every_typing_state_of_every_example_gets_diagnostics_and_answers() {
    let mut files: Vec<PathBuf> = ["examples", "stdlib"]
        .iter()
        .flat_map(|d| std::fs::read_dir(repo_root().join(d)).expect("dir").flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "scl"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    let mut client = Client::start();
    let requests = ["textDocument/hover", "textDocument/documentSymbol", "textDocument/completion", "textDocument/definition"];
    let mut states = 0usize;
    for (n, path) in files.iter().enumerate() {
        let text = std::fs::read_to_string(path).expect("readable");
        let uri = format!("file:///replay/{n}.scl");
        client.open(&uri, "");
        client.diagnostics_for_version(&uri, 1);
        let mut typed = 0;
        for (version, cut) in typing_states(&text).into_iter().enumerate() {
            let version = version as i64 + 2;
            // Append what was typed since the last state at the end of the document.
            let at = end_position(&text[..typed]);
            client.change(&uri, version, json!([{ "range": { "start": at, "end": at }, "text": &text[typed..cut] }]));
            typed = cut;
            let method = requests[states % requests.len()];
            let mut params = json!({ "textDocument": { "uri": uri } });
            if method != "textDocument/documentSymbol" {
                params["position"] = end_position(&text[..cut]);
            }
            let id = client.send_request(method, params);
            let response = client.response(id);
            assert!(response.get("error").is_none(), "{} at byte {cut}: {method} failed: {response}", path.display());
            let diagnostics = client.diagnostics_for_version(&uri, version);
            assert!(
                diagnostics.iter().all(|d| d["code"] != "internal"),
                "{} at byte {cut}: the checker failed: {diagnostics:?}",
                path.display()
            );
            states += 1;
        }
        // The complete file is a shipped one: it checks clean.
        client.change(&uri, 100_000, json!([{ "text": text }]));
        let last = client.diagnostics_for_version(&uri, 100_000);
        assert!(last.iter().all(|d| d["severity"] != 1), "{}: {last:?}", path.display());
        client.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
    }
    println!("replayed {states} typing states of {} files through one server", files.len());
    assert!(states > 1000, "{states}");
    assert!(client.shutdown().success());
}
