//! mkimage: builds what a board needs to boot the hypervisor.

fn main() {
    eprintln!("mkimage: not implemented yet");
    std::process::exit(1);
}
