//! `llama-dialogue lsp`: a language server over stdio for story and persona files. It
//! publishes the same findings as `check` while the writer types, jumps to where a node,
//! variable or cast member is defined, and completes their names.

mod analysis;
mod transport;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use lsp_server::{Connection, ExtractError, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
    Notification as _, PublishDiagnostics,
};
use lsp_types::request::{Completion, GotoDefinition};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionResponse,
    Diagnostic as LspDiagnostic, DiagnosticSeverity, GotoDefinitionResponse, Location, OneOf,
    Position, PublishDiagnosticsParams, Range, ServerCapabilities, TextDocumentSyncCapability,
    TextDocumentSyncKind, Uri,
};

use bevy_llama_dialogue_core::story::{Diagnostic, Severity};

use analysis::{Doc, Spot};

use crate::CliResult;

/// An open document and the other files its findings were published to.
struct Open {
    doc: Doc,
    published: BTreeSet<PathBuf>,
}

struct Server {
    conn: Connection,
    docs: HashMap<String, Open>,
}

/// Serves until the client says `exit`.
pub fn run() -> CliResult {
    let (conn, io) = transport::connect()?;
    let caps = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["\"".into()]),
            ..CompletionOptions::default()
        }),
        ..ServerCapabilities::default()
    };
    conn.initialize(serde_json::to_value(caps)?)?;
    let mut server = Server {
        conn,
        docs: HashMap::new(),
    };
    server.serve()?;
    drop(server);
    io.join()?;
    Ok(())
}

impl Server {
    fn serve(&mut self) -> CliResult {
        while let Ok(msg) = self.conn.receiver.recv() {
            match msg {
                Message::Request(req) => {
                    if self.conn.handle_shutdown(&req)? {
                        return Ok(());
                    }
                    let resp = self.request(req);
                    self.conn.sender.send(Message::Response(resp))?;
                }
                Message::Notification(n) => {
                    let method = n.method.clone();
                    match self.notification(n) {
                        Ok(()) => {}
                        // Parameters that do not parse: said, and the server goes on.
                        Err(e) if e.is::<serde_json::Error>() => {
                            let why = format!("`{method}` with malformed parameters: {e}");
                            eprintln!("llama-dialogue lsp: {why}");
                            self.log(&why)?;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Message::Response(_) => {}
            }
        }
        Ok(())
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let req = match cast_request::<GotoDefinition>(req) {
            Cast::Invalid(resp) => return resp,
            Cast::Ok(id, p) => {
                let pos = p.text_document_position_params;
                let spot = self
                    .docs
                    .get(pos.text_document.uri.as_str())
                    .and_then(|o| o.doc.definition(pos.position.line, pos.position.character));
                let result = spot.and_then(|s| {
                    Some(GotoDefinitionResponse::Scalar(Location {
                        uri: uri_of(&s.path)?,
                        range: point(&s),
                    }))
                });
                return Response::new_ok(id, result);
            }
            Cast::Other(req) => req,
        };
        match cast_request::<Completion>(req) {
            Cast::Invalid(resp) => resp,
            Cast::Ok(id, p) => {
                let pos = p.text_document_position;
                let items: Vec<CompletionItem> = self
                    .docs
                    .get(pos.text_document.uri.as_str())
                    .map(|o| o.doc.completions(pos.position.line, pos.position.character))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|offer| CompletionItem {
                        kind: Some(match offer.what {
                            "cast member" => CompletionItemKind::CLASS,
                            w if w.ends_with("variable") => CompletionItemKind::VARIABLE,
                            _ => CompletionItemKind::REFERENCE,
                        }),
                        detail: Some(offer.what.to_owned()),
                        label: offer.label,
                        ..CompletionItem::default()
                    })
                    .collect();
                Response::new_ok(id, CompletionResponse::Array(items))
            }
            Cast::Other(req) => Response::new_err(
                id,
                lsp_server::ErrorCode::MethodNotFound as i32,
                format!("`{}` is not supported", req.method),
            ),
        }
    }

    fn notification(&mut self, n: Notification) -> CliResult {
        let uri = match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams = serde_json::from_value(n.params)?;
                let key = p.text_document.uri.as_str().to_owned();
                let Some(path) = path_of(&key) else {
                    return Ok(());
                };
                let doc = Doc {
                    path,
                    text: p.text_document.text,
                    last_good: None,
                };
                self.docs.insert(
                    key.clone(),
                    Open {
                        doc,
                        published: BTreeSet::new(),
                    },
                );
                key
            }
            DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams = serde_json::from_value(n.params)?;
                let key = p.text_document.uri.as_str().to_owned();
                // Full sync: the last change holds the whole text.
                if let (Some(open), Some(change)) = (
                    self.docs.get_mut(&key),
                    p.content_changes.into_iter().last(),
                ) {
                    open.doc.text = change.text;
                }
                key
            }
            DidSaveTextDocument::METHOD => {
                let p: lsp_types::DidSaveTextDocumentParams = serde_json::from_value(n.params)?;
                p.text_document.uri.as_str().to_owned()
            }
            DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams = serde_json::from_value(n.params)?;
                let key = p.text_document.uri.as_str().to_owned();
                if let Some(open) = self.docs.remove(&key) {
                    for path in open.published.iter().chain([&open.doc.path]) {
                        self.publish(path, Vec::new())?;
                    }
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        self.check(&uri)
    }

    /// Shows `message` in the editor's log (`window/logMessage`, type error).
    fn log(&self, message: &str) -> CliResult {
        let n = Notification::new(
            "window/logMessage".to_owned(),
            serde_json::json!({"type": 1, "message": format!("llama-dialogue lsp: {message}")}),
        );
        self.conn.sender.send(Message::Notification(n))?;
        Ok(())
    }

    /// Checks a document and publishes its findings, each file's to that file (a story's
    /// findings may be in its personas); files that no longer have any get an empty list.
    fn check(&mut self, key: &str) -> CliResult {
        let Some(open) = self.docs.get_mut(key) else {
            return Ok(());
        };
        let found = open.doc.diagnostics();
        let mut by_file: HashMap<PathBuf, Vec<LspDiagnostic>> = HashMap::new();
        by_file.insert(open.doc.path.clone(), Vec::new());
        for d in &found {
            by_file.entry(d.file.clone()).or_default().push(to_lsp(d));
        }
        let before = std::mem::take(&mut open.published);
        open.published = by_file.keys().cloned().collect();
        let stale: Vec<PathBuf> = before
            .into_iter()
            .filter(|p| !by_file.contains_key(p))
            .collect();
        for path in stale {
            self.publish(&path, Vec::new())?;
        }
        let own = self.docs.get(key).map(|o| o.doc.path.clone());
        for (path, diags) in by_file {
            // The document's own findings go to the URI the client named it by.
            let uri = match &own {
                Some(p) if *p == path => Uri::from_str(key).ok(),
                _ => uri_of(&path),
            };
            if let Some(uri) = uri {
                self.publish_to(uri, diags)?;
            }
        }
        Ok(())
    }

    fn publish(&self, path: &Path, diagnostics: Vec<LspDiagnostic>) -> CliResult {
        match uri_of(path) {
            Some(uri) => self.publish_to(uri, diagnostics),
            None => Ok(()),
        }
    }

    fn publish_to(&self, uri: Uri, diagnostics: Vec<LspDiagnostic>) -> CliResult {
        let params = PublishDiagnosticsParams {
            uri,
            diagnostics,
            version: None,
        };
        let n = Notification::new(PublishDiagnostics::METHOD.to_owned(), params);
        self.conn.sender.send(Message::Notification(n))?;
        Ok(())
    }
}

/// A request as method `R`: its parameters, an error response when they do not parse, or the
/// request back when it is another method.
enum Cast<P> {
    Ok(lsp_server::RequestId, P),
    Invalid(Response),
    Other(Request),
}

fn cast_request<R: lsp_types::request::Request>(req: Request) -> Cast<R::Params> {
    let id = req.id.clone();
    match req.extract(R::METHOD) {
        Ok((id, p)) => Cast::Ok(id, p),
        Err(ExtractError::MethodMismatch(req)) => Cast::Other(req),
        Err(ExtractError::JsonError { method, error }) => Cast::Invalid(Response::new_err(
            id,
            lsp_server::ErrorCode::InvalidParams as i32,
            format!("`{method}`: malformed parameters: {error}"),
        )),
    }
}

fn point(s: &Spot) -> Range {
    let p = Position::new(s.line, s.character);
    Range::new(p, p)
}

fn to_lsp(d: &Diagnostic) -> LspDiagnostic {
    let line = d.location.line.saturating_sub(1) as u32;
    let character = d.location.col.saturating_sub(1) as u32;
    let start = Position::new(line, character);
    let message = match &d.help {
        Some(h) => format!("{} (help: {h})", d.message),
        None => d.message.clone(),
    };
    LspDiagnostic {
        range: Range::new(start, Position::new(line, character + 1)),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        source: Some("llama-dialogue".into()),
        message,
        ..LspDiagnostic::default()
    }
}

/// The local path of a `file://` URI (percent-escapes decoded).
fn path_of(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = rest.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(PathBuf::from)
}

/// The `file://` URI of a path (made absolute; characters outside the unreserved set escaped).
fn uri_of(path: &Path) -> Option<Uri> {
    let abs = std::path::absolute(path).ok()?;
    let mut s = String::from("file://");
    for b in abs.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&s).ok()
}
