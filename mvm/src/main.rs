//! mvm: the VM manager for VM0. Not implemented yet (see the mvm issue).

fn main() {
    eprintln!("mvm: not implemented yet");
    std::process::exit(1);
}
