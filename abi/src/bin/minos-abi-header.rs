//! Prints `mvm/kmod/minos_abi.h` (the C view of the ABI) to standard output.

use std::io::Write;

fn main() {
    let mut text = String::new();
    minos_abi::header::write_c_header(&mut text).expect("formatting into a String cannot fail");
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        eprintln!("minos-abi-header: cannot write the header: {e}");
        std::process::exit(1);
    }
}
