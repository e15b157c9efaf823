//! `apt-mirror`: the command-line entry point; everything else is in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = apt_mirror::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("apt-mirror: cannot start the runtime: {e}");
            return std::process::ExitCode::from(apt_mirror::exit::FAILED);
        }
    };
    let code = runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        apt_mirror::install_signal_handlers(cancel.clone());
        apt_mirror::main_with_logging(&args, cancel).await
    });
    std::process::ExitCode::from(code)
}
