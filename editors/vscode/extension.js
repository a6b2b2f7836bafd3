// The SCL extension: starts `sclc lsp` for .scl files and hands the editor over to it.
// Everything the editor shows (diagnostics, hover, definitions, completion, the outline)
// comes from the server; this file only finds the binary and passes the settings on.
'use strict';

const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration('scl');
  const command = config.get('server.path') || 'sclc';
  const target = config.get('target');
  // No transport is named, so the client talks to the process over stdin and stdout,
  // the only transport `sclc lsp` has.
  const serverOptions = { command, args: ['lsp'] };
  const clientOptions = {
    documentSelector: [{ scheme: 'file', language: 'scl' }],
    initializationOptions: target ? { target } : {},
  };
  client = new LanguageClient('scl', 'SCL language server', serverOptions, clientOptions);
  context.subscriptions.push(
    vscode.commands.registerCommand('scl.restartServer', () => client.restart()),
  );
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
