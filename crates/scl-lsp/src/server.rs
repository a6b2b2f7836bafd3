//! The server loop: the initialize handshake, the open documents, requests and
//! notifications, and the shutdown/exit sequence.
//!
//! Typing fast must not queue one full check per keystroke. Messages are moved from the
//! connection into an unbounded inbox by a thread of their own, and the loop takes
//! everything waiting in the inbox as one batch: edits are applied to the text at once
//! (cheap), checking waits until a request needs the result or the batch is done, so ten
//! queued `didChange`s of a document cost one check and one `publishDiagnostics`.

use crate::analysis::{analyse, Analysis};
use crate::complete::{complete, Settings};
use crate::document::Document;
use crate::{diagnostics, navigate, position, symbols};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Exit as ExitNotification, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{Completion, DocumentSymbolRequest, GotoDefinition, HoverRequest, Request as _, Shutdown};
use lsp_types::{
    CompletionOptions, CompletionParams, CompletionResponse, DocumentSymbolParams, DocumentSymbolResponse,
    GotoDefinitionParams, GotoDefinitionResponse, HoverParams, HoverProviderCapability, InitializeParams, OneOf,
    Position, PublishDiagnosticsParams, ServerCapabilities, ServerInfo, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextDocumentSyncOptions, Uri,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

/// Why the server could not go on: the connection broke or the client broke the protocol.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How the session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `exit` after `shutdown`: the process should exit with status 0.
    Clean,
    /// `exit` without `shutdown`, or the client went away: status 1, as LSP says.
    WithoutShutdown,
}

/// Serves one client over stdin and stdout until it exits. A failure of the transport
/// (stdout closed, a hostile frame on stdin: `crate::transport`) is returned as the
/// `std::io::Error` it was, being the cause of whatever the server saw after it.
pub fn run_stdio() -> Result<Exit, Error> {
    let (connection, threads) = crate::transport::stdio();
    let result = run(connection);
    match threads.join() {
        Err(e) => Err(Box::new(e)),
        Ok(()) => result,
    }
}

/// Serves one client over `connection` until it exits; the connection is closed on return.
pub fn run(connection: Connection) -> Result<Exit, Error> {
    let (id, params) = connection.initialize_start()?;
    let params: InitializeParams = serde_json::from_value(params)?;
    let settings = settings(&params);
    let result = serde_json::json!({
        "capabilities": capabilities(),
        "serverInfo": ServerInfo { name: "sclc".into(), version: Some(env!("CARGO_PKG_VERSION").into()) },
    });
    connection.initialize_finish(id, result)?;
    if let Some(problem) = target_problem(&params) {
        // The client asked for a target this server does not know: say so, rather than
        // check for no target while the user believes otherwise.
        let params = lsp_types::ShowMessageParams { typ: lsp_types::MessageType::WARNING, message: problem };
        let method = <lsp_types::notification::ShowMessage as lsp_types::notification::Notification>::METHOD;
        connection.sender.send(Message::Notification(Notification::new(method.into(), params)))?;
    }
    Server::new(connection, settings).serve()
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::INCREMENTAL),
            ..TextDocumentSyncOptions::default()
        })),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), ":".into()]),
            ..CompletionOptions::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// Snippet support from the client's capabilities; the target from the initialization
/// options (`{"target": "syncord"}`), as `sclc check --target` takes it.
fn settings(params: &InitializeParams) -> Settings {
    let snippets = (params.capabilities.text_document.as_ref())
        .and_then(|t| t.completion.as_ref()?.completion_item.as_ref()?.snippet_support)
        .unwrap_or(false);
    let target = (params.initialization_options.as_ref())
        .and_then(|o| o.get("target")?.as_str())
        .and_then(scl_catalogue::Target::from_name);
    Settings { snippets, target }
}

/// What is wrong with the `target` initialization option, if anything: not a string, or
/// not a target's name.
fn target_problem(params: &InitializeParams) -> Option<String> {
    let value = params.initialization_options.as_ref()?.get("target")?;
    let known = scl_catalogue::Target::ALL.iter().map(|t| format!("`{}`", t.name())).collect::<Vec<_>>().join(", ");
    match value.as_str() {
        Some(name) if scl_catalogue::Target::from_name(name).is_some() => None,
        Some(name) => Some(format!(
            "sclc: unknown target `{name}` in the initialization options; the targets are {known}. Checking for no particular target."
        )),
        None if value.is_null() => None,
        None => Some(format!("sclc: the `target` initialization option must be a string, one of {known}; got {value}")),
    }
}

/// An open document and what the compiler made of its current text.
struct Open {
    uri: Uri,
    doc: Document,
    /// `None` until checked after the last change; `Some(None)` if checking panicked.
    analysis: Option<Option<Analysis>>,
    /// The version whose diagnostics the editor has.
    published: Option<i32>,
}

struct Server {
    connection: Connection,
    inbox: mpsc::Receiver<Message>,
    docs: HashMap<String, Open>,
    settings: Settings,
    shut_down: bool,
}

/// The error text of a request whose handler panicked.
const INTERNAL: &str = "internal error in the SCL language server; please report it with the file";

impl Server {
    fn new(connection: Connection, settings: Settings) -> Server {
        Server { inbox: spawn_inbox(&connection), connection, docs: HashMap::new(), settings, shut_down: false }
    }

    fn serve(mut self) -> Result<Exit, Error> {
        loop {
            let Ok(first) = self.inbox.recv() else { return Ok(Exit::WithoutShutdown) };
            let batch: Vec<Message> = std::iter::once(first).chain(self.inbox.try_iter()).collect();
            if let Some(exit) = self.process(batch)? {
                return Ok(exit);
            }
        }
    }

    /// Handles a batch of messages in order, then publishes the diagnostics of every
    /// document the batch changed, once each.
    fn process(&mut self, batch: Vec<Message>) -> Result<Option<Exit>, Error> {
        for message in batch {
            if let Some(exit) = self.handle(message)? {
                return Ok(Some(exit));
            }
        }
        self.publish_changed()?;
        Ok(None)
    }

    fn handle(&mut self, message: Message) -> Result<Option<Exit>, Error> {
        match message {
            Message::Request(req) => {
                let response = self.request(req);
                self.send(response.into())?;
            }
            Message::Notification(n) if n.method == ExitNotification::METHOD => {
                return Ok(Some(if self.shut_down { Exit::Clean } else { Exit::WithoutShutdown }));
            }
            Message::Notification(n) => self.notification(n)?,
            // The server sends no requests, so it expects no responses.
            Message::Response(_) => {}
        }
        Ok(None)
    }

    fn send(&self, message: Message) -> Result<(), Error> {
        self.connection.sender.send(message).map_err(|e| Error::from(e.to_string()))
    }

    fn notification(&mut self, n: Notification) -> Result<(), Error> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidOpenTextDocumentParams>(n.params) else { return Ok(()) };
                let doc = Document::new(p.text_document.text, p.text_document.version);
                let uri = p.text_document.uri;
                self.docs.insert(uri.as_str().to_string(), Open { uri, doc, analysis: None, published: None });
            }
            DidChangeTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidChangeTextDocumentParams>(n.params) else { return Ok(()) };
                if let Some(open) = self.docs.get_mut(p.text_document.uri.as_str()) {
                    open.doc.apply(p.content_changes, p.text_document.version);
                    open.analysis = None;
                }
            }
            DidCloseTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidCloseTextDocumentParams>(n.params) else { return Ok(()) };
                if self.docs.remove(p.text_document.uri.as_str()).is_some() {
                    // A closed file's problems leave the editor's problem list with it.
                    let cleared = PublishDiagnosticsParams { uri: p.text_document.uri, diagnostics: Vec::new(), version: None };
                    self.send(Notification::new(PublishDiagnostics::METHOD.into(), cleared).into())?;
                }
            }
            // Cancellation, configuration and the rest: every request is answered at once
            // anyway, and the server has no settings to change.
            _ => {}
        }
        Ok(())
    }

    /// Sends the diagnostics of every document whose text changed since they were sent.
    fn publish_changed(&mut self) -> Result<(), Error> {
        let stale: Vec<String> = self.docs.iter().filter(|(_, o)| o.published != Some(o.doc.version)).map(|(k, _)| k.clone()).collect();
        for key in stale {
            let open = self.docs.get_mut(&key).expect("listed from the map");
            let uri = open.uri.clone();
            let diagnostics = match analysed(open, &self.settings) {
                Some(a) => catch_unwind(AssertUnwindSafe(|| diagnostics::to_lsp(a, &uri))).unwrap_or_else(|_| vec![internal_diagnostic()]),
                None => vec![internal_diagnostic()],
            };
            open.published = Some(open.doc.version);
            let params = PublishDiagnosticsParams { uri, diagnostics, version: Some(open.doc.version) };
            self.send(Notification::new(PublishDiagnostics::METHOD.into(), params).into())?;
        }
        Ok(())
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        if self.shut_down {
            return Response::new_err(id, ErrorCode::InvalidRequest as i32, "the server is shutting down".into());
        }
        let result = match req.method.as_str() {
            Shutdown::METHOD => {
                self.shut_down = true;
                Ok(Value::Null)
            }
            HoverRequest::METHOD => self.at::<HoverParams, _>(req, |p| p.text_document_position_params.clone(), |a, _, offset, _| {
                navigate::hover(a, offset)
            }),
            GotoDefinition::METHOD => self.at::<GotoDefinitionParams, _>(req, |p| p.text_document_position_params.clone(), |a, uri, offset, _| {
                navigate::definition(a, uri, offset).map(GotoDefinitionResponse::Scalar)
            }),
            Completion::METHOD => self.at::<CompletionParams, _>(req, |p| p.text_document_position.clone(), |a, _, offset, settings| {
                CompletionResponse::Array(complete(a, offset, settings))
            }),
            DocumentSymbolRequest::METHOD => self.document_symbols(req),
            _ => Err((ErrorCode::MethodNotFound, format!("unsupported request `{}`", req.method))),
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err((code, message)) => Response::new_err(id, code as i32, message),
        }
    }

    /// Answers a request about a position in a document with `answer`, which gets the
    /// document's analysis, URI, the position as a byte offset, and the settings. A request
    /// about a document that is not open gets `null`.
    fn at<P: DeserializeOwned, R: serde::Serialize>(
        &mut self,
        req: Request,
        where_: impl Fn(&P) -> lsp_types::TextDocumentPositionParams,
        answer: impl FnOnce(&Analysis, &Uri, usize, &Settings) -> R,
    ) -> Result<Value, (ErrorCode, String)> {
        let p: P = params(req.params).ok_or((ErrorCode::InvalidParams, format!("bad parameters for `{}`", req.method)))?;
        let tdp = where_(&p);
        let settings = self.settings;
        self.with_analysis(&tdp.text_document.uri, |a, uri| {
            let offset = position::offset(a.source(), tdp.position);
            serde_json::to_value(answer(a, uri, offset, &settings)).unwrap_or(Value::Null)
        })
    }

    fn document_symbols(&mut self, req: Request) -> Result<Value, (ErrorCode, String)> {
        let p: DocumentSymbolParams = params(req.params).ok_or((ErrorCode::InvalidParams, "bad parameters for `textDocument/documentSymbol`".into()))?;
        self.with_analysis(&p.text_document.uri, |a, _| {
            serde_json::to_value(DocumentSymbolResponse::Nested(symbols::document_symbols(a))).unwrap_or(Value::Null)
        })
    }

    /// Runs `f` on the current analysis of the document `uri`, checking it first if it
    /// changed. A panic in the checker or in `f` becomes an error response: one bad request
    /// must not end the editing session.
    fn with_analysis(&mut self, uri: &Uri, f: impl FnOnce(&Analysis, &Uri) -> Value) -> Result<Value, (ErrorCode, String)> {
        let Some(open) = self.docs.get_mut(uri.as_str()) else { return Ok(Value::Null) };
        let uri = open.uri.clone();
        let analysis = analysed(open, &self.settings).ok_or((ErrorCode::InternalError, INTERNAL.to_string()))?;
        catch_unwind(AssertUnwindSafe(|| f(analysis, &uri))).map_err(|_| (ErrorCode::InternalError, INTERNAL.to_string()))
    }
}

/// Moves messages from the connection into an unbounded channel as they arrive, so that
/// everything the client has sent is visible to the loop at once (the connection's own
/// channel holds one message at a time). It stops after `exit`, when the client's side
/// closes, or when the server is gone.
fn spawn_inbox(connection: &Connection) -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel();
    let receiver = connection.receiver.clone();
    std::thread::Builder::new()
        .name("scl-lsp-inbox".into())
        .spawn(move || {
            for message in receiver {
                let exit = matches!(&message, Message::Notification(n) if n.method == ExitNotification::METHOD);
                if tx.send(message).is_err() || exit {
                    break;
                }
            }
        })
        .expect("a thread can be started");
    rx
}

/// The document's analysis, checking its current text first if it changed since.
fn analysed<'o>(open: &'o mut Open, settings: &Settings) -> Option<&'o Analysis> {
    if open.analysis.is_none() {
        let (name, text) = (open.uri.as_str(), &open.doc.text);
        let options = scl_sema::Options { target: settings.target };
        open.analysis = Some(catch_unwind(AssertUnwindSafe(|| analyse(name, text, &options))).ok());
    }
    open.analysis.as_ref().and_then(Option::as_ref)
}

/// The diagnostic shown when checking a text panicked, so the failure is visible in the
/// editor rather than a silent absence of diagnostics.
fn internal_diagnostic() -> lsp_types::Diagnostic {
    lsp_types::Diagnostic {
        range: lsp_types::Range { start: Position::default(), end: Position::default() },
        severity: Some(lsp_types::DiagnosticSeverity::ERROR),
        code: Some(lsp_types::NumberOrString::String("internal".into())),
        source: Some(diagnostics::SOURCE.into()),
        message: INTERNAL.into(),
        ..lsp_types::Diagnostic::default()
    }
}

fn params<P: DeserializeOwned>(value: Value) -> Option<P> {
    serde_json::from_value(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notification(method: &str, params: Value) -> Message {
        Notification::new(method.into(), params).into()
    }

    fn change(version: i32, text: &str) -> Message {
        let params = json!({ "textDocument": { "uri": "file:///a.scl", "version": version }, "contentChanges": [{ "text": text }] });
        notification(DidChangeTextDocument::METHOD, params)
    }

    #[test]
    fn queued_changes_are_checked_and_published_once() {
        let (ours, client) = Connection::memory();
        let mut server = Server::new(ours, Settings::default());
        let doc = json!({ "textDocument": { "uri": "file:///a.scl", "languageId": "scl", "version": 1, "text": "" } });
        let mut batch = vec![notification(DidOpenTextDocument::METHOD, doc)];
        let text = "global x: u32;\nfn f() { x = y; }\n";
        batch.extend((1..=text.len()).map(|n| change(n as i32 + 1, &text[..n])));
        assert_eq!(server.process(batch).expect("no protocol error"), None);
        let sent: Vec<Message> = client.receiver.try_iter().collect();
        let [Message::Notification(n)] = sent.as_slice() else { panic!("one notification, got {sent:?}") };
        assert_eq!(n.method, PublishDiagnostics::METHOD);
        assert_eq!(n.params["version"], json!(text.len() + 1), "the last version's diagnostics");
        assert_eq!(n.params["diagnostics"][0]["code"], json!("E0201"));
    }

    #[test]
    fn a_request_in_the_batch_sees_the_edits_before_it() {
        let (ours, client) = Connection::memory();
        let mut server = Server::new(ours, Settings::default());
        let doc = json!({ "textDocument": { "uri": "file:///a.scl", "languageId": "scl", "version": 1, "text": "" } });
        let symbols = Request::new(7.into(), DocumentSymbolRequest::METHOD.into(), json!({ "textDocument": { "uri": "file:///a.scl" } }));
        let batch = vec![notification(DidOpenTextDocument::METHOD, doc), change(2, "global hits: u64;\n"), symbols.into(), change(3, "")];
        server.process(batch).expect("no protocol error");
        let sent: Vec<Message> = client.receiver.try_iter().collect();
        let Message::Response(r) = &sent[0] else { panic!("the response first, got {sent:?}") };
        assert_eq!(r.response_result.as_ref().expect("a result")[0]["name"], json!("hits"));
        let Message::Notification(n) = &sent[1] else { panic!("then the diagnostics, got {sent:?}") };
        assert_eq!(n.params["version"], json!(3));
    }
}
