//! `sclc lsp`: the language server, over stdin and stdout, for editors.

use crate::Status;

/// Arguments of `sclc lsp`.
#[derive(clap::Args, Debug)]
pub struct LspArgs {
    /// Talk over stdin and stdout (the only transport, and the default). Accepted because
    /// some editor clients pass it.
    #[arg(long)]
    stdio: bool,
}

/// Runs the language server until the editor tells it to exit.
pub fn run(args: LspArgs) -> Status {
    // Stdio is the only transport, so the flag changes nothing.
    let LspArgs { stdio: _ } = args;
    match scl_lsp::run_stdio() {
        Ok(scl_lsp::Exit::Clean) => Status::Ok,
        Ok(scl_lsp::Exit::WithoutShutdown) => Status::Unclean,
        // Writing stdout failed: `output::exit_code` reports it (quietly for a closed pipe,
        // the editor having gone).
        Err(e) if matches!(e.downcast_ref(), Some(scl_lsp::transport::TransportError::Output(_))) => {
            if let Some(scl_lsp::transport::TransportError::Output(e)) = e.downcast_ref() {
                crate::output::record_stdout_failure(e);
            }
            Status::Ok
        }
        Err(e) => {
            errln!("sclc: error: language server: {e}");
            Status::Usage
        }
    }
}
