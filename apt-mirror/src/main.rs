//! `apt-mirror`: the command-line entry point; everything else is in the library.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(apt_mirror::main_from_args(std::env::args_os()))
}
