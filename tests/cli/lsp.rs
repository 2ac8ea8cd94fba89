//! `llama-dialogue lsp`: the language server an editor talks to over stdio. Findings as the
//! writer types (the same as `check`), go to definition, completion, a clean shutdown.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};

use serde_json::{Value, json};

struct Client {
    child: Child,
    stdin: ChildStdin,
    inbox: Receiver<Value>,
    next_id: i64,
}

impl Client {
    fn start() -> Self {
        let mut child = crate::cli_command()
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, inbox) = channel();
        std::thread::spawn(move || {
            loop {
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        len = n.parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                stdout.read_exact(&mut body).unwrap();
                if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            inbox,
            next_id: 1,
        }
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message that satisfies `want` (others are skipped).
    fn wait(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        loop {
            let msg = self
                .inbox
                .recv_timeout(common::HANG_GUARD)
                .unwrap_or_else(|_| panic!("no {what} from the server"));
            if want(&msg) {
                return msg;
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.wait(method, |m| m["id"] == id)["result"].clone()
    }

    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        self.wait("diagnostics", |m| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        })["params"]["diagnostics"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn at(uri: &str, line: usize, character: usize) -> Value {
    json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
}

/// The 0-based line and column of the first `needle` after `after` in `text`.
fn find(text: &str, after: &str, needle: &str) -> (usize, usize) {
    let from = text.find(after).unwrap();
    let i = from + text[from..].find(needle).unwrap();
    let line = text[..i].matches('\n').count();
    let col = i - text[..i].rfind('\n').map_or(0, |n| n + 1);
    (line, col)
}

#[test]
fn an_editor_gets_findings_definitions_and_completions() {
    let dir = common::temp_dir("lsp");
    std::fs::create_dir_all(dir.join("personas")).unwrap();
    for e in std::fs::read_dir(common::repo().join("stories/personas")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("personas").join(p.file_name().unwrap())).unwrap();
    }
    let path = dir.join("lantern.story.ron");
    let good = std::fs::read_to_string(common::repo().join("stories/lantern.story.ron")).unwrap();
    std::fs::write(&path, &good).unwrap();
    let uri = format!("file://{}", path.display());
    let mut c = Client::start();
    let init = c.request("initialize", json!({"capabilities": {}}));
    assert_eq!(init["capabilities"]["definitionProvider"], true, "{init}");
    c.notify("initialized", json!({}));

    // Typing a misspelt variable: the finding `check` gives, at its place.
    let broken = good.replace("when: \"trust_mara >= 1\"", "when: \"trsut_mara >= 1\"");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "ron", "version": 1, "text": broken}}),
    );
    let found = c.diagnostics(&uri);
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, col) = find(&broken, "id: \"mara_press\"", "\"trsut_mara");
    assert_eq!(
        found[0]["range"]["start"],
        json!({"line": line, "character": col})
    );
    assert_eq!(found[0]["severity"], 1);
    assert_eq!(
        found[0]["message"],
        "condition: `trsut_mara` is not a declared variable (help: did you mean `trust_mara`?)"
    );
    // Fixed: the list empties.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": good}]}),
    );
    assert!(c.diagnostics(&uri).is_empty());

    // Go to definition: a node named in `next`, a variable inside a condition, a speaker.
    let (l, ch) = find(&good, "id: \"mara_press\"", "mara_confides");
    let def = c.request("textDocument/definition", at(&uri, l, ch + 3));
    let (want_line, want_col) = find(
        &good,
        "Choice(\n            id: \"mara_confides\"",
        "id: \"mara_confides\"",
    );
    assert_eq!(def["uri"], uri);
    assert_eq!(
        def["range"]["start"],
        json!({"line": want_line, "character": want_col})
    );
    let (l, ch) = find(&good, "id: \"mara_press\"", "trust_mara");
    let def = c.request("textDocument/definition", at(&uri, l, ch + 2));
    let (want_line, _) = find(&good, "variables:", "\"trust_mara\"");
    assert_eq!(def["range"]["start"]["line"], want_line, "{def}");
    let (l, ch) = find(&good, "id: \"mara_intro\"", "\"mara\"");
    let def = c.request("textDocument/definition", at(&uri, l, ch + 2));
    let persona = dir.join("personas").join("mara.persona.ron");
    assert!(
        def["uri"]
            .as_str()
            .unwrap()
            .ends_with("/personas/mara.persona.ron"),
        "{def}"
    );
    assert!(persona.exists());

    // Completion: node ids after `next:`, cast keys after `speaker:`.
    let labels = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["label"].as_str().unwrap().to_owned())
            .collect()
    };
    let (l, ch) = find(&good, "id: \"mara_cold\"", "next: \"");
    let items = labels(&c.request("textDocument/completion", at(&uri, l, ch + 7)));
    assert!(items.contains(&"mara_confides".to_owned()), "{items:?}");
    assert!(!items.contains(&"trust_mara".to_owned()), "{items:?}");
    let (l, ch) = find(&good, "id: \"mara_cold\"", "speaker: \"");
    let items = labels(&c.request("textDocument/completion", at(&uri, l, ch + 10)));
    assert_eq!(items, ["mara", "tobin", "wren"]);

    // A clean shutdown.
    let _ = c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(Path::new(&path).exists());
}

/// Malformed input never stops the server: parameters that do not parse (a notification's are
/// reported, a request gets `InvalidParams`), a body that is not JSON, a header line of 20 KB
/// and a message over the 16 MiB limit are each skipped and reported, and the next request is
/// answered as usual.
#[test]
fn malformed_and_oversized_messages_leave_the_server_running() {
    let mut c = Client::start();
    c.request("initialize", json!({"capabilities": {}}));
    c.notify("initialized", json!({}));
    let logged = |c: &mut Client, what: &str| {
        c.wait(what, |m| m["method"] == "window/logMessage")["params"]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    c.notify("textDocument/didOpen", json!(42));
    assert!(logged(&mut c, "didOpen").contains("`textDocument/didOpen` with malformed parameters"));
    let id = c.next_id;
    c.next_id += 1;
    c.send(json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/definition", "params": "x"}));
    let resp = c.wait("definition", |m| m["id"] == id);
    assert_eq!(resp["error"]["code"], -32602, "{resp}");

    write!(c.stdin, "Content-Length: 9\r\n\r\nnot json!").unwrap();
    assert!(logged(&mut c, "garbage").contains("not a JSON-RPC message"));
    write!(
        c.stdin,
        "X-Pad: {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "a".repeat(20_000)
    )
    .unwrap();
    assert!(logged(&mut c, "long header").contains("header line longer than"));
    let big = (16 << 20) + 1;
    write!(c.stdin, "Content-Length: {big}\r\n\r\n").unwrap();
    c.stdin.write_all(&vec![b' '; big]).unwrap();
    assert!(logged(&mut c, "oversized").contains(&format!("a message of {big} bytes")));

    // Still serving.
    let items = c.request(
        "textDocument/completion",
        at("file:///nowhere/x.story.ron", 0, 0),
    );
    assert_eq!(items, json!([]));
    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    assert!(c.child.wait().unwrap().success());
}
