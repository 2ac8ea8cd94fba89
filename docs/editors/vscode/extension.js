// Starts `llama-dialogue lsp` for story and persona files. See docs/AUTHORING.md, "Editor support".
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("llamaDialogue").get("command");
  client = new LanguageClient(
    "llamaDialogue",
    "llama-dialogue",
    { command, args: ["lsp"] },
    { documentSelector: [{ scheme: "file", language: "llama-dialogue-ron" }] }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
