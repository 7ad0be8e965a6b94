// The writ extension: runs `writ lsp` and shows what its two commands return.
//
// The server lists `writ.evaluateRequests` and `writ.convertToWrit` in its
// executeCommandProvider, so vscode-languageclient registers both as VS Code
// commands that send `workspace/executeCommand`. The middleware below wraps
// them: it supplies the active document when a command comes from the
// command palette, and shows the server's answer.

import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import {
  ExecuteCommandSignature,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
} from 'vscode-languageclient/node';

const EVALUATE = 'writ.evaluateRequests';
const CONVERT = 'writ.convertToWrit';
const RESTART = 'writ.restartServer';

/** One line of a requests file, decided by the server. */
interface Evaluation {
  /** Zero-based line in the requests file. */
  line: number;
  /** allow, deny, approve, or error when the line is not a request. */
  decision: string;
  /** The decision as JSON, or why the line could not be read. */
  detail: string;
}

let client: LanguageClient | undefined;
let serverLog: vscode.OutputChannel;
let requestsLog: vscode.OutputChannel;
/** Starts and stops in order, so that a restart never overlaps a start. */
let lifecycle: Promise<void> = Promise.resolve();

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  serverLog = vscode.window.createOutputChannel('writ');
  requestsLog = vscode.window.createOutputChannel('writ: requests');
  context.subscriptions.push(
    serverLog,
    requestsLog,
    vscode.commands.registerCommand(RESTART, restart),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('writ.server.path')) {
        void restart();
      }
    }),
  );
  await queue(start);
}

export function deactivate(): Promise<void> {
  return queue(stop);
}

function queue(step: () => Promise<void>): Promise<void> {
  lifecycle = lifecycle.then(step);
  return lifecycle;
}

function restart(): Promise<void> {
  return queue(async () => {
    await stop();
    await start();
  });
}

/** The command that starts the server: `writ.server.path`, resolved. */
function serverCommand(): string {
  const configured = vscode.workspace.getConfiguration('writ').get<string>('server.path', 'writ').trim() || 'writ';
  const expanded = configured.startsWith('~/') ? path.join(os.homedir(), configured.slice(2)) : configured;
  // A bare name is looked up on PATH; a relative path is taken from the first workspace folder.
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!path.isAbsolute(expanded) && /[\\/]/.test(expanded) && folder?.uri.scheme === 'file') {
    return path.join(folder.uri.fsPath, expanded);
  }
  return expanded;
}

async function start(): Promise<void> {
  const command = serverCommand();
  // LSP over stdin and stdout. No `transport`: with one the client would add
  // `--stdio`, which `writ lsp` does not take.
  const serverOptions: ServerOptions = { command, args: ['lsp'] };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'writ' },
      // The server ignores YAML files that are not policies.
      { scheme: 'file', language: 'yaml' },
      { scheme: 'file', pattern: '**/*.writ.yaml' },
    ],
    outputChannel: serverLog,
    middleware: { executeCommand },
  };
  // The id `writ` makes the client read `writ.trace.server`.
  const next = new LanguageClient('writ', 'writ', serverOptions, clientOptions);
  try {
    await next.start();
    client = next;
  } catch (err) {
    serverLog.appendLine(`could not start \`${command} lsp\`: ${err instanceof Error ? err.message : String(err)}`);
    void vscode.window
      .showErrorMessage(
        `writ: could not start the language server \`${command} lsp\`. Set writ.server.path to the writ executable.`,
        'Open Settings',
        'Show Log',
      )
      .then((choice) => {
        if (choice === 'Open Settings') {
          void vscode.commands.executeCommand('workbench.action.openSettings', 'writ.server.path');
        } else if (choice === 'Show Log') {
          serverLog.show(true);
        }
      });
  }
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  try {
    await running?.dispose();
  } catch (err) {
    // A server that crashed for good cannot be shut down; there is nothing left to stop.
    serverLog.appendLine(`stopping the server: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Wraps the server's commands; `args` is `[documentUri]` when they come from a lens or a code action. */
async function executeCommand(command: string, args: unknown[], next: ExecuteCommandSignature): Promise<unknown> {
  if (command !== EVALUATE && command !== CONVERT) {
    return next(command, args);
  }
  let uri = typeof args[0] === 'string' ? args[0] : undefined;
  if (uri === undefined) {
    const document = vscode.window.activeTextEditor?.document;
    if (!document) {
      void vscode.window.showWarningMessage('writ: open a policy file first.');
      return undefined;
    }
    // The client sends document URIs to the server as `Uri.toString()`.
    uri = document.uri.toString();
  }
  const result: unknown = await next(command, [uri]);
  if (command === CONVERT) {
    await showConverted(result);
  } else {
    showEvaluations(vscode.Uri.parse(uri), result);
  }
  return result;
}

/** Opens the converted policy in a new, unsaved writ document. */
async function showConverted(result: unknown): Promise<void> {
  // When the policy cannot be converted the server has already shown why.
  if (typeof result !== 'string') {
    return;
  }
  const document = await vscode.workspace.openTextDocument({ language: 'writ', content: result });
  await vscode.window.showTextDocument(document, { preview: false });
}

/** The requests file the server reads for a policy: `<base>.requests.jsonl` beside it. */
function requestsFile(policy: vscode.Uri): string | undefined {
  const name = path.basename(policy.fsPath);
  const base = ['.writ.yaml', '.writ', '.yaml', '.yml'].find((ext) => name.endsWith(ext));
  return base === undefined ? undefined : path.join(path.dirname(policy.fsPath), `${name.slice(0, -base.length)}.requests.jsonl`);
}

/** Lists the decisions, one line per request, in the `writ: requests` output channel. */
function showEvaluations(policy: vscode.Uri, result: unknown): void {
  const file = requestsFile(policy);
  if (!Array.isArray(result)) {
    const where = file ? path.basename(file) : '<name>.requests.jsonl';
    void vscode.window.showInformationMessage(
      `writ: no requests to evaluate. Put one JSON request per line in ${where} next to ${path.basename(policy.fsPath)}.`,
    );
    return;
  }
  const evaluations = result as Evaluation[];
  const counts = new Map<string, number>();
  for (const e of evaluations) {
    counts.set(e.decision, (counts.get(e.decision) ?? 0) + 1);
  }
  const summary = ['allow', 'deny', 'approve', 'error']
    .filter((d) => counts.has(d))
    .map((d) => `${counts.get(d)} ${d}`)
    .join(', ');
  requestsLog.clear();
  requestsLog.appendLine(policy.fsPath);
  requestsLog.appendLine(`  ${evaluations.length} requests from ${file ?? 'the requests file'}: ${summary || 'none'}`);
  for (const e of evaluations) {
    const where = file ? `${file}:${e.line + 1}` : `line ${e.line + 1}`;
    requestsLog.appendLine(`${where}  ${e.decision.padEnd(7)}  ${e.detail}`);
  }
  requestsLog.show(true);
}
